"""The curation core, in two phases: map (`Mapper`: per trace, rules, grading, golden, format, PII, tokens, dedup
keys and sketches, one compact `Frame` per batch) and reduce (`reduce_frames`: duplicates, the cap, the files).

`Curator` runs both in one process, batch by batch; `curation.parallel` maps chunks of a file or shards of the
trace table in worker processes and reduces their frames in order, writing the same bytes. Memory is bounded by
a batch, the dedup keys and sketches of kept examples (see `forge.domain.dedup`) and the histogram: the dataset
itself only ever exists in the output files.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence


from forge.domain import chat_format, cost, curation, pii, routing
from forge.domain.content import content_text
from forge.domain.dataset_stats import CurationStats
from forge.domain.domains import DomainConfig
from forge.domain.models import Trace
from forge.domain.traces import TraceLine
from forge.curation.builder import Candidate, FrameBuilder, encode, line_key, position_key, stored_key, who
from forge.curation.frames import Frame
from forge.curation.reducer import Reducer
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


class Mapper:
    """The map phase over one stream of traces (a whole source, a file chunk, a storage shard): everything that
    needs only the trace itself — rules, grading, the golden filter, formatting, PII, tokens, dedup keys and
    sketches — one `Frame` per batch. What depends on other traces (duplicates, the cap) is the reduce's."""

    def __init__(self, options: CurationOptions, *, count: Callable[[str], int], grade: Grade | None = None,
                 on_graded: Callable[[Trace | TraceLine, float], None] | None = None, keys: str = "position"):
        self.options = options
        self.rules = options.domain.filters
        system_prompt = options.domain.system_prompt
        system_tokens = count(system_prompt) if system_prompt else 0
        # Every example opens with the domain's system prompt: count it once, never scan it for PII.
        self.count = lambda text: system_tokens if text == system_prompt else count(text)
        self.grade = grade
        self.on_graded = on_graded
        self.limit = cost.token_limit(options.model, options.prices)
        self.keys = {"position": position_key(), "line": line_key, "ulid": stored_key}[keys]
        self._frame: FrameBuilder = FrameBuilder()
        self._now: Candidate | None = None  # the candidate being formatted: its findings go on it

    def map(self, items: Iterable[Incoming], cutoff: datetime | None = None) -> Iterator[Frame]:
        """Frames of at most `BATCH` traces, in input order; traces older than `cutoff` are dropped as over the cap.

        A trace whose processing raises (a poisoned line) becomes the reject `unprocessable`; the rest go on."""
        batch: list[tuple[tuple[int, int], Incoming]] = []
        frame = FrameBuilder()
        for item in items:
            key = self.keys(item)
            frame.read += 1
            if item.trace is None:
                frame.reject(key, item, item.error.reason if item.error else "invalid",
                             item.error.detail if item.error else "")
            elif cutoff and item.trace.created_at < cutoff:
                frame.drop("over_max_examples")
            else:
                batch.append((key, item))
            if len(batch) >= BATCH:
                yield self._safely(batch, frame)
                batch, frame = [], FrameBuilder()
        if batch or frame.read:
            yield self._safely(batch, frame)

    def _safely(self, batch: list[tuple[tuple[int, int], Incoming]], frame: "FrameBuilder") -> Frame:
        self._frame = frame.copy()
        try:
            self._batch(batch)
            return self._frame.build()
        except Exception:  # noqa: BLE001 — one bad trace must not fail the build: find it, keep the others
            pass
        for key, item in batch:
            self._frame = frame.copy()
            try:
                self._batch([(key, item)])
                frame = self._frame
            except Exception as exc:  # noqa: BLE001
                frame.reject(key, item, "unprocessable", f"curation failed on this trace ({type(exc).__name__}); "
                             "it was left out and the rest of the build went on")
        return frame.build()

    def _batch(self, batch: list[tuple[tuple[int, int], Incoming]]) -> None:
        if not batch:
            return
        self._frame.keys_of = {id(item): key for key, item in batch}
        items = [i for _, i in batch if self._passes_rules(i)]
        if self.grade is not None:
            self._grade([i.trace for i in items if i.trace.score is None and i.trace.feedback is None])
        if self.options.require_golden:
            items = [i for i in items if self._golden(i)]
        for item in items:
            self._candidate(item)
        self._frame.sketch(self.rules.near_dup_threshold)

    def _candidate(self, item: Incoming) -> None:
        trace = item.trace
        self._now = found = Candidate(self._frame.keys_of[id(item)],
                                       curation.exact_key([*trace.messages, trace.response]), who(item))
        formatted = self._format(item)
        self._now = None
        if formatted is not None:
            _, example, tokens, per_role = formatted
            found.example = example
            found.line = encode(example)
            found.tokens, found.per_role = tokens, per_role
            for message in example["messages"]:
                found.roles[message["role"]] = found.roles.get(message["role"], 0) + 1
            found.split = curation.split_of(curation.group_key(trace.messages, trace.conversation_id),
                                            self.options.seed, self.options.valid_share) == "valid"
        self._frame.candidates.append(found)

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
            self._frame.graded += 1
            if self.on_graded is not None:
                self.on_graded(trace, score)  # stored on the trace: it is never graded twice

    def _golden(self, item: Incoming) -> bool:
        if item.trace.is_golden(self.options.min_score):
            return True
        reason = "unscored" if item.trace.score is None else "below_min_score"
        return self._reject(item, reason, f"score {item.trace.score} is under {self.options.min_score:g}")

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
        self._now.redacted = bool(found)
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
                    self._now.pii.update(found)
                    return None
            else:
                message["content"], found = pii.redact(message["content"])
                if found:
                    self._now.pii.update(found)
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
        self._now.truncated = tokens <= self.limit
        return example, tokens, per_role

    def _reject(self, item: Incoming, reason: str, detail: str) -> bool:
        if self._now is not None:  # formatting failed: a reject only if the reduce finds it is no duplicate
            self._now.failed = (reason, detail)
        else:
            self._frame.reject(self._frame.keys_of[id(item)], item, reason, detail)
        return False


class Curator:
    """Map and reduce in one process, batch by batch: the whole curation of one stream of traces into
    train/valid/rejects JSONL. The parallel build (`curation.parallel`) runs the same two phases over chunks."""

    def __init__(self, options: CurationOptions, out_dir: Path, *, count: Callable[[str], int], grade: Grade | None = None,
                 on_graded: Callable[[Trace | TraceLine, float], None] | None = None):
        self.options = options
        self.mapper = Mapper(options, count=count, grade=grade, on_graded=on_graded)
        self.out_dir = out_dir

    def run(self, items: Iterable[Incoming], cutoff: datetime | None = None) -> CurationOutcome:
        """Curate every item; traces older than `cutoff` (the cap's boundary) are skipped as over the cap."""
        return reduce_frames(self.options, self.mapper.map(items, cutoff), self.out_dir)


def reduce_frames(options: CurationOptions, frames: Iterable[Frame], out_dir: Path) -> CurationOutcome:
    """The reduce phase over frames in input order: duplicates, the cap, the files, the stats and the estimate."""
    reducer = Reducer(options, out_dir, cost.token_limit(options.model, options.prices))
    try:
        for frame in frames:
            reducer.add(frame)
    finally:
        files = reducer.close()
    stats = reducer.stats
    stats.finish()
    manifest = f"train {files['train']['sha256']}\nvalid {files['valid']['sha256']}\n"
    estimate = cost.estimate_from_totals(stats.train, stats.train_tokens[0], stats.train_tokens[1], options.model,
                                         prices=options.prices, limit=reducer.limit)
    return CurationOutcome(stats, files, hashlib.sha256(manifest.encode()).hexdigest(), estimate)


def newest_cutoff(times: Iterable[datetime], cap: int) -> datetime | None:
    """The `cap`-th newest of these times: a build capped at `cap` reads nothing older (O(cap) memory)."""
    heap: list[datetime] = []
    for moment in times:
        if len(heap) < cap:
            heapq.heappush(heap, moment)
        elif moment > heap[0]:
            heapq.heapreplace(heap, moment)
    return heap[0] if len(heap) >= cap else None
