"""The LLM judge over any OpenAI-compatible model: head-to-head WIN/LOSS/TIE, each pair judged in both orders, and
its agreement with people's labels. It fails closed: a judge call that fails raises, so an evaluation whose judge
is down gives no verdict (and is retried) instead of passing on fewer comparisons."""

from __future__ import annotations

import asyncio
from typing import Any

from forge.domain.judging import (JudgeAgreement, JudgeOutcome, JudgeSummary, Verdict, alignment_messages, combine,
                                  judge_messages, parse_acceptable, parse_verdict, tally)
from forge.providers.inference import ChatClient, InferenceError, answer_text

MAX_UNDECIDED_SHARE = 0.2  # above this share of pairs without a verdict, the judge is not working: no verdict


class JudgeFailed(InferenceError):
    """The judge could not be asked, or gave too few verdicts: the evaluation has no verdict and is retried."""


async def verdict(judge: ChatClient, conversation: list[dict[str, Any]], answer_a: str, answer_b: str) -> Verdict | None:
    """The judge's verdict on one ordering; None when it answers without one. A failed call raises JudgeFailed."""
    completion = await _ask(judge, judge_messages(conversation, answer_a, answer_b))
    return parse_verdict(answer_text(completion))


async def compare(judge: ChatClient, conversation: list[dict[str, Any]], candidate: str | None,
                  opponent: str | None) -> JudgeOutcome | None:
    """The candidate's outcome against the opponent; a side with no answer (its call failed) loses."""
    if not candidate and not opponent:
        return None
    if not candidate:
        return "loss"
    if not opponent:
        return "win"
    first, second = await asyncio.gather(
        verdict(judge, conversation, candidate, opponent), verdict(judge, conversation, opponent, candidate)
    )
    return combine(first, second)


async def head_to_head(judge: ChatClient, conversations: list[list[dict[str, Any]]], candidate: list[str | None],
                       opponent: list[str | None],
                       opponent_name: str) -> tuple[JudgeSummary, list[JudgeOutcome | None]]:
    """Judge every pair; the win rate counts ties as half a win and leaves out pairs the judge could not decide.

    Raises JudgeFailed when a call fails or more than a fifth of the pairs get no verdict."""
    outcomes = list(await asyncio.gather(
        *(compare(judge, c, a, b) for c, a, b in zip(conversations, candidate, opponent))
    ))
    summary = tally(opponent_name, outcomes)
    summary.model = getattr(judge, "model", None) or getattr(judge, "name", None)
    if outcomes and summary.invalid > MAX_UNDECIDED_SHARE * len(outcomes):
        raise JudgeFailed(f"The judge gave no verdict on {summary.invalid} of {len(outcomes)} pairs; no verdict was "
                          "recorded. Check FORGE_GRADER_MODEL (it must end with [[A]], [[B]] or [[C]]), then evaluate "
                          "again.")
    return summary, outcomes


async def agreement(judge: ChatClient, labelled: list[tuple[list[dict[str, Any]], str, bool]]) -> JudgeAgreement | None:
    """How often the judge calls people's approved answers good and their rejected ones bad; None without labels."""
    if not labelled:
        return None

    async def one(conversation: list[dict[str, Any]], answer: str) -> bool | None:
        return parse_acceptable(answer_text(await _ask(judge, alignment_messages(conversation, answer))))

    said = await asyncio.gather(*(one(c, a) for c, a, _ in labelled))
    decided = [(s, good) for s, (_, _, good) in zip(said, labelled) if s is not None]
    return JudgeAgreement(items=len(labelled), decided=len(decided), agreed=sum(s == good for s, good in decided))


async def _ask(judge: ChatClient, messages: list[dict[str, str]]) -> dict[str, Any]:
    try:
        return await judge.complete({"messages": messages, "max_tokens": 300, "temperature": 0})
    except InferenceError as exc:
        raise JudgeFailed(f"The judge failed ({exc}); no verdict was recorded. Check FORGE_GRADER_MODEL's endpoint, "
                          "then evaluate again.") from None
