"""A fake OpenAI-compatible chat upstream (teacher and students) served over real HTTP by the router's tests and
bench. Behaviour follows the requested model's name: `…broken…` answers 500, `…reject…` 400, `…slow…` hangs,
`…midstream…` breaks its stream after one chunk; any other name answers `"{model}: {last user message}"`."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import zlib
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

API_KEY = "sk-fake-upstream"


class ChatUpstream:
    def __init__(self, *, latency_s: float = 0.0, jitter_s: float = 0.0, hang_s: float = 30.0, record: bool = True,
                 hold: threading.Event | None = None):
        self.hold = hold  # set: a stream sends its first chunk, then the rest only once the event is set
        self.streams_finished = 0
        self.latency_s = latency_s
        self.jitter_s = jitter_s  # model time varies: each answer takes latency_s ± jitter_s, fixed per `user`
        self.hang_s = hang_s
        self.record = record
        self.calls: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.add_api_route("/v1/chat/completions", self.chat, methods=["POST"])

    def models_called(self) -> list[str]:
        return [call["model"] for call in self.calls]

    async def chat(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return _error(401, "bad upstream key", "invalid_api_key")
        body = json.loads(await request.body())
        if self.record:
            self.calls.append(body)
        model = body["model"]
        if self.latency_s:
            spread = zlib.crc32(str(body.get("user")).encode()) / 0xFFFFFFFF * 2 - 1  # the same call, the same time
            await asyncio.sleep(self.latency_s + spread * self.jitter_s)
        if "slow" in model:
            await asyncio.sleep(self.hang_s)
        if "broken" in model:
            return _error(500, "the student fell over", "server_error")
        if "reject" in model:
            return _error(400, "this model rejects the request", "invalid_request")
        text = f"{model}: {_last_user(body)}"
        usage = {"prompt_tokens": 7, "completion_tokens": len(text.split()), "total_tokens": 7 + len(text.split())}
        if body.get("stream"):
            include = (body.get("stream_options") or {}).get("include_usage") is True
            return StreamingResponse(self._chunks(model, text, usage if include else None),
                                     media_type="text/event-stream")
        return JSONResponse({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage,
        })

    async def _chunks(self, model: str, text: str, usage: dict[str, Any] | None) -> AsyncIterator[bytes]:
        for i, chunk in enumerate(stream_chunks(model, text, usage)):
            yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
            if "midstream" in model:
                raise RuntimeError("stream broken on purpose")
            if i == 0 and self.hold is not None:
                await asyncio.to_thread(self.hold.wait, 30)
        yield b"data: [DONE]\n\n"
        self.streams_finished += 1


def stream_chunks(model: str, text: str, usage: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The chunks the fake sends for `text`: role, one per word, finish, then usage when asked for."""
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model}
    words = text.split(" ")
    chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    chunks += [{**base, "choices": [{"index": 0, "delta": {"content": w if i == 0 else " " + w},
                                     "finish_reason": None}]} for i, w in enumerate(words)]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage is not None:
        chunks.append({**base, "choices": [], "usage": usage})
    return chunks


def _last_user(body: dict[str, Any]) -> str:
    users = [m.get("content") for m in body.get("messages", []) if m.get("role") == "user"]
    return str(users[-1]) if users else ""


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "api_error", "param": None, "code": code}},
                        status_code=status)
