"""Traces in: the accepted input formats, and trace ids that say where a trace is stored."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson
from ulid import ULID

from forge.domain.models import Trace, is_golden
from forge.domain.names import valid_name

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
MAX_LINE_BYTES = 4 * 1024 * 1024


class InvalidTrace(ValueError):
    """One input record that cannot become a trace; `reason` is a short code for summaries."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def new_trace_id(domain: str, created_at: datetime) -> str:
    """`{domain}.{ULID}` with the ULID's time set to the trace's time, so the id alone locates the trace."""
    return f"{domain}.{ULID.from_datetime(created_at)}"


def derived_trace_id(domain: str, created_at: datetime, *origin: str) -> str:
    """`{domain}.{ULID}` like `new_trace_id`, but its random part is a hash of `origin` (tenant and the caller's id,
    or tenant, file hash and line number): the same record imported again gets the same id, so it is stored once."""
    digest = hashlib.sha256("\x1f".join(origin).encode()).digest()
    millis = int(created_at.timestamp() * 1000)
    return f"{domain}.{ULID.from_bytes(millis.to_bytes(6, 'big') + digest[:10])}"


def split_trace_id(trace_id: str) -> tuple[str, datetime]:
    """The domain and the millisecond time a trace id encodes; InvalidTrace if it is not one of ours."""
    domain, dot, ulid_text = trace_id.rpartition(".")
    try:
        if not dot or not valid_name(domain):
            raise ValueError
        return domain, ULID.from_str(ulid_text).datetime
    except ValueError:
        raise InvalidTrace("bad_id", f"'{trace_id}' is not a trace id (expected '<domain>.<ULID>')") from None


def parse_line(
    line: str | bytes, *, tenant: str, domain: str, source: str, now: datetime, trace_id: str | None = None,
    origin: str | None = None,
) -> Trace:
    """One JSONL line → a Trace; raises InvalidTrace with the reason."""
    return parse_record(decode_line(line), tenant=tenant, domain=domain, source=source, now=now, trace_id=trace_id,
                        origin=origin)


def decode_line(line: str | bytes) -> Any:
    """One JSONL line → its JSON value, exactly as `json.loads` reads it; InvalidTrace when it is not JSON."""
    if len(line) > MAX_LINE_BYTES:
        raise InvalidTrace("too_large", f"line is {len(line)} bytes; the limit is {MAX_LINE_BYTES}")
    try:
        record = orjson.loads(line)  # several times faster than json; it differs only where checked below
    except orjson.JSONDecodeError:
        record = None
    else:
        if not _beyond_int64(record):
            return record
    # Where orjson refuses (NaN, lone surrogates, bad input: json's message names the error) or read an integer
    # past 64 bits as a float, json decides.
    try:
        return json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidTrace("invalid_json", f"not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None


def any_float(value: Any, beyond: float = 0.0) -> bool:
    """Whether a decoded JSON value holds a float (with `beyond`, only one whose magnitude is at least that)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is float and not -beyond < item < beyond:
            return True
    return False


def _beyond_int64(value: Any) -> bool:
    """Whether a decoded value holds a float too large for int64: orjson reads such integers as floats."""
    return any_float(value, beyond=9.2e18)


@dataclass(slots=True)
class TraceLine:
    """A trace read from a file for curation only: Trace's fields, checked by the same rules, without the cost of
    a pydantic model per line (it is never stored)."""

    id: str
    tenant: str
    domain: str
    created_at: datetime
    messages: list[dict[str, Any]]
    response: dict[str, Any]
    source: str = "file"
    model: str | None = None
    tools: list[dict[str, Any]] | None = None
    score: float | None = None
    feedback: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    conversation_id: str | None = None
    user: str | None = None
    external_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def is_golden(self, min_score: float) -> bool:
        return is_golden(self.score, self.feedback, min_score)


def read_line(line: str | bytes, *, tenant: str, domain: str, source: str, now: datetime,
              trace_id: str) -> TraceLine:
    """One JSONL line → a TraceLine for curation, accepted and refused exactly as `parse_line` would."""
    fields = _fields(decode_line(line), domain, now)
    tools = fields["tools"]
    if tools is not None and not all(isinstance(tool, dict) for tool in tools):
        Trace(id=trace_id, tenant=tenant, source=source, **fields)  # raises pydantic's own error, as parse_line does
    return TraceLine(id=trace_id, tenant=tenant, source=source, **fields)


def parse_record(
    record: Any, *, tenant: str, domain: str, source: str, now: datetime, trace_id: str | None = None,
    origin: str | None = None,
) -> Trace:
    """A decoded record (OpenAI chat format or a prompt/response pair) → a Trace; `trace_id` names a trace that
    is never stored (curation from a file) and saves minting a ULID. With `origin` (where the record came from:
    file hash and line, batch hash and index) the id is derived, from the record's own `id` when it has one."""
    fields = _fields(record, domain, now)
    if trace_id is None and origin is not None:
        external = fields["external_id"]
        trace_id = derived_trace_id(fields["domain"], fields["created_at"], tenant,
                                    *(("id", external) if external else ("at", origin)))
    return Trace(id=trace_id or new_trace_id(fields["domain"], fields["created_at"]), tenant=tenant, source=source,
                 **fields)


def _fields(record: Any, domain: str, now: datetime) -> dict[str, Any]:
    """A decoded record's trace fields (all but id, tenant and source), checked; InvalidTrace with the reason."""
    if not isinstance(record, dict):
        raise InvalidTrace("not_an_object", f"expected a JSON object, got {type(record).__name__}")
    if "messages" in record:
        messages, response = _chat(record["messages"])
    elif "prompt" in record or "response" in record:
        messages, response = _pair(record)
    else:
        raise InvalidTrace("no_messages", "needs a 'messages' list, or 'prompt' and 'response'")
    domain = _domain(record.get("domain", domain))
    created_at = _time(record.get("created_at", record.get("timestamp")), now)
    usage = record.get("usage") if isinstance(record.get("usage"), dict) else {}
    return {
        "domain": domain,
        "created_at": created_at,
        "messages": messages,
        "response": response,
        "model": _optional_str(record, "model"),
        "tools": _optional_list(record, "tools"),
        "score": _score(record.get("score")),
        "feedback": _feedback(record.get("feedback")),
        "prompt_tokens": _optional_int(record.get("prompt_tokens", usage.get("prompt_tokens")), "prompt_tokens"),
        "completion_tokens": _optional_int(
            record.get("completion_tokens", usage.get("completion_tokens")), "completion_tokens"
        ),
        "latency_ms": _optional_number(record.get("latency_ms"), "latency_ms"),
        "conversation_id": _optional_str(record, "conversation_id"),
        "user": _optional_str(record, "user"),
        "external_id": _optional_str(record, "id"),
        "metadata": _metadata(record.get("metadata")),
    }


def _chat(messages: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise InvalidTrace("no_messages", "'messages' must be a non-empty list")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidTrace("bad_message", f"messages[{i}] is not an object")
        role = message.get("role")
        if role not in ROLES:
            raise InvalidTrace("bad_message", f"messages[{i}] has role {role!r}; use one of {sorted(ROLES)}")
        if "content" not in message and not message.get("tool_calls") and not message.get("function_call"):
            raise InvalidTrace("bad_message", f"messages[{i}] has no 'content'")
        if message.get("name") is not None and not isinstance(message["name"], str):
            raise InvalidTrace("bad_message", f"messages[{i}] has a 'name' that is not a string")
    if messages[-1]["role"] != "assistant":
        raise InvalidTrace("no_assistant_response", "the last message must be the assistant's answer")
    if len(messages) < 2:
        raise InvalidTrace("no_messages", "there is an answer but no prompt before it")
    return messages[:-1], messages[-1]


def _pair(record: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    prompt, response = record.get("prompt"), record.get("response")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidTrace("no_messages", "'prompt' must be a non-empty string")
    if not isinstance(response, str) or not response.strip():
        raise InvalidTrace("no_assistant_response", "'response' must be a non-empty string")
    messages = [{"role": "user", "content": prompt}]
    if isinstance(record.get("system"), str):
        messages.insert(0, {"role": "system", "content": record["system"]})
    return messages, {"role": "assistant", "content": response}


def _domain(value: Any) -> str:
    if not isinstance(value, str) or not valid_name(value):
        raise InvalidTrace("bad_field", f"'domain' {value!r} is not a domain name")
    return value


def _time(value: Any, now: datetime) -> datetime:
    if value is None:
        return now
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(value, tz=timezone.utc)
        else:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise InvalidTrace("bad_field", f"'created_at' {value!r} is not an ISO 8601 time or a Unix time") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _score(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise InvalidTrace("bad_score", f"'score' {value!r} must be a number from 0 to 100")
    return float(value)


def _feedback(value: Any) -> str | None:
    if value is None or value in ("approved", "rejected"):
        return value
    raise InvalidTrace("bad_feedback", f"'feedback' {value!r} must be 'approved' or 'rejected'")


def _optional_str(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InvalidTrace("bad_field", f"'{key}' must be a string")


def _optional_list(record: dict[str, Any], key: str) -> list[Any] | None:
    value = record.get(key)
    if value is None or isinstance(value, list):
        return value
    raise InvalidTrace("bad_field", f"'{key}' must be a list")


def _optional_int(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidTrace("bad_field", f"'{key}' must be a non-negative integer")
    return value


def _optional_number(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InvalidTrace("bad_field", f"'{key}' must be a non-negative number")
    return float(value)


def _metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidTrace("bad_field", "'metadata' must be an object")
    return value
