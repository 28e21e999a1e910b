"""Datasets for people: list, show (stats and a preview), validate a file or a stored dataset, upload, soft delete."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from forge import tokens
from forge.bootstrap import Forge
from forge.domain import chat_format, cost, curation
from forge.domain.dataset_stats import MIN_EXAMPLES, too_few_message
from forge.domain.errors import DatasetInvalid, DatasetNotFound, InvalidInput
from forge.domain.models import Dataset, new_id, utcnow
from forge.curation import sources as trace_sources
from forge.curation.curator import CurationOptions
from forge.services.domains import domain_for
from forge.services.pricing import price_table
from forge.services.curation import CurateResult, build, store
from forge.storage.tables import Page

UPLOAD_FORMATS = ("jsonl", "csv", "json")
PREVIEW = 3


@dataclass
class Validation:
    """A file checked as OpenAI would: each problem with its line, the examples counted, and warnings."""

    examples: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tokens: int = 0

    @property
    def valid(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "examples": self.examples, "tokens": self.tokens,
                "problems": self.problems, "warnings": self.warnings}


def validate_lines(lines: Iterable[tuple[int, bytes | None]], count: Callable[[str], int], limit: int,
                   max_problems: int = 1000) -> Validation:
    """Check JSONL lines one by one; every problem is reported with its line number (up to `max_problems`)."""
    report = Validation()

    def problem(line: int, code: str, message: str) -> None:
        if len(report.problems) < max_problems:
            report.problems.append({"line": line, "code": code, "message": message})

    special = 0
    for number, raw in lines:
        if raw is None:
            problem(number, "too_large", "the line is too long to be one example")
            continue
        if number == 1 and raw.startswith(trace_sources.BOM):
            raw = raw[len(trace_sources.BOM):]
        if not raw.strip():
            continue
        try:
            example = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            problem(number, "invalid_json", f"not valid JSON or not UTF-8 ({exc})")
            continue
        found = chat_format.validate(example)
        for p in found:
            problem(number, p.code, p.message)
        if found:
            continue
        report.examples += 1
        tokens, _ = chat_format.count_example_tokens(example, count)
        report.tokens += min(tokens, limit)
        if tokens > limit:
            problem(number, "over_token_limit", f"{tokens} tokens; the model trains on at most {limit}")
        special += any(curation.has_special_tokens(m.get("content") or "") for m in example["messages"]
                       if isinstance(m.get("content"), str))
    if report.examples < MIN_EXAMPLES:
        problem(0, "too_few_examples", too_few_message(report.examples))
    if special:
        report.warnings.append(f"{special} examples contain provider control tokens such as <|endoftext|>.")
    return report


def validate_file(forge: Forge, path: Path) -> Validation:
    """`forge datasets validate FILE`."""
    if not path.is_file():
        raise InvalidInput(f"No file {path}; give the path of a JSONL dataset.")
    count, limit = _counter(forge)
    with open(path, "rb") as stream:
        return validate_lines(trace_sources.lines(stream), count, limit)


def validate_stored(forge: Forge, tenant: str, dataset_id: str) -> dict[str, Validation]:
    """Validate a stored dataset's train and valid files again, streaming them from Blob."""
    get(forge, tenant, dataset_id)
    count, limit = _counter(forge)
    reports = {}
    for name in ("train", "valid"):
        lines = enumerate(_blob_lines(forge.storage.datasets.open_file(tenant, dataset_id, name)), start=1)
        reports[name] = validate_lines(lines, count, limit)
    reports["valid"].problems = [p for p in reports["valid"].problems if p["code"] != "too_few_examples"]
    return reports


def list_datasets(forge: Forge, tenant: str, *, include_deleted: bool = False, limit: int = 50,
                  continuation: str | None = None) -> Page[Dataset]:
    page = forge.storage.datasets.list(tenant, limit=limit, continuation=continuation)
    if not include_deleted:
        page.items = [d for d in page.items if d.deleted_at is None]
    return page


def get(forge: Forge, tenant: str, dataset_id: str, *, include_deleted: bool = False) -> Dataset:
    dataset = forge.storage.datasets.get(tenant, dataset_id)
    if dataset.deleted_at is not None and not include_deleted:
        raise DatasetNotFound(f"Dataset '{dataset_id}' was deleted; list datasets to find another.")
    return dataset


def show(forge: Forge, tenant: str, dataset_id: str) -> dict[str, Any]:
    """The record, its stats.json, and the first few training examples."""
    dataset = get(forge, tenant, dataset_id)
    stats: dict[str, Any] = {}
    preview: list[dict[str, Any]] = []
    try:  # a dataset registered without files (by a test or an older Forge) still shows its record
        stats = json.loads(forge.storage.datasets.read_bytes(tenant, dataset_id, "stats.json"))
        for record in forge.storage.datasets.read_file(tenant, dataset_id, "train"):
            preview.append(record)
            if len(preview) >= PREVIEW:
                break
    except DatasetNotFound:
        pass
    return {**dataset.public(), "stats": stats, "preview": preview}


def delete(forge: Forge, tenant: str, dataset_id: str) -> Dataset:
    """Soft delete: hidden from lists, files kept (a model trained on it still names its data)."""
    dataset = get(forge, tenant, dataset_id)
    dataset.deleted_at = utcnow()
    return forge.storage.datasets.save(dataset)


def upload(forge: Forge, tenant: str, domain: str, data: IO[bytes], fmt: str, *, valid_share: float = 0.1,
           seed: int = 42) -> CurateResult:
    """A dataset from a person's file: format, PII, special-token, token-limit and dedup rules apply; no score needed."""
    if fmt not in UPLOAD_FORMATS:
        raise InvalidInput(f"Unknown format '{fmt}'; upload one of {', '.join(UPLOAD_FORMATS)}.")
    options = CurationOptions(domain=domain_for(forge, tenant, domain), model=forge.settings.student_base_model,
                      min_score=forge.settings.min_score, valid_share=valid_share, seed=seed, require_golden=False,
                      prices=price_table(forge.settings))
    source = lambda: trace_sources.parse_upload(data, fmt, tenant=tenant, domain=domain)  # noqa: E731 (read once)
    with tempfile.TemporaryDirectory(prefix="forge-upload-") as scratch:
        outcome = build(forge, options, source, Path(scratch), cutoff=None, store_scores=False, tenant=tenant)
        if outcome.stats.train < MIN_EXAMPLES:
            raise DatasetInvalid(too_few_message(outcome.stats.train))
        return store(forge, tenant=tenant, domain=domain, dataset_id=new_id(), outcome=outcome, work=Path(scratch),
                     source=f"upload:{fmt}")


def _counter(forge: Forge) -> tuple[Callable[[str], int], int]:
    model = forge.settings.student_base_model
    count = tokens.counter_for_model(model, home=forge.settings.home, node_modules=forge.settings.node_modules)
    return count, cost.token_limit(model, price_table(forge.settings))


def _blob_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    rest = b""
    for chunk in chunks:
        rest += chunk
        *done, rest = rest.split(b"\n")
        yield from done
    if rest:
        yield rest
