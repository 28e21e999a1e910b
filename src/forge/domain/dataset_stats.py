"""What a curation run counts as it streams: kept and dropped by reason, PII by kind, a token histogram."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Histogram bucket upper bounds (tokens per example); the last bucket is open.
BUCKETS = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16_384, 32_768, 65_536)
_BOUNDS = np.array(BUCKETS)
MIN_EXAMPLES = 10  # OpenAI refuses a training file with fewer
RECOMMENDED_EXAMPLES = 50  # OpenAI usually sees clear gains from 50 to 100 well-made examples


@dataclass
class TokenStats:
    examples: int = 0
    total: int = 0
    minimum: int | None = None
    maximum: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    per_role: Counter = field(default_factory=Counter)
    per_role_messages: Counter = field(default_factory=Counter)

    def add(self, tokens: int, per_role: dict[str, int], messages_per_role: dict[str, int]) -> None:
        self.examples += 1
        self.total += tokens
        self.minimum = tokens if self.minimum is None else min(self.minimum, tokens)
        self.maximum = max(self.maximum, tokens)
        self.histogram[bisect.bisect_left(BUCKETS, tokens)] += 1
        self.per_role.update(per_role)
        self.per_role_messages.update(messages_per_role)

    def add_many(self, tokens: Any, per_role: Any, messages: Any, roles: tuple[str, ...]) -> None:
        """`add` for many examples at once: numpy arrays of totals, tokens per role and messages per role (one
        column per name in `roles`)."""
        if not len(tokens):
            return
        self.examples += len(tokens)
        self.total += int(tokens.sum())
        low = int(tokens.min())
        self.minimum = low if self.minimum is None else min(self.minimum, low)
        self.maximum = max(self.maximum, int(tokens.max()))
        counts = np.bincount(np.searchsorted(_BOUNDS, tokens, side="left"), minlength=len(self.histogram))
        self.histogram = [a + b for a, b in zip(self.histogram, counts.tolist())]  # bisect_left, as `add` does
        for column, role in enumerate(roles):
            count = int(messages[:, column].sum())
            if count:
                self.per_role[role] += int(per_role[:, column].sum())
                self.per_role_messages[role] += count

    def quantile(self, q: float) -> int | None:
        """The bucket bound below which a share `q` of examples lie (an upper estimate)."""
        if not self.examples:
            return None
        target, seen = q * self.examples, 0
        for i, count in enumerate(self.histogram):
            seen += count
            if seen >= target:
                return BUCKETS[i] if i < len(BUCKETS) else self.maximum
        return self.maximum

    def as_dict(self) -> dict[str, Any]:
        labels = [f"<={b}" for b in BUCKETS] + [f">{BUCKETS[-1]}"]
        return {
            "examples": self.examples,
            "total": self.total,
            "mean": round(self.total / self.examples, 1) if self.examples else None,
            "min": self.minimum,
            "max": self.maximum,
            "p50_at_most": self.quantile(0.5),
            "p95_at_most": self.quantile(0.95),
            "histogram": dict(zip(labels, self.histogram)),
            "per_role": {
                role: {"tokens": self.per_role[role], "messages": self.per_role_messages[role],
                       "mean": round(self.per_role[role] / max(1, self.per_role_messages[role]), 1)}
                for role in sorted(self.per_role)
            },
        }


@dataclass
class CurationStats:
    read: int = 0
    kept: int = 0
    train: int = 0
    valid: int = 0
    graded: int = 0
    dropped: Counter = field(default_factory=Counter)
    pii: Counter = field(default_factory=Counter)
    redacted_examples: int = 0
    truncated_examples: int = 0
    tokens: TokenStats = field(default_factory=TokenStats)
    train_tokens: list[int] = field(default_factory=lambda: [0, 0])  # Σ tokens, examples over the model limit
    warnings: list[str] = field(default_factory=list)

    def drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    def counts(self) -> dict[str, int]:
        return {"read": self.read, "kept": self.kept, "train": self.train, "valid": self.valid,
                "graded": self.graded, "redacted": self.redacted_examples, "truncated": self.truncated_examples}

    def finish(self) -> None:
        """Add the warnings a person should see before training on this."""
        if MIN_EXAMPLES <= self.train < RECOMMENDED_EXAMPLES:
            self.warnings.append(
                f"Only {self.train} training examples: fine-tuning usually needs {RECOMMENDED_EXAMPLES}–100 "
                "well-made examples to show a clear gain; collect more golden traces if the student disappoints."
            )
        if self.kept and self.valid == 0:
            self.warnings.append("No validation examples: raise the valid share to measure the student on held-out data.")


def too_few_message(train: int) -> str:
    """What to tell a person whose dataset is too small to train on."""
    missing = MIN_EXAMPLES - train
    return (
        f"Only {train} training example{'s' if train != 1 else ''} survived curation; fine-tuning needs at least "
        f"{MIN_EXAMPLES}, so {missing} more {'are' if missing != 1 else 'is'} needed. Collect or approve more golden "
        "traces (score at least FORGE_MIN_SCORE, or feedback 'approved'), widen --since, or lower the valid share."
    )
