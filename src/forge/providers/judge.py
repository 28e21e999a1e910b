"""The LLM judge over any OpenAI-compatible model: head-to-head WIN/LOSS/TIE, each pair judged in both orders."""

from __future__ import annotations

import asyncio
from typing import Any

from forge.domain.judging import JudgeSummary, JudgeOutcome, Verdict, combine, judge_messages, parse_verdict, tally
from forge.providers.inference import ChatClient, InferenceError, answer_text


async def verdict(judge: ChatClient, conversation: list[dict[str, Any]], answer_a: str, answer_b: str) -> Verdict | None:
    """The judge's verdict on one ordering; None when it fails or gives none."""
    try:
        completion = await judge.complete(
            {"messages": judge_messages(conversation, answer_a, answer_b), "max_tokens": 300, "temperature": 0}
        )
    except InferenceError:
        return None
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
                       opponent: list[str | None], opponent_name: str) -> JudgeSummary:
    """Judge every pair; the win rate counts ties as half a win and leaves out pairs the judge could not decide."""
    outcomes = await asyncio.gather(
        *(compare(judge, c, a, b) for c, a, b in zip(conversations, candidate, opponent))
    )
    return tally(opponent_name, list(outcomes))
