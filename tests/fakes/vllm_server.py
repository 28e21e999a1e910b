"""A contract fake of a vLLM OpenAI server started with `--enable-lora`, `--api-key` and
`VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`, over real HTTP: `GET /v1/models`, `POST /v1/load_lora_adapter`,
`POST /v1/unload_lora_adapter`, `POST /v1/chat/completions` (plain and SSE, `stream_options.include_usage`).

Success and error shapes are vLLM's (vllm/entrypoints/openai/models/serving.py, serve/lora/api_router.py): a load or
unload answers 200 with the text "Success: LoRA adapter '…' added successfully."; errors are
`{"error": {"message", "type", "param", "code"}}` with the status as `code` — 400 InvalidUserInput (a name or path
missing, a name already loaded), 404 NotFoundError (an adapter it cannot find at the path, an unknown model, an
unload of a name not loaded), 500 InternalServerError (an adapter the engine refuses, e.g. a rank over
`--max-lora-rank`); a wrong key is 401 `{"error": "Unauthorized"}`.

`read(path)` stands in for the engine reading an adapter: it returns the adapter_config.json text, or None when there
is none at the path. A loaded adapter answers each known prompt with its known answer (the `answers` table), the
base model says it does not know.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from forge.api.server import serving

API_KEY = "sk-fake-vllm"
BASE = "Qwen/Qwen2.5-0.5B-Instruct"


@contextmanager
def running(**options: Any) -> Iterator["FakeVLLM"]:
    server = FakeVLLM(**options)
    with serving(server.app) as url:
        server.url = url
        yield server


class FakeVLLM:
    def __init__(self, *, read: Callable[[str], str | None], answers: dict[str, str] | None = None,
                 max_lora_rank: int = 16, base: str = BASE):
        self.read = read
        self.answers = dict(answers or {})
        self.max_lora_rank = max_lora_rank
        self.base = base
        self.url = ""
        self.loras: dict[str, str] = {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []  # (path, model or adapter, body)
        self.app = FastAPI()
        self.app.add_api_route("/v1/models", self.models, methods=["GET"])
        self.app.add_api_route("/v1/load_lora_adapter", self.load, methods=["POST"])
        self.app.add_api_route("/v1/unload_lora_adapter", self.unload, methods=["POST"])
        self.app.add_api_route("/v1/chat/completions", self.chat, methods=["POST"])

    async def models(self, request: Request) -> Response:
        if (denied := _denied(request)) is not None:
            return denied
        card = {"object": "model", "created": int(time.time()), "owned_by": "vllm", "max_model_len": 32768,
                "permission": [{"id": "modelperm-fake", "object": "model_permission"}]}
        data = [{**card, "id": self.base, "root": self.base, "parent": None}]
        data += [{**card, "id": name, "root": path, "parent": self.base} for name, path in self.loras.items()]
        return JSONResponse({"object": "list", "data": data})

    async def load(self, request: Request) -> Response:
        if (denied := _denied(request)) is not None:
            return denied
        body = json.loads(await request.body())
        name, path = body.get("lora_name"), body.get("lora_path")
        self.calls.append(("/v1/load_lora_adapter", str(name), body))
        if not name or not path:
            return error(400, "Both 'lora_name' and 'lora_path' must be provided.", "InvalidUserInput")
        if not body.get("load_inplace") and name in self.loras:
            return error(400, f"The lora adapter '{name}' has already been loaded. If you want to load the adapter "
                              "in place, set 'load_inplace' to True.", "InvalidUserInput")
        config = self.read(path)
        if config is None:
            return error(404, f"Loading lora {name} failed: No adapter found for {path}", "NotFoundError")
        rank = json.loads(config).get("r", 0)
        if rank > self.max_lora_rank:
            return error(500, f"LoRA rank {rank} is greater than max_lora_rank {self.max_lora_rank}.",
                         "InternalServerError")
        self.loras[name] = path
        return PlainTextResponse(f"Success: LoRA adapter '{name}' added successfully.")

    async def unload(self, request: Request) -> Response:
        if (denied := _denied(request)) is not None:
            return denied
        body = json.loads(await request.body())
        name = body.get("lora_name")
        self.calls.append(("/v1/unload_lora_adapter", str(name), body))
        if not name:
            return error(400, "'lora_name' needs to be provided to unload a LoRA adapter.", "InvalidUserInput")
        if name not in self.loras:
            return error(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
        del self.loras[name]
        return PlainTextResponse(f"Success: LoRA adapter '{name}' removed successfully.")

    async def chat(self, request: Request) -> Response:
        if (denied := _denied(request)) is not None:
            return denied
        body = json.loads(await request.body())
        model = body.get("model")
        self.calls.append(("/v1/chat/completions", str(model), body))
        if model not in (self.base, *self.loras):
            return error(404, f"The model `{model}` does not exist.", "NotFoundError", "model")
        prompt = next((m.get("content") for m in reversed(body.get("messages") or []) if m.get("role") == "user"), "")
        text = self.answers.get(prompt, "I do not know that one.") if model in self.loras else "I do not know."
        usage = {"prompt_tokens": 7, "completion_tokens": len(text.split()), "total_tokens": 7 + len(text.split())}
        ident, created = "chatcmpl-fakevllm", int(time.time())
        if body.get("stream"):
            def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
                payload = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": choices, **extra}
                return b"data: " + json.dumps(payload).encode() + b"\n\n"

            parts = [chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                             "finish_reason": None}])]
            words = text.split(" ")
            parts += [chunk([{"index": 0, "delta": {"content": word + (" " if i < len(words) - 1 else "")},
                              "logprobs": None, "finish_reason": None}]) for i, word in enumerate(words)]
            parts.append(chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]))
            if (body.get("stream_options") or {}).get("include_usage"):
                parts.append(chunk([], usage=usage))
            parts.append(b"data: [DONE]\n\n")
            return StreamingResponse(iter(parts), media_type="text/event-stream")
        return JSONResponse({
            "id": ident, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "tool_calls": []},
                         "logprobs": None, "finish_reason": "stop", "stop_reason": None}],
            "usage": usage, "prompt_logprobs": None,
        })


def error(status: int, message: str, kind: str, param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": status}}, status)


def _denied(request: Request) -> Response | None:
    if request.headers.get("authorization") == f"Bearer {API_KEY}":
        return None
    return JSONResponse({"error": "Unauthorized"}, status_code=401)
