"""Chat rendering and the loss mask: which tokens of a conversation the model learns (assistant turns only)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# The fallback template for tokenizers that ship none: ChatML (as Qwen uses), with OpenAI-style tool calls and
# tool results. (transformers renders with trim_blocks, so a newline right after a tag is an expression.)
# Each turn's rendering extends the rendering of the turns before it, which the loss mask needs.
CHATML_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n"
    "{% if messages[0].role == 'system' %}{{ messages[0].content }}\n\n{% endif %}"
    "You may call these tools; answer a call as <tool_call>{\"name\": ..., \"arguments\": ...}</tool_call>."
    "{% for tool in tools %}{{ '\\n' }}{{ tool | tojson }}{% endfor %}<|im_end|>\n"
    "{% endif %}"
    "{% for message in messages %}"
    "{% if message.role == 'system' %}{% if not (tools and loop.first) %}"
    "<|im_start|>system\n{{ message.content }}<|im_end|>\n{% endif %}"
    "{% elif message.role == 'tool' %}<|im_start|>tool\n{{ message.content }}<|im_end|>\n"
    "{% else %}<|im_start|>{{ message.role }}\n{% if message.content %}{{ message.content }}{% endif %}"
    "{% for call in message.tool_calls or [] %}"
    "{% if message.content or not loop.first %}{{ '\\n' }}{% endif %}"
    "<tool_call>{\"name\": {{ call.function.name | tojson }}, \"arguments\": {{ call.function.arguments | tojson }}}"
    "</tool_call>{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CHATML_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ROLES = {"system", "user", "assistant", "tool"}


class DataError(ValueError):
    """A training example the trainer cannot use; the message names the line and what to fix."""


@dataclass(frozen=True)
class Example:
    """One tokenized conversation: `targets[i]` is the token to predict after `input_ids[i]`, or -100."""

    input_ids: list[int]
    targets: list[int]
    line: int

    @property
    def trained_tokens(self) -> int:
        return sum(t != -100 for t in self.targets)


def normalize(record: Any, line: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """The messages and tools of an OpenAI chat fine-tuning record, checked; DataError says what is wrong."""
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list) or not record["messages"]:
        raise DataError(f"line {line}: expected an object with a non-empty 'messages' list (OpenAI chat format).")
    messages = []
    for i, raw in enumerate(record["messages"]):
        if not isinstance(raw, dict) or raw.get("role") not in ROLES:
            raise DataError(f"line {line}: message {i} needs a role among {sorted(ROLES)}.")
        message = dict(raw)
        message["content"] = _text(message.get("content"), line, i)
        if message.get("weight", 1) not in (0, 1):
            raise DataError(f"line {line}: message {i} has weight {message['weight']!r}; use 0 or 1.")
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not function.get("name"):
                raise DataError(f"line {line}: message {i} has a tool call without function.name.")
            if isinstance(function.get("arguments"), str):
                function = {**function, "arguments": _json_or_text(function["arguments"])}
            call.update(function=function)
        messages.append(message)
    tools = record.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise DataError(f"line {line}: 'tools' must be a list of tool definitions.")
    if not any(m["role"] == "assistant" and m.get("weight", 1) == 1 for m in messages):
        raise DataError(
            f"line {line}: no assistant message with weight 1, so every token is masked and nothing is learned; "
            "add the assistant's answer or drop the line."
        )
    return messages, tools


def _text(content: Any, line: int, index: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):  # content parts: only text parts train a text model
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise DataError(f"line {line}: message {index} content must be a string or a list of text parts.")


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def tokenize(tokenizer: Any, record: Any, line: int, max_length: int) -> Example | None:
    """Render with the chat template and label the assistant turns (weight 1); None if truncation left no label."""
    messages, tools = normalize(record, line)
    text, spans = _render_with_spans(tokenizer, messages, tools, line)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    trained = [any(s <= start < e for s, e in spans) for start, _ in offsets]
    ids, trained = ids[:max_length], trained[:max_length]
    # Targets are shifted here, per example, so a packed row never predicts across two examples.
    targets = [ids[i + 1] if trained[i + 1] else -100 for i in range(len(ids) - 1)] + [-100]
    example = Example(ids, targets, line)
    return example if example.trained_tokens else None


def _render_with_spans(
    tokenizer: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, line: int
) -> tuple[str, list[tuple[int, int]]]:
    """The whole conversation as text, and the character spans of the assistant turns to learn."""
    def render(msgs: list[dict[str, Any]], prompt: bool) -> str:
        return tokenizer.apply_chat_template(msgs, tools=tools, tokenize=False, add_generation_prompt=prompt)

    full = render(messages, False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant" or message.get("weight", 1) == 0:
            continue
        before, through = render(messages[:i], True) if i else "", render(messages[: i + 1], False)
        if not (through.startswith(before) and full.startswith(through)):
            raise DataError(
                f"line {line}: the chat template does not render turns as extensions of earlier turns, so the "
                "assistant's tokens cannot be located; set model.chat_template to a template that does (e.g. ChatML)."
            )
        spans.append((len(before), len(through)))
    return full, spans
