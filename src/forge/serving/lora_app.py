"""Forge's embedded LoRA server: llama.cpp (llama-cpp-python) behind the HTTP API vLLM gives a LoRA server.

`GET /v1/models` (the base and each adapter, `parent` = the base), `POST /v1/load_lora_adapter`,
`POST /v1/unload_lora_adapter` and `POST /v1/chat/completions` (plain and SSE), with vLLM's success texts and error
shapes, so Forge drives this server and a vLLM endpoint with one client. It listens on 127.0.0.1, wants the bearer
token Forge started it with, and loads only `.gguf` files under its adapters folder.

    python -m forge.serving.lora_app --model base.gguf --adapters-dir DIR --port N   (token in FORGE_LORA_TOKEN)
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import os
import threading
import time
from http import HTTPStatus
from pathlib import Path
from typing import Any, AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from forge.domain.content import content_text
from forge.domain.models import new_id
from forge.serving.lora_engine import Engine, EngineError, Generation

TOKEN_ENV = "FORGE_LORA_TOKEN"
DEFAULT_MAX_TOKENS = 512


def error(status: int, message: str, kind: str, param: str | None = None) -> JSONResponse:
    """vLLM's error body: `{"error": {"message", "type", "param", "code"}}` with the HTTP status as `code`."""
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": status}}, status)


class Server:
    def __init__(self, engine: Engine, *, base_name: str, base_path: str, adapters_dir: Path, token: str):
        self.engine = engine
        self.base_name = base_name
        self.base_path = base_path
        self.adapters_dir = adapters_dir.resolve()
        self.token = token
        self.started = int(time.time())
        template = engine.chat_template()
        if not template:
            raise EngineError("The base model has no chat template (tokenizer.chat_template); convert it from a "
                              "folder whose tokenizer has one.")
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        eos = engine.token_text(engine.C.llama_vocab_eos(engine.vocab))
        bos = engine.token_text(engine.C.llama_vocab_bos(engine.vocab))
        self.formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos, add_generation_prompt=True)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/health", self.health),
            Route("/v1/models", self.models),
            Route("/v1/load_lora_adapter", self.load, methods=["POST"]),
            Route("/v1/unload_lora_adapter", self.unload, methods=["POST"]),
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
        ])

    async def health(self, request: Request) -> Response:
        return Response(status_code=200)

    async def models(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        card = {"object": "model", "created": self.started, "owned_by": "forge", "permission": []}
        data = [{**card, "id": self.base_name, "root": self.base_path, "parent": None}]
        data += [{**card, "id": name, "root": path, "parent": self.base_name}
                 for name, path in sorted(self.engine.loaded().items())]
        return JSONResponse({"object": "list", "data": data})

    async def load(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        body = await _json(request)
        name, path = body.get("lora_name"), body.get("lora_path")
        if not isinstance(name, str) or not name or not isinstance(path, str) or not path:
            return error(400, "Both 'lora_name' and 'lora_path' must be provided.", "InvalidUserInput")
        file = Path(path)
        try:
            inside = file.resolve().is_relative_to(self.adapters_dir)
        except (OSError, ValueError):
            inside = False
        if not inside or file.suffix != ".gguf":
            return error(400, f"This server loads only .gguf adapters under {self.adapters_dir}.", "InvalidUserInput",
                         "lora_path")
        if not file.is_file():
            return error(404, f"Loading lora {name} failed: No adapter found for {path}", "NotFoundError", "lora_path")
        try:
            await asyncio.to_thread(self.engine.load, name, str(file.resolve()))
        except EngineError as exc:
            status = 400 if "already been loaded" in str(exc) else 500
            return error(status, str(exc), "InvalidUserInput" if status == 400 else "InternalServerError")
        return PlainTextResponse(f"Success: LoRA adapter '{name}' added successfully.")

    async def unload(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        name = (await _json(request)).get("lora_name")
        if not isinstance(name, str) or not name:
            return error(400, "'lora_name' needs to be provided to unload a LoRA adapter.", "InvalidUserInput")
        try:
            await asyncio.to_thread(self.engine.unload, name)
        except KeyError:
            return error(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
        return PlainTextResponse(f"Success: LoRA adapter '{name}' removed successfully.")

    async def chat(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        body = await _json(request)
        model = body.get("model")
        if model not in (None, self.base_name) and model not in self.engine.loaded():
            return error(404, f"The model `{model}` does not exist.", "NotFoundError", "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            return error(400, "'messages' must be a non-empty list of {role, content} objects.", "BadRequestError",
                         "messages")
        try:
            prompt = self.formatter(messages=[{**m, "content": content_text(m.get("content"))} for m in messages],
                                    tools=body.get("tools")).prompt
            tokens = await asyncio.to_thread(self.engine.tokenize, prompt)
        except (ValueError, TypeError, EngineError) as exc:  # a template that raised, or a prompt llama.cpp refuses
            return error(400, f"The messages could not be rendered with the model's chat template: {exc}",
                         "BadRequestError", "messages")
        try:
            options = _options(body)
        except ValueError as exc:
            return error(400, str(exc), "BadRequestError")
        adapter = None if model in (None, self.base_name) else model
        run = Run(self.engine, Generation(prompt=tokens, adapter=adapter, **options["generation"]), options["stop"])
        try:
            run.start()
        except EngineError as exc:
            status = 404 if "does not exist" in str(exc) else 400
            return error(status, str(exc), "NotFoundError" if status == 404 else "BadRequestError")
        ident, created, name = f"chatcmpl-{new_id()}", int(time.time()), model or self.base_name
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(_sse(run, ident, created, name, usage), media_type="text/event-stream")
        text, finish = await run.collect()
        if run.failure:
            return error(500, run.failure, "InternalServerError")
        return JSONResponse({
            "id": ident, "object": "chat.completion", "created": created, "model": name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                         "finish_reason": finish}],
            "usage": run.usage(),
        })

    def _denied(self, request: Request) -> Response | None:
        presented = request.headers.get("authorization", "")
        if hmac.compare_digest(presented.encode(), f"Bearer {self.token}".encode()):
            return None
        return JSONResponse({"error": "Unauthorized"}, status_code=HTTPStatus.UNAUTHORIZED)


class Run:
    """One generation seen from the event loop: text pieces, cut at the first stop string."""

    def __init__(self, engine: Engine, generation: Generation, stops: list[str]):
        self.engine = engine
        self.generation = generation
        self.stops = stops
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.failure: str | None = None
        self.completion_tokens = 0
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._pending: list[tuple[str, Any]] = []
        generation.emit = self._emit

    def _emit(self, kind: str, value: Any) -> None:
        """Called on the engine thread: pieces wait in a list, and the event loop is woken once for all of them."""
        with self._lock:
            self._pending.append((kind, value))
            if len(self._pending) > 1:
                return  # a wake-up is already on its way
        self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for item in pending:
            self.queue.put_nowait(item)

    def start(self) -> None:
        self.engine.submit(self.generation)

    async def pieces(self) -> AsyncIterator[tuple[str, str | None]]:
        """(text, None) as it comes, then ("", finish_reason); text that could begin a stop string is held back."""
        held, hold = "", max((len(s) for s in self.stops), default=1) - 1
        try:
            while True:
                kind, value = await self.queue.get()
                if kind == "text":
                    held += value
                    cut = min((held.index(s) for s in self.stops if s in held), default=None)
                    if cut is not None:
                        self.generation.cancelled = True
                        if held[:cut]:
                            yield held[:cut], None
                        yield "", "stop"
                        return
                    if len(held) > hold:
                        ready, held = (held[: len(held) - hold], held[len(held) - hold:]) if hold else (held, "")
                        yield ready, None
                elif kind == "done":
                    reason, self.completion_tokens = value
                    if held:
                        yield held, None
                    yield "", reason
                    return
                else:
                    self.failure = str(value)
                    return
        finally:
            self.generation.cancelled = True  # a caller that went away frees the slot at the next step

    async def collect(self) -> tuple[str, str | None]:
        parts, finish = [], None
        async for text, reason in self.pieces():
            parts.append(text)
            finish = reason or finish
        return "".join(parts), finish

    def usage(self) -> dict[str, int]:
        completion = self.completion_tokens or len(self.generation.generated)
        prompt = len(self.generation.prompt)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def _sse(run: Run, ident: str, created: int, model: str, usage: bool) -> AsyncIterator[bytes]:
    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        payload = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": choices, **extra}
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()

    yield chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                  "finish_reason": None}])
    async for text, reason in run.pieces():
        if text:
            yield chunk([{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}])
        if reason:
            yield chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}])
    if run.failure:
        yield f"data: {json.dumps({'error': {'message': run.failure, 'type': 'InternalServerError', 'code': 500}})}\n\n".encode()
    elif usage:
        yield chunk([], usage=run.usage())
    yield b"data: [DONE]\n\n"


def _options(body: dict[str, Any]) -> dict[str, Any]:
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else [s for s in (stop or []) if isinstance(s, str) and s]
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
    temperature = body.get("temperature")
    top_p = body.get("top_p")
    seed = body.get("seed")
    try:
        generation = {"max_tokens": int(limit), "temperature": float(0 if temperature is None else temperature),
                      "top_p": float(1 if top_p is None else top_p), "seed": None if seed is None else int(seed)}
    except (TypeError, ValueError):
        raise ValueError("max_tokens, temperature, top_p and seed must be numbers.") from None
    if generation["max_tokens"] < 1 or generation["temperature"] < 0 or not 0 < generation["top_p"] <= 1:
        raise ValueError("max_tokens must be at least 1, temperature at least 0, top_p in (0, 1].")
    return {"generation": generation, "stop": stops}


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m forge.serving.lora_app", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="the base model, GGUF")
    parser.add_argument("--name", help="the base model's name in /v1/models (default: the file's stem)")
    parser.add_argument("--adapters-dir", required=True, type=Path, help="only .gguf adapters under it are loaded")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--slots", type=int, default=8, help="requests decoded together")
    parser.add_argument("--context", type=int, default=2048, help="tokens per request, prompt and answer")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    token = os.environ.get(TOKEN_ENV)
    if not token:
        parser.error(f"set {TOKEN_ENV} to the bearer token callers must send")
    import uvicorn

    engine = Engine(args.model, slots=args.slots, context=args.context, threads=args.threads)
    server = Server(engine, base_name=args.name or args.model.stem, base_path=str(args.model),
                    adapters_dir=args.adapters_dir, token=token)
    try:
        uvicorn.run(server.app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    finally:
        engine.close()


if __name__ == "__main__":
    main()
