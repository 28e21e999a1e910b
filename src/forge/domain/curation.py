"""Curation rules, pure: which traces a domain keeps, what counts as the same conversation, and the split."""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

from forge.domain.domains import FilterRules

# Refusals and apologies open the answer; looking only at its start keeps "sorry" inside an explanation.
_REFUSAL = re.compile(
    r"\s*(?:I'?m sorry|I am sorry|sorry,|my apologies|I apologi[sz]e|as an ai\b|as a language model"
    r"|I can(?:not|'t|’t) (?:help|assist|provide|do|comply|answer|fulfil)|I(?:'m| am) (?:not able|unable) to"
    r"|I won'?t be able to)",
    re.IGNORECASE,
)
# Provider control tokens (OpenAI's, ChatML's, fill-in-the-middle): in training text they teach the model to
# emit structure it must not.
SPECIAL_TOKEN = re.compile(r"<\|(?:endoftext|endofprompt|im_start|im_end|im_sep|fim_[a-z]+|start|end|message|"
                           r"channel|constrain|return|call)\|>")


@functools.lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


def rule_violation(answer: str, prompt: str, rules: FilterRules) -> str | None:
    """The reason a domain's rules drop this answer, or None when they keep it."""
    if len(answer.strip()) < rules.min_response_chars:
        return "too_short"
    if len(answer) > rules.max_response_chars:
        return "too_long"
    if rules.require_code_block and "```" not in answer:
        return "no_code_block"
    if rules.drop_refusals and _REFUSAL.match(answer[:200]):
        return "refusal"
    for pattern in _compiled(tuple(rules.exclude_patterns)):
        if pattern.search(answer) or pattern.search(prompt):
            return "excluded_pattern"
    return None


def has_special_tokens(text: str) -> bool:
    return "<|" in text and SPECIAL_TOKEN.search(text) is not None


def escape_special_tokens(text: str) -> str:
    """`<|endoftext|>` → `< |endoftext| >`: the words stay readable, the control token is gone."""
    if "<|" not in text:
        return text
    return SPECIAL_TOKEN.sub(lambda m: "< " + m.group()[1:-1] + " >", text)


def normalise(text: str) -> str:
    """Case and whitespace folded: two answers that differ only there are the same answer."""
    return " ".join(text.split()).lower()  # str.split is several times faster than a \s+ regex


def digest64(text: str) -> int:
    """A 64-bit key of `text` (BLAKE2b); collisions are negligible at billions of keys."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def exact_key(messages: list[dict[str, Any]]) -> int:
    """The normalised conversation's key: the same roles and words in the same order give the same key."""
    parts = [f"{m.get('role')}\x1f{normalise(m['content']) if isinstance(m.get('content'), str) else ''}"
             for m in messages]
    return digest64("\x1e".join(parts))


def group_key(messages: list[dict[str, Any]], conversation_id: str | None) -> str:
    """Which conversation an example belongs to: its id, else its opening user turn (shared by later turns)."""
    if conversation_id:
        return f"c:{conversation_id}"
    opening = next((m.get("content") for m in messages if m.get("role") == "user"), "")
    return f"u:{digest64(normalise(opening if isinstance(opening, str) else str(opening)))}"


def split_of(group: str, seed: int, valid_share: float) -> str:
    """`train` or `valid`, from a seeded hash of the conversation: stable across runs and machines."""
    if valid_share <= 0:
        return "train"
    draw = digest64(f"{seed}\x1f{group}") / 2**64
    return "valid" if draw < valid_share else "train"
