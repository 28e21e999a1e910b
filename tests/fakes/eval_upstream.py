"""A fake OpenAI-compatible endpoint for evaluation, served over real HTTP. Behaviour follows the model's name:
`…gold…` answers each known prompt with its known answer (benchmark gold answers, held-out teacher answers),
`…junk…` says it does not know, `…judge…` judges two answers (equal → tie, else the longer wins) and calls one
labelled answer good unless it says it is unsure or does not know, `…mute…` answers without a verdict, `…flaky…`
answers 429 with `Retry-After: 0` on every other call, `…broken…` answers 500. It counts calls, records the
auth headers it saw (fake keys only) and the most calls it had in flight at once."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from tests.fakes.chat_upstream import stream_chunks

API_KEY = "sk-fake-eval"
_ANSWER = re.compile(r"\[Answer A\]\n(.*)\n\[End of answer A\]\n\n\[Answer B\]\n(.*)\n\[End of answer B\]", re.S)
_ONE_ANSWER = re.compile(r"\[Answer\]\n(.*)\n\[End of answer\]", re.S)


class EvalUpstream:
    def __init__(self, answers: dict[str, str] | None = None, *, latency_s: float = 0.0):
        self.answers = dict(answers or {})  # last user message → answer
        self.latency_s = latency_s
        self.calls: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.app = FastAPI()
        self.app.add_api_route("/v1/chat/completions", self.chat, methods=["POST"])

    def calls_to(self, fragment: str) -> int:
        return sum(fragment in call["model"] for call in self.calls)

    async def chat(self, request: Request) -> Response:
        auth = request.headers.get("authorization") or f"api-key {request.headers.get('api-key')}"
        if auth not in (f"Bearer {API_KEY}", f"api-key {API_KEY}") and not auth.startswith("Bearer entra-"):
            return _error(401, "bad key", "invalid_api_key")
        body = json.loads(await request.body())
        self.calls.append(body)
        self.auth.append(auth)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            return self._answer(body)
        finally:
            self.in_flight -= 1

    def _answer(self, body: dict[str, Any]) -> Response:
        model = body["model"]
        if "broken" in model:
            return _error(500, "the model fell over", "server_error")
        if "flaky" in model and self.calls_to("flaky") % 2 == 1:
            return _error(429, "slow down", "rate_limit_exceeded", {"Retry-After": "0"})
        prompt = _last_user(body)
        if "mute" in model:
            text = "Both have merits."
        elif "judge" in model and _ONE_ANSWER.search(prompt):
            unsure = re.search(r"not sure|do not know", _ONE_ANSWER.search(prompt).group(1))
            text = "It is unsure. [[BAD]]" if unsure else "It answers. [[GOOD]]"
        elif "judge" in model:
            found = _ANSWER.search(prompt)
            a, b = (found.group(1), found.group(2)) if found else ("", "")
            text = "Equal. [[C]]" if a == b else ("A is fuller. [[A]]" if len(a) > len(b) else "B is fuller. [[B]]")
        elif "gold" in model:
            text = self.answers.get(prompt, "I do not know that one.")
        else:
            text = "I am not sure about that."
        if body.get("stream"):
            chunks = stream_chunks(model, text, None)
            events = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
            return StreamingResponse(iter([events]), media_type="text/event-stream")
        return JSONResponse({
            "id": "chatcmpl-eval", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": len(text.split()), "total_tokens": 5 + len(text.split())},
        })


def _last_user(body: dict[str, Any]) -> str:
    users = [m.get("content") for m in body.get("messages", []) if m.get("role") == "user"]
    return str(users[-1]) if users else ""


def _error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "api_error", "param": None, "code": code}},
                        status_code=status, headers=headers)
