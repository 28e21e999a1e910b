"""Where curation reads traces from, one at a time: Table storage, a JSONL file, or an uploaded JSONL/CSV/JSON file.

Each source yields `Incoming` items: the line (or record) number, and either a Trace or the reason it is not one.
Lines are read with a length cap, so a 50 MB line costs a bounded buffer and becomes a reject, not a crash.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Callable, Iterator

from forge.domain.models import Trace, utcnow
from forge.domain.traces import MAX_LINE_BYTES, InvalidTrace, TraceLine, parse_record, read_line
from forge.storage import Storage

BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Incoming:
    number: int | None  # the line or record number in a file; None for stored traces
    trace: Trace | TraceLine | None  # a JSONL line becomes a TraceLine: the same fields, no pydantic model
    error: InvalidTrace | None = None


Source = Callable[[], Iterator[Incoming]]  # a source can be read again (a capped build reads it twice)


def lines(stream: IO[bytes], max_bytes: int = MAX_LINE_BYTES, first: int = 1) -> Iterator[tuple[int, bytes | None]]:
    """(number, line) for each line; an over-long line comes as None after being skipped in bounded chunks."""
    number = first - 1
    while True:
        line = stream.readline(max_bytes + 1)
        if not line:
            return
        number += 1
        if len(line) > max_bytes and not line.endswith(b"\n"):
            while True:  # drain the rest of the long line without holding it
                rest = stream.readline(_CHUNK)
                if not rest or rest.endswith(b"\n"):
                    break
            yield number, None
            continue
        yield number, line


def parse_jsonl(stream: IO[bytes], *, tenant: str, domain: str, source: str = "file",
                first_line: int = 1) -> Iterator[Incoming]:
    """Traces from OpenAI chat JSONL or prompt/response lines; every bad line becomes an error item."""
    now = utcnow()
    for number, line in lines(stream, first=first_line):
        if line is None:
            yield Incoming(number, None, InvalidTrace("too_large", f"line is over {MAX_LINE_BYTES} bytes"))
            continue
        if number == 1 and line.startswith(BOM):
            line = line[len(BOM):]  # a BOM opening the file marks its encoding; it is not data
        if not line.strip():
            continue
        if line.startswith(BOM):
            yield Incoming(number, None, InvalidTrace("bom", "a byte-order mark inside the file: files were joined?"))
            continue
        try:
            trace = read_line(line, tenant=tenant, domain=domain, source=source, now=now,
                              trace_id=f"{domain}.line-{number}")
            yield Incoming(number, trace)
        except InvalidTrace as bad:
            yield Incoming(number, None, bad)
        except (RecursionError, MemoryError) as exc:  # nested past any sane depth: a poisoned line, not a crash
            yield Incoming(number, None, InvalidTrace("unprocessable", f"the line cannot be read ({type(exc).__name__})"))


def parse_upload(data: IO[bytes], fmt: str, *, tenant: str, domain: str) -> Iterator[Incoming]:
    """An uploaded file: `jsonl`, `csv` (prompt and response columns, optional system/score) or `json` (an array)."""
    if fmt == "jsonl":
        yield from parse_jsonl(data, tenant=tenant, domain=domain, source="upload")
        return
    now = utcnow()
    records: Iterator[tuple[int, Any]]
    if fmt == "csv":
        text = io.TextIOWrapper(data, encoding="utf-8-sig", errors="strict", newline="")
        try:
            records = ((i, _csv_record(row)) for i, row in enumerate(csv.DictReader(text), start=2))
            yield from _records(records, tenant, domain, now)
        except (UnicodeDecodeError, csv.Error) as exc:
            yield Incoming(None, None, InvalidTrace("invalid_csv", f"the CSV cannot be read further: {exc}"))
        return
    try:
        array = json.load(data)
    except (ValueError, UnicodeDecodeError) as exc:
        yield Incoming(None, None, InvalidTrace("invalid_json", f"the file is not one JSON array ({exc})"))
        return
    if not isinstance(array, list):
        yield Incoming(None, None, InvalidTrace("not_an_array", "a .json upload must be an array of records"))
        return
    yield from _records(enumerate(array, start=1), tenant, domain, now)


def _records(records: Iterator[tuple[int, Any]], tenant: str, domain: str, now: datetime) -> Iterator[Incoming]:
    for number, record in records:
        try:
            yield Incoming(number, parse_record(record, tenant=tenant, domain=domain, source="upload", now=now))
        except InvalidTrace as bad:
            yield Incoming(number, None, bad)


def _csv_record(row: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {k: v for k, v in row.items() if k in ("prompt", "response", "system") and v}
    if row.get("score"):
        try:
            record["score"] = float(row["score"])
        except ValueError:
            record["score"] = row["score"]  # parse_record rejects it with its reason
    return record


def stored(storage: Storage, tenant: str, domain: str, since: datetime | None, until: datetime | None) -> Source:
    """A domain's traces in Table storage, oldest first."""

    def read() -> Iterator[Incoming]:
        for trace in storage.traces.scan(tenant, domain=domain, since=since, until=until):
            yield Incoming(None, trace)

    return read


def from_file(path: str, *, tenant: str, domain: str, since: datetime | None = None,
              until: datetime | None = None) -> Source:
    """A JSONL file's traces; with `since`/`until`, only lines whose time falls in [since, until)."""

    def read() -> Iterator[Incoming]:
        with open(path, "rb") as stream:
            yield from _window(parse_jsonl(stream, tenant=tenant, domain=domain), since, until)

    return read


def file_range(path: str, start: int, end: int, first_line: int, *, tenant: str, domain: str,
               since: datetime | None = None, until: datetime | None = None) -> Iterator[Incoming]:
    """The traces of bytes [start, end) of a JSONL file (cut at line starts), numbered from `first_line`."""
    with open(path, "rb", buffering=0) as raw:
        stream = io.BufferedReader(_Range(raw, start, end), buffer_size=1 << 20)
        yield from _window(parse_jsonl(stream, tenant=tenant, domain=domain, first_line=first_line), since, until)


def _window(items: Iterator[Incoming], since: datetime | None, until: datetime | None) -> Iterator[Incoming]:
    for item in items:
        moment = item.trace.created_at if item.trace else None
        if moment and ((since and moment < since) or (until and moment >= until)):
            continue
        yield item


class _Range(io.RawIOBase):
    """A window of a file, read as if it were the whole file."""

    def __init__(self, raw: IO[bytes], start: int, end: int):
        self.raw, self.left = raw, end - start
        raw.seek(start)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            return 0
        view = memoryview(buffer)[: min(len(buffer), self.left)]
        n = self.raw.readinto(view) or 0
        self.left -= n
        return n
