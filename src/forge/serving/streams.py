"""Streaming pieces of the router: opening a stream with a time limit on its first chunk, and rebuilding the
assistant's message from the chunks for the trace."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

from forge.providers.inference import ChatClient

DONE = b"data: [DONE]\n\n"


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


async def open_stream(
    client: ChatClient, body: dict[str, Any], timeout_s: float | None
) -> tuple[AsyncIterator[dict[str, Any]], dict[str, Any] | None]:
    """The stream and its first chunk; a failure or timeout before that chunk raises, so the caller can fall back."""
    chunks = aiter(client.stream(body))
    try:
        async with asyncio.timeout(timeout_s):
            first = await anext(chunks, None)
    except BaseException:
        await close(chunks)
        raise
    return chunks, first


async def close(chunks: AsyncIterator[Any]) -> None:
    """Close an upstream stream early (its connection and concurrency slot go back to the client)."""
    closer = getattr(chunks, "aclose", None)
    if closer is not None:
        try:
            await closer()
        except Exception:
            pass


class Assembler:
    """The assistant message (content and tool calls) of choice 0, and the usage, put back together from chunks."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        self.model = self.model or chunk.get("model")
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                self.content.append(delta["content"])
            for call in delta.get("tool_calls") or []:
                slot = self.tool_calls.setdefault(call.get("index", 0), {"type": "function", "function": {
                    "name": "", "arguments": ""}})
                if call.get("id"):
                    slot["id"] = call["id"]
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
            self.finish_reason = choice.get("finish_reason") or self.finish_reason

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content) if self.content else None}
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        return message
