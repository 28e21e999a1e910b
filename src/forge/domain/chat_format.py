"""OpenAI chat fine-tuning format: build an example from a trace, check one as OpenAI does, count its tokens.

The checks mirror OpenAI's documented format validation (cookbook "Data preparation and analysis for chat model
fine-tuning"): data_type, missing_messages_list, message_missing_key, message_unrecognized_key, unrecognized_role,
missing_content, example_missing_assistant_message; plus tools that are not a list and weights that are not 0/1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from forge.domain.content import content_text
from forge.domain.models import Trace

ROLES = ("system", "user", "assistant", "tool", "function")
MESSAGE_KEYS = ("role", "content", "name", "weight", "tool_calls", "function_call", "tool_call_id")
EXAMPLE_KEYS = ("messages", "tools", "functions", "parallel_tool_calls")
TOKENS_PER_MESSAGE = 3  # OpenAI's accounting: each message costs 3 tokens of framing, a name 1 more ...
TOKENS_PER_NAME = 1
TOKENS_PRIMING = 3  # ... and every reply is primed with 3
_MESSAGE_KEYS = frozenset(MESSAGE_KEYS)
_EXAMPLE_KEYS = frozenset(EXAMPLE_KEYS)


@dataclass(frozen=True)
class Problem:
    code: str
    message: str


def to_example(trace: Trace, system_prompt: str = "") -> dict[str, Any]:
    """A trace as one chat example: the domain's system prompt first when the trace has none, then the turns."""
    messages = [_message(m) for m in trace.messages]
    messages.append(_message(trace.response))
    if system_prompt and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system_prompt})
    example: dict[str, Any] = {"messages": messages}
    if trace.tools:
        example["tools"] = trace.tools
    return example


def _message(message: dict[str, Any]) -> dict[str, Any]:
    """Keep only what fine-tuning accepts; `developer` is the newer name of `system`."""
    out = {k: message[k] for k in MESSAGE_KEYS if k in message and message[k] is not None}
    if out.get("role") == "developer":
        out["role"] = "system"
    if isinstance(out.get("content"), list):  # content parts: keep the text, which is what is trained on
        out["content"] = content_text(out["content"])
    return out


def validate(example: Any) -> list[Problem]:
    """Every format problem of one example, as OpenAI's validator names them; empty when it is valid."""
    if not isinstance(example, dict):
        return [Problem("data_type", f"an example must be a JSON object, not {type(example).__name__}")]
    problems: list[Problem] = []
    if not example.keys() <= _EXAMPLE_KEYS:
        unknown = sorted(set(example) - set(EXAMPLE_KEYS))
        problems.append(Problem("example_unrecognized_key", f"unrecognised key(s) {unknown}"))
    if "tools" in example and not isinstance(example["tools"], list):
        problems.append(Problem("tools_data_type", "'tools' must be a list"))
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        return problems + [Problem("missing_messages_list", "'messages' must be a non-empty list")]
    for i, message in enumerate(messages):
        if not _plainly_valid(message):
            problems += _check_message(i, message)
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        problems.append(Problem("example_missing_assistant_message", "there is no assistant message to learn"))
    return problems


def _plainly_valid(message: Any) -> bool:
    """The common case, checked fast: a known role and non-blank text, nothing else that needs a closer look."""
    if type(message) is not dict or "weight" in message or not message.keys() <= _MESSAGE_KEYS:
        return False
    if "name" in message and type(message["name"]) is not str:
        return False
    content = message.get("content")
    return message.get("role") in ROLES and type(content) is str and bool(content) and not content.isspace()


def _check_message(i: int, message: Any) -> list[Problem]:
    where = f"messages[{i}]"
    if not isinstance(message, dict):
        return [Problem("message_data_type", f"{where} must be an object")]
    problems = []
    if "role" not in message or ("content" not in message and not _calls(message)):
        problems.append(Problem("message_missing_key", f"{where} needs 'role' and 'content'"))
    unknown = sorted(set(message) - set(MESSAGE_KEYS))
    if unknown:
        problems.append(Problem("message_unrecognized_key", f"{where} has unrecognised key(s) {unknown}"))
    role = message.get("role")
    if "role" in message and role not in ROLES:
        problems.append(Problem("unrecognized_role", f"{where} has role {role!r}; use one of {list(ROLES)}"))
    content = message.get("content")
    if "content" in message and not _calls(message) and (not isinstance(content, str) or not content.strip()):
        problems.append(Problem("missing_content", f"{where} has empty or non-text content"))
    if "name" in message and (not isinstance(message["name"], str) or not message["name"]):
        problems.append(Problem("invalid_name", f"{where} has name {message['name']!r}; a name is a non-empty string"))
    if "weight" in message and message["weight"] not in (0, 1):
        problems.append(Problem("invalid_weight", f"{where} has weight {message['weight']!r}; use 0 or 1"))
    return problems


def _calls(message: dict[str, Any]) -> bool:
    return bool(message.get("tool_calls") or message.get("function_call"))


def message_text(message: dict[str, Any]) -> str:
    """The text a message contributes to the token count: content, name and any calls."""
    parts = [message["content"]] if isinstance(message.get("content"), str) else []
    for key in ("tool_calls", "function_call"):
        if message.get(key):
            parts.append(json.dumps(message[key], ensure_ascii=False, separators=(",", ":")))
    return "\n".join(parts)


def count_example_tokens(example: dict[str, Any], count: Callable[[str], int]) -> tuple[int, dict[str, int]]:
    """(total tokens as OpenAI counts a chat example, tokens per role), with `count(text)` the tokenizer."""
    per_role: dict[str, int] = {}
    total = TOKENS_PRIMING
    for message in example["messages"]:
        content = message.get("content")
        plain = type(content) is str and not message.get("tool_calls") and not message.get("function_call")
        tokens = count(content if plain else message_text(message))
        name = message.get("name")
        if name and isinstance(name, str):
            tokens += count(name) + TOKENS_PER_NAME
        role = message.get("role", "?")
        per_role[role] = per_role.get(role, 0) + tokens
        total += tokens + TOKENS_PER_MESSAGE
    if example.get("tools"):
        total += count(json.dumps(example["tools"], ensure_ascii=False, separators=(",", ":")))
    return total, per_role
