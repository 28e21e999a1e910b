"""Curation on several worker processes: the same bytes as one, whatever the split; a poisoned line or a worker
that dies costs that line only."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

from forge import tokens
from forge.curation import parallel
from forge.curation.curator import Curator, CurationOptions
from forge.curation.sources import from_file
from forge.domain import pii
from forge.domain_templates import load_domains
from forge.services.curation import CurateRequest, curate
from tests.factories import varied_record

MODEL = "gpt-4.1-mini-2025-04-14"
POISON = "POISON-7f3a"  # a message holding this kills the worker process that maps it (the test's fault)
FILES = ("train", "valid", "rejects")


def counter_tools(home: str) -> parallel.Tools:
    return tokens.counter_for_model(MODEL, home=Path(home)), None, None


def mixed_lines(n: int) -> list[bytes]:
    """Golden traces with exact and near duplicates across the file, PII, low scores and broken lines."""
    lines = []
    for i in range(n):
        record = varied_record(i)
        if i % 9 == 0 and i:
            record = varied_record(i - 7)  # an exact duplicate of an earlier line
        elif i % 11 == 0 and i:
            record = varied_record(i - 5)
            record["messages"][1]["content"] += " Hope it helps."  # a near duplicate
        if i % 13 == 0:
            record["messages"][0]["content"] += f" Mail me at dev{i}@corp.example.com."
        if i % 17 == 0:
            record["score"] = 40
        line = json.dumps(record).encode()
        lines.append(line[:30] if i % 29 == 0 else line)
    return lines


def serial(tmp_path: Path, source: Path, options: CurationOptions) -> dict[str, bytes]:
    out = tmp_path / "serial"
    count, _, _ = counter_tools(str(tmp_path))
    Curator(options, out, count=count).run(from_file(str(source), tenant="t", domain="coding")())
    return {name: (out / f"{name}.jsonl").read_bytes() for name in FILES}


def scaled(tmp_path: Path, source: Path, options: CurationOptions, *, chunks: int, workers: int,
           context: str | None = None) -> tuple[dict[str, bytes], object]:
    out = tmp_path / f"w{workers}-c{chunks}"
    job = parallel.MapJob(options, functools.partial(counter_tools, str(tmp_path)), "line")
    units = parallel.plan_file(str(source), chunks, tenant="t", domain="coding")
    assert 1 < len(units) <= chunks  # a long line can swallow a cut
    outcome = parallel.curate_units(job, units, out, tmp_path / "scratch", workers=workers, context=context)
    return {name: (out / f"{name}.jsonl").read_bytes() for name in FILES}, outcome


def options(**extra) -> CurationOptions:
    return CurationOptions(domain=load_domains()["coding"], model=MODEL, valid_share=0.2, seed=9, **extra)


def test_three_workers_over_seven_chunks_write_the_same_bytes_as_one_process(tmp_path):
    source = tmp_path / "traces.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + b"\n".join(mixed_lines(2600)) + b"\n")
    one = serial(tmp_path, source, options())
    many, outcome = scaled(tmp_path, source, options(), chunks=7, workers=3)
    assert many == one
    assert outcome.stats.dropped["duplicate"] > 100 and outcome.stats.dropped["near_duplicate"] > 100
    assert outcome.stats.pii["email"] > 100 and outcome.stats.read == 2600
    rejects = [json.loads(line) for line in many["rejects"].splitlines()]
    assert [r["line"] for r in rejects] == sorted(r["line"] for r in rejects)  # in file order
    assert not pii.find(many["train"].decode())


def test_a_capped_build_keeps_the_same_examples_on_any_number_of_workers(tmp_path):
    source = tmp_path / "traces.jsonl"
    source.write_bytes(b"\n".join(mixed_lines(1500)) + b"\n")
    capped = options(max_examples=700)
    many, outcome = scaled(tmp_path, source, capped, chunks=5, workers=2)
    assert many == serial(tmp_path, source, capped) and outcome.stats.kept == 700


def test_a_line_nested_too_deep_to_parse_is_a_reject_and_the_build_goes_on(tmp_path):
    lines = mixed_lines(300)
    lines[120] = b'{"messages": [{"role": "user", "content": "q"}], "metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    source = tmp_path / "traces.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    many, outcome = scaled(tmp_path, source, options(), chunks=4, workers=2)
    rejects = {json.loads(line)["line"]: json.loads(line)["reason"] for line in many["rejects"].splitlines()}
    assert rejects[121] == "unprocessable" and outcome.stats.read == 300
    assert many == serial(tmp_path, source, options())


def _dies_on_poison(redact):
    def wrapped(text: str):
        if POISON in text:
            os._exit(3)  # what a segfault or the OOM killer does to a worker: no exception, no cleanup
        return redact(text)

    return wrapped


def test_a_line_that_kills_its_worker_becomes_one_reject_and_every_other_line_is_curated(tmp_path, monkeypatch):
    lines = mixed_lines(800)
    poisoned = varied_record(5000)
    poisoned["messages"][0]["content"] += f" {POISON}"
    lines[431] = json.dumps(poisoned).encode()
    source = tmp_path / "traces.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(b"\n".join([*lines[:431], b"", *lines[432:]]) + b"\n")  # the same lines, that one blank
    expected = serial(tmp_path, clean, options())
    # Forked workers inherit the patched redaction; this process never calls it with the poison.
    monkeypatch.setattr(pii, "redact", _dies_on_poison(pii.redact))
    many, outcome = scaled(tmp_path, source, options(), chunks=6, workers=2, context="fork")
    assert many["train"] == expected["train"] and many["valid"] == expected["valid"]
    rejects = [json.loads(line) for line in many["rejects"].splitlines()]
    assert [r for r in rejects if r["reason"] == "unprocessable"] == [
        {"reason": "unprocessable", "line": 432,
         "detail": "mapping this trace stopped the worker process; it was left out and the rest of the build went on"}]
    assert len(rejects) == len(expected["rejects"].splitlines()) + 1 and outcome.stats.read == 800


def test_a_build_from_the_trace_table_on_two_workers_stores_the_dataset_one_worker_stores(forge, storage, tenant):
    from datetime import datetime, timedelta, timezone

    from forge.domain.models import Trace
    from forge.domain.traces import new_trace_id

    start = datetime(2026, 11, 3, tzinfo=timezone.utc)
    traces = []
    for i in range(80):
        record = varied_record(i % 60)
        at = start + timedelta(milliseconds=i * 7)
        traces.append(Trace(id=new_trace_id("coding", at), tenant=tenant, domain="coding", created_at=at,
                            messages=record["messages"][:-1], response=record["messages"][-1],
                            score=95 if i % 10 else 50))
    storage.traces.add(traces)
    one = curate(forge, CurateRequest(tenant=tenant, domain="coding", seed=3, workers=1))
    two = curate(forge, CurateRequest(tenant=tenant, domain="coding", seed=3, workers=2))
    assert two.sha256 == one.sha256 and two.dropped == one.dropped == {"below_min_score": 8, "duplicate": 18}
    first = list(forge.storage.datasets.read_file(tenant, one.dataset_id, "rejects"))
    assert list(forge.storage.datasets.read_file(tenant, two.dataset_id, "rejects")) == first
