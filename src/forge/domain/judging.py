"""The LLM judge's rules: the prompt, reading its verdict, and both orders combined to cancel position bias. Pure."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, computed_field

from forge.domain.content import content_text

Verdict = Literal["A", "B", "TIE"]
JudgeOutcome = Literal["win", "loss", "tie"]

JUDGE_SYSTEM = (
    "You are an impartial judge comparing two assistant answers to the same conversation. Judge correctness first, "
    "then whether the answer does what was asked, then clarity. Do not let the order of the answers, their length "
    "or their style sway you. Give one short sentence of reasons, then end with exactly one verdict: [[A]] if "
    "answer A is better, [[B]] if answer B is better, [[C]] if they are equally good."
)
_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")
# Asked of one labelled answer at a time, to measure how often the judge agrees with people (the alignment set).
ALIGNMENT_SYSTEM = (
    "You are an impartial judge of one assistant answer to a conversation. Judge correctness first, then whether the "
    "answer does what was asked, then clarity. Do not let its length or style sway you. Give one short sentence of "
    "reasons, then end with exactly one verdict: [[GOOD]] if the answer is acceptable, [[BAD]] if it is not."
)
_ACCEPTABLE = re.compile(r"\[\[\s*(GOOD|BAD)\s*\]\]")
# Recorded on every result: a change to either prompt above (or how verdicts are read) is a new version.
PROMPT_VERSION = "pairwise-both-orders-v1+alignment-v1"


class JudgeAgreement(BaseModel):
    """How often the judge agreed with people's labels (approved / rejected traces of the domain)."""

    items: int  # labelled traces the judge was asked about
    decided: int  # those it gave a verdict on
    agreed: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate(self) -> float | None:
        return round(self.agreed / self.decided, 4) if self.decided else None


class JudgeSummary(BaseModel):
    opponent: str  # the model the candidate was compared with ("reference" for the recorded teacher/gold answers)
    wins: int = 0
    losses: int = 0
    ties: int = 0
    invalid: int = 0  # the judge gave no verdict in at least one order
    model: str | None = None  # the judge model
    prompt_version: str = PROMPT_VERSION
    agreement: JudgeAgreement | None = None  # None: no alignment set (no labelled traces)

    @property
    def win_rate(self) -> float | None:
        """Wins plus half the ties, over the valid comparisons; None when there were none."""
        valid = self.wins + self.losses + self.ties
        return round((self.wins + 0.5 * self.ties) / valid, 4) if valid else None


def judge_messages(conversation: list[dict[str, Any]], answer_a: str, answer_b: str) -> list[dict[str, str]]:
    """The judge's request: the conversation so far, then the two answers, labelled A and B."""
    shown = "\n\n".join(f"{m.get('role', 'user').upper()}: {content_text(m.get('content'))}" for m in conversation)
    user = (f"[Conversation]\n{shown}\n\n[Answer A]\n{answer_a}\n[End of answer A]\n\n"
            f"[Answer B]\n{answer_b}\n[End of answer B]")
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def alignment_messages(conversation: list[dict[str, Any]], answer: str) -> list[dict[str, str]]:
    """The judge's request about one labelled answer: acceptable or not."""
    shown = "\n\n".join(f"{m.get('role', 'user').upper()}: {content_text(m.get('content'))}" for m in conversation)
    user = f"[Conversation]\n{shown}\n\n[Answer]\n{answer}\n[End of answer]"
    return [{"role": "system", "content": ALIGNMENT_SYSTEM}, {"role": "user", "content": user}]


def parse_acceptable(text: str) -> bool | None:
    """The judge's last [[GOOD]] (True) or [[BAD]] (False); None when it gave neither."""
    found = _ACCEPTABLE.findall(text or "")
    return found[-1] == "GOOD" if found else None


def parse_verdict(text: str) -> Verdict | None:
    """The judge's last [[A]], [[B]] or [[C]] (tie); None when it gave none."""
    found = _VERDICT.findall(text or "")
    if not found:
        return None
    return {"A": "A", "B": "B", "C": "TIE"}[found[-1]]  # type: ignore[return-value]


def combine(candidate_first: Verdict | None, candidate_second: Verdict | None) -> JudgeOutcome | None:
    """The candidate's outcome over both orders (A = candidate, then B = candidate); None if either is missing."""
    if candidate_first is None or candidate_second is None:
        return None
    points = {"A": 1.0, "TIE": 0.5, "B": 0.0}[candidate_first] + {"B": 1.0, "TIE": 0.5, "A": 0.0}[candidate_second]
    return "win" if points > 1 else "loss" if points < 1 else "tie"


def tally(opponent: str, outcomes: list[JudgeOutcome | None]) -> JudgeSummary:
    return JudgeSummary(
        opponent=opponent,
        wins=outcomes.count("win"),
        losses=outcomes.count("loss"),
        ties=outcomes.count("tie"),
        invalid=outcomes.count(None),
    )

