"""A fake upstream for canary simulations, over real HTTP: production, candidates and the judge by model name.

Each answer carries a quality (`q=N`) fixed by the model and the prompt: `prod` draws it from a hash of the prompt,
`cand-equal` is a point better on even-numbered tasks and a point worse on odd ones (as good on average), `cand-better` always beats production,
`cand-worse` always loses, `cand-broken` answers 500. `judge` reads both answers' qualities and names the better,
as an LLM judge would: `[[A]]`, `[[B]]` or `[[C]]`."""

from __future__ import annotations

import json
import re
import time
import zlib
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

API_KEY = "sk-fake-canary"
_Q = re.compile(r"q=(-?\d+)")


def wiring(url: str) -> dict[str, Any]:
    """Settings that make the upstream at `url` the teacher and the judge, with routes read fresh on every call."""
    return {"teacher_base_url": f"{url}/v1", "teacher_api_key": API_KEY, "teacher_model": "teacher",
            "grader_model": "judge", "router_timeout_s": 10.0, "router_route_ttl_s": 0.0}


def quality(model: str, prompt: str) -> int:
    if model == "cand-better":
        return 1000
    if model == "cand-worse":
        return -1
    if model == "cand-equal":  # as good on average: a point above production on even tasks, a point below on odd
        number = int(prompt.rsplit(" ", 1)[-1]) if prompt.rsplit(" ", 1)[-1].isdigit() else 0
        return quality("prod", prompt) + (1 if number % 2 == 0 else -1)
    return zlib.crc32(f"{model}|{prompt}".encode()) % 100


class CanaryUpstream:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.app = FastAPI()
        self.app.add_api_route("/v1/chat/completions", self.chat, methods=["POST"])

    async def chat(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
        body = json.loads(await request.body())
        model = body["model"]
        self.calls.append(model)
        if "broken" in model:
            return JSONResponse({"error": {"message": "the candidate fell over", "type": "server_error"}},
                                status_code=500)
        prompt = str(body["messages"][-1].get("content"))
        if model == "judge":
            text = _verdict(prompt)
        else:
            text = f"{model} q={quality(model, prompt)}: {prompt}"
        usage = {"prompt_tokens": 10, "completion_tokens": len(text.split()), "total_tokens": 10 + len(text.split())}
        return JSONResponse({"id": "chatcmpl-canary", "object": "chat.completion", "created": int(time.time()),
                             "model": model, "usage": usage,
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                          "finish_reason": "stop"}]})


def _verdict(prompt: str) -> str:
    a = prompt.split("[Answer A]", 1)[1].split("[End of answer A]", 1)[0]
    b = prompt.split("[Answer B]", 1)[1].split("[End of answer B]", 1)[0]
    qa, qb = (int(m.group(1)) if (m := _Q.search(x)) else -10 for x in (a, b))
    return "Compared. " + ("[[A]]" if qa > qb else "[[B]]" if qb > qa else "[[C]]")


def body(i: int) -> dict[str, Any]:
    return {"model": "forge:coding", "messages": [{"role": "user", "content": f"task number {i}"}],
            "user": f"user-{i}"}
