"""Grading one trace 0–100 against its domain's rubric with an LLM: the request and reading the score. Pure."""

from __future__ import annotations

import re
from typing import Any

from forge.domain.content import content_text
from forge.domain.domains import DomainConfig

_SCORE = re.compile(r"score\s*[:=]\s*(\d{1,3}(?:\.\d+)?)", re.IGNORECASE)


def rubric(domain: DomainConfig) -> str:
    """The domain's rubric: what it is for, the answers it wants, and how much each quality weighs."""
    weights = domain.scoring
    return (
        f"Domain: {domain.description}\n"
        + (f"The assistant is instructed: {domain.system_prompt}\n" if domain.system_prompt else "")
        + f"Weigh correctness {weights.correctness:.0%}, structure and format {weights.structure:.0%}, "
        f"completeness {weights.completeness:.0%}, and closeness to what an expert would answer "
        f"{weights.similarity:.0%}."
        + (" Answers without a fenced code block are poor." if domain.filters.require_code_block else "")
    )


def grading_messages(domain: DomainConfig, messages: list[dict[str, Any]], answer: str) -> list[dict[str, str]]:
    """The grader's request: the rubric, the conversation, the answer; it must end with `Score: N`."""
    shown = "\n\n".join(f"{m.get('role', 'user').upper()}: {content_text(m.get('content'))}" for m in messages)
    system = (
        "You grade an assistant's answer for use as training data, from 0 (useless or wrong) to 100 (exemplary).\n"
        f"{rubric(domain)}\nReply with one sentence of reasons, then a last line exactly like 'Score: 87'."
    )
    user = f"[Conversation]\n{shown}\n\n[Answer]\n{answer}\n[End of answer]"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parse_score(text: str) -> float | None:
    """The last `Score: N` in the grader's reply, if it is 0–100; None otherwise."""
    found = _SCORE.findall(text or "")
    if not found:
        return None
    value = float(found[-1])
    return value if 0 <= value <= 100 else None
