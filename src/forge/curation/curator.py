"""The curation core: one streaming pass from traces to train/valid/rejects JSONL files and their stats.

Memory is bounded by the batch (`BATCH` traces), the dedup key arrays (8 bytes per kept example, plus 8 per LSH
band with near-duplicates on) and the histogram; the dataset itself only ever exists in the output files.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import orjson

from forge.domain import chat_format, cost, curation, pii, routing
from forge.domain.content import content_text
from forge.domain.dataset_stats import CurationStats
from forge.domain.dedup import KeyStore, NearDuplicates
from forge.domain.domains import DomainConfig
from forge.domain.models import Trace
from forge.domain.traces import TraceLine, any_float
from forge.curation.sources import Incoming

BATCH = 1024
FILES = ("train", "valid", "rejects")
Grade = Callable[[Sequence[Trace | TraceLine]], list[float | None]]


@dataclass
class CurationOptions:
    domain: DomainConfig
    model: str  # the student base model: its token limit and price
    min_score: float = 90.0
    valid_share: float = 0.1
    seed: int = 42
    require_golden: bool = True  # uploads are curated by hand: only the format, PII and dedup rules apply
    max_examples: int | None = None
    prices: cost.PriceTable = field(default_factory=lambda: cost.DEFAULT_PRICES)
    holdout: frozenset[str] = frozenset()  # conversations (curation.group_key) held out for evaluation: never kept


@dataclass
class CurationOutcome:
    stats: CurationStats
    files: dict[str, dict[str, Any]]  # name → {"path", "lines", "sha256"}
    sha256: str  # of the manifest "train <sha>\nvalid <sha>\n": names the dataset's content
    estimate: cost.CostEstimate

    def stats_json(self, options: CurationOptions) -> dict[str, Any]:
        s = self.stats
        return {
            "counts": s.counts(), "dropped": dict(s.dropped), "pii": dict(s.pii), "tokens": s.tokens.as_dict(),
            "train_tokens": s.train_tokens[0], "estimate": self.estimate.model_dump(mode="json"),
            "warnings": s.warnings, "sha256": self.sha256,
            "files": {k: {"lines": v["lines"], "sha256": v["sha256"]} for k, v in self.files.items()},
            "options": {"domain": options.domain.name, "model": options.model, "min_score": options.min_score,
                        "valid_share": options.valid_share, "seed": options.seed,
                        "max_examples": options.max_examples, "pii_policy": options.domain.pii_policy,
                        **options.domain.filters.model_dump(exclude={"exclude_patterns"})},
        }


class _Writer:
    """JSONL lines to a file, hashed and counted as they go."""

    def __init__(self, path: Path):
        self.path = path
        self.handle = open(path, "wb")
        self.sha = hashlib.sha256()
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        line = None
        if not any_float(record):  # orjson writes floats in another notation (1e16, not 1e+16)
            try:
                line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)  # the same bytes as json's, faster
            except TypeError:  # lone surrogates, integers past 64 bits: json's encoding below decides
                pass
        if line is None:
            line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8", "replace")
        self.handle.write(line)
        self.sha.update(line)
        self.lines += 1

    def close(self) -> dict[str, Any]:
        self.handle.close()
        return {"path": str(self.path), "lines": self.lines, "sha256": self.sha.hexdigest()}


class Curator:
    def __init__(self, options: CurationOptions, out_dir: Path, *, count: Callable[[str], int], grade: Grade | None = None,
                 on_graded: Callable[[Trace | TraceLine, float], None] | None = None):
        self.options = options
        self.rules = options.domain.filters
        system_prompt = options.domain.system_prompt
        system_tokens = count(system_prompt) if system_prompt else 0
        # Every example opens with the domain's system prompt: count it once, never scan it for PII.
        self.count = lambda text: system_tokens if text == system_prompt else count(text)
        self.grade = grade
        self.on_graded = on_graded
        self.limit = cost.token_limit(options.model, options.prices)
        self.stats = CurationStats()
        self.exact = KeyStore()
        threshold = self.rules.near_dup_threshold
        self.near = NearDuplicates(threshold) if threshold else None
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out = {name: _Writer(out_dir / f"{name}.jsonl") for name in FILES}

    def run(self, items: Iterable[Incoming], cutoff: datetime | None = None) -> CurationOutcome:
        """Curate every item; traces older than `cutoff` (the cap's boundary) are skipped as over the cap."""
        try:
            batch: list[Incoming] = []
            for item in items:
                self.stats.read += 1
                if item.trace is None:
                    self._reject(item, item.error.reason if item.error else "invalid", item.error.detail if item.error else "")
                elif cutoff and item.trace.created_at < cutoff:
                    self.stats.drop("over_max_examples")
                else:
                    batch.append(item)
                if len(batch) >= BATCH:
                    self._batch(batch)
                    batch = []
            self._batch(batch)
        finally:
            files = {name: writer.close() for name, writer in self.out.items()}
        self.stats.finish()
        manifest = f"train {files['train']['sha256']}\nvalid {files['valid']['sha256']}\n"
        estimate = cost.estimate_from_totals(self.stats.train, self.stats.train_tokens[0], self.stats.train_tokens[1],
                                             self.options.model, prices=self.options.prices, limit=self.limit)
        return CurationOutcome(self.stats, files, hashlib.sha256(manifest.encode()).hexdigest(), estimate)

    def _batch(self, batch: list[Incoming]) -> None:
        if not batch:
            return
        batch = [i for i in batch if self._passes_rules(i)]
        if self.grade is not None:
            self._grade([i.trace for i in batch if i.trace.score is None and i.trace.feedback is None])
        if self.options.require_golden:
            batch = [i for i in batch if self._golden(i)]
        batch = self._unique(batch)
        formatted = [f for f in (self._format(i) for i in batch) if f is not None]
        if self.near is not None and formatted:
            texts = [_dedup_text(example) for _, example, *_ in formatted]
            checked = self.near.check(texts)
            for (item, *_), dup in zip(formatted, checked.duplicate):
                if dup:
                    self._reject(item, "near_duplicate", "close to an earlier example")
            formatted = [f for f, dup in zip(formatted, checked.duplicate) if not dup]
            self.near.keep(checked)
        for item, example, tokens, per_role in formatted:
            self._write(item, example, tokens, per_role)

    def _passes_rules(self, item: Incoming) -> bool:
        trace = item.trace
        if routing.answered_by_student(trace.metadata):
            return self._reject(item, "student_answer", "a student model answered this call, not the teacher")
        if trace.feedback == "rejected":
            return self._reject(item, "rejected_feedback", "a person rejected this answer")
        if self.options.holdout and curation.group_key(trace.messages, trace.conversation_id) in self.options.holdout:
            return self._reject(item, "eval_set", "its conversation is held out in the domain's eval set")
        answer = content_text(trace.response.get("content"))
        prompt = "\n".join(content_text(m.get("content")) for m in trace.messages)
        reason = curation.rule_violation(answer, prompt, self.rules)
        return self._reject(item, reason, f"domain rule: {reason}") if reason else True

    def _grade(self, ungraded: list[Trace | TraceLine]) -> None:
        scores = self.grade(ungraded) if ungraded else []
        for trace, score in zip(ungraded, scores):
            if score is None:
                continue
            trace.score = score
            self.stats.graded += 1
            if self.on_graded is not None:
                self.on_graded(trace, score)  # stored on the trace: it is never graded twice

    def _golden(self, item: Incoming) -> bool:
        if item.trace.is_golden(self.options.min_score):
            return True
        reason = "unscored" if item.trace.score is None else "below_min_score"
        return self._reject(item, reason, f"score {item.trace.score} is under {self.options.min_score:g}")

    def _unique(self, batch: list[Incoming]) -> list[Incoming]:
        keys = np.fromiter((curation.exact_key([*i.trace.messages, i.trace.response]) for i in batch),
                           dtype=np.uint64, count=len(batch))
        seen = self.exact.contains(keys)
        kept, batch_keys = [], set()
        for item, key, before in zip(batch, keys.tolist(), seen.tolist()):
            if before or key in batch_keys:
                self._reject(item, "duplicate", "the same conversation was kept earlier")
            else:
                batch_keys.add(key)
                kept.append(item)
        self.exact.add(np.fromiter(batch_keys, dtype=np.uint64, count=len(batch_keys)))
        return kept

    def _format(self, item: Incoming) -> tuple[Incoming, dict[str, Any], int, dict[str, int]] | None:
        example = chat_format.to_example(item.trace, self.options.domain.system_prompt)
        found = self._scrub(example)
        if found is None:
            return self._reject(item, "pii", "holds personal data or secrets (domain policy: drop)") or None
        if self._special(example) is None:
            return self._reject(item, "special_tokens", "holds provider control tokens such as <|endoftext|>") or None
        problems = chat_format.validate(example)
        if problems:
            return self._reject(item, problems[0].code, problems[0].message) or None
        tokens, per_role = chat_format.count_example_tokens(example, self.count)
        if tokens > self.limit and self.rules.token_limit_policy == "truncate":
            example, tokens, per_role = self._truncate(example, tokens, per_role)
        if tokens > self.limit:
            return self._reject(item, "over_token_limit", f"{tokens} tokens; {self.options.model} trains on {self.limit}") or None
        if found:
            self.stats.redacted_examples += 1
        return item, example, tokens, per_role

    def _scrub(self, example: dict[str, Any]) -> int | None:
        """Redact PII in place (count of findings), or None when the domain drops such examples."""
        total = 0
        for message in example["messages"]:
            if not isinstance(message.get("content"), str) or message["content"] == self.options.domain.system_prompt:
                continue
            if self.options.domain.pii_policy == "drop":
                found = pii.find(message["content"])
                if found:
                    self.stats.pii.update(found)
                    return None
            else:
                message["content"], found = pii.redact(message["content"])
                if found:
                    self.stats.pii.update(found)
                    total += sum(found.values())
        return total

    def _special(self, example: dict[str, Any]) -> dict[str, Any] | None:
        policy = self.rules.special_tokens
        if policy == "keep":
            return example
        for message in example["messages"]:
            text = message.get("content")
            if isinstance(text, str) and curation.has_special_tokens(text):
                if policy == "drop":
                    return None
                message["content"] = curation.escape_special_tokens(text)
        return example

    def _truncate(self, example: dict[str, Any], tokens: int, per_role: dict[str, int]) -> tuple[dict[str, Any], int, dict[str, int]]:
        """Drop the oldest turns (never the system prompt or the final exchange) until the example fits."""
        messages = example["messages"]
        while tokens > self.limit:
            drop_at = next((i for i, m in enumerate(messages[:-2]) if m.get("role") != "system"), None)
            if drop_at is None:
                break
            messages.pop(drop_at)
            tokens, per_role = chat_format.count_example_tokens(example, self.count)
        if tokens <= self.limit:
            self.stats.truncated_examples += 1
        return example, tokens, per_role

    def _write(self, item: Incoming, example: dict[str, Any], tokens: int, per_role: dict[str, int]) -> None:
        trace = item.trace
        split = curation.split_of(curation.group_key(trace.messages, trace.conversation_id), self.options.seed,
                                  self.options.valid_share)
        if self.options.max_examples and self.stats.kept >= self.options.max_examples:
            self.stats.drop("over_max_examples")
            return
        self.out[split].write(example)
        self.stats.kept += 1
        roles: dict[str, int] = {}
        for message in example["messages"]:
            roles[message["role"]] = roles.get(message["role"], 0) + 1
        self.stats.tokens.add(tokens, per_role, roles)
        if split == "train":
            self.stats.train += 1
            self.stats.train_tokens[0] += min(tokens, self.limit)
        else:
            self.stats.valid += 1

    def _reject(self, item: Incoming, reason: str, detail: str) -> bool:
        self.stats.drop(reason)
        record: dict[str, Any] = {"reason": reason, "detail": detail}
        if item.trace is not None and (item.number is None or item.trace.external_id):
            # A stored trace is named by its id; a file's line by its own id, if it has one, and its number.
            record["id"] = item.trace.id if item.number is None else item.trace.external_id
        if item.number is not None:
            record["line"] = item.number
        self.out["rejects"].write(record)
        return False


def _dedup_text(example: dict[str, Any]) -> bytes:
    """Prompt turns and answer, normalised; the system prompt is left out because every example shares it."""
    parts = [m["content"] for m in example["messages"] if m.get("role") != "system" and isinstance(m.get("content"), str)]
    return curation.normalise("\n".join(parts)).encode("utf-8", "replace")


def newest_cutoff(times: Iterable[datetime], cap: int) -> datetime | None:
    """The `cap`-th newest of these times: a build capped at `cap` reads nothing older (O(cap) memory)."""
    heap: list[datetime] = []
    for moment in times:
        if len(heap) < cap:
            heapq.heappush(heap, moment)
        elif moment > heap[0]:
            heapq.heapreplace(heap, moment)
    return heap[0] if len(heap) >= cap else None
