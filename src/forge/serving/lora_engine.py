"""llama.cpp under Forge's embedded LoRA server: one base model, GGUF adapters loaded by name, continuous batching.

One thread owns every llama.cpp object. Each step it takes the running requests that share one adapter, decodes one
token for each (or a chunk of a new request's prompt) in a single batch, and hands the text to the request's callback;
adapters take turns, so a production and a canary student both make progress. A request's KV cells belong to its own
sequence id, so switching the context's adapter between steps never mixes two students' caches.
"""

from __future__ import annotations

import codecs
import collections
import ctypes
import os
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

FinishReason = str  # "stop" | "length"


class EngineError(Exception):
    """A request or an adapter the engine refuses; the message is llama.cpp's reason where it gave one."""


@dataclass
class Generation:
    """One completion: prompt tokens in, text out through `emit(kind, value)` on the engine thread."""

    prompt: list[int]
    adapter: str | None
    max_tokens: int
    # ("text", str) … then ("done", (finish_reason, completion_tokens)) or ("error", str); called on the engine thread
    emit: Callable[[str, Any], None] = field(default=lambda kind, value: None)
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    cancelled: bool = False
    seq: int = -1
    fed: int = 0  # prompt tokens decoded so far
    generated: list[int] = field(default_factory=list)
    _decoder: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace"))
    _bytes: bytes = b""  # a run of byte tokens not yet turned into text
    _rng: Any = None


class Engine:
    """A base GGUF model and its adapters; `submit` generations from any thread, `close` when done."""

    def __init__(self, model_path: Path, *, slots: int = 8, context: int = 2048, threads: int | None = None,
                 exact_cache: bool = True):
        import llama_cpp as C

        self.C = C
        self._log: collections.deque[str] = collections.deque(maxlen=20)
        self._log_callback = C.llama_log_callback(self._on_log)  # kept: llama.cpp holds only the pointer
        C.llama_log_set(self._log_callback, ctypes.c_void_p(0))
        C.llama_backend_init()
        params = C.llama_model_default_params()
        params.n_gpu_layers = 0
        self.model = C.llama_model_load_from_file(str(model_path).encode(), params)
        if not self.model:
            raise EngineError(f"llama.cpp could not load {model_path}: {self._last_error()}")
        self.vocab = C.llama_model_get_vocab(self.model)
        self.n_vocab = C.llama_vocab_n_tokens(self.vocab)
        # Looked up per generated token, so read once: each token's text, the end-of-generation tokens, and the
        # SentencePiece byte tokens (<0xE2>…), whose runs are text only as a whole, as transformers decodes them.
        self.pieces = [self._piece(t, special=False) for t in range(self.n_vocab)]
        self.eog = frozenset(t for t in range(self.n_vocab) if C.llama_vocab_is_eog(self.vocab, t))
        self.byte_tokens = frozenset(t for t in range(self.n_vocab)
                                     if C.llama_vocab_get_attr(self.vocab, t) & C.LLAMA_TOKEN_ATTR_BYTE)
        self.slots = slots
        self.context = min(context, C.llama_model_n_ctx_train(self.model) or context)
        cparams = C.llama_context_default_params()
        cparams.n_ctx = self.context * slots
        cparams.n_seq_max = slots
        cparams.n_batch = cparams.n_ubatch = min(512, cparams.n_ctx)
        # Half the logical CPUs (the physical cores, usually): ggml's threads wait for each other every op, so one
        # more thread than the cores free costs far more than it adds (2 threads on a busy 2-core machine: 12 tokens/s
        # against 758 with 1, measured on a 4M-parameter student; docs/decisions.md, issue 17).
        cparams.n_threads = cparams.n_threads_batch = threads or max(1, (os.cpu_count() or 2) // 2)
        cparams.kv_unified = True  # any one request may use up to `context` cells of the shared cache
        if exact_cache:  # f32 keys and values: a float32 student answers as it does with transformers, batched or not
            cparams.type_k = cparams.type_v = C.GGML_TYPE_F32
        self.ctx = C.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            raise EngineError(f"llama.cpp could not make a context: {self._last_error()}")
        self.memory = C.llama_get_memory(self.ctx)
        self.n_batch = cparams.n_batch
        self.batch = C.llama_batch_init(self.n_batch, 0, 1)
        self.adapters: dict[str, Any] = {}  # name → llama_adapter_lora*
        self.paths: dict[str, str] = {}
        self._applied: str | None = None
        self._retiring: set[str] = set()  # unloaded names freed once no running request uses them
        self._inbox: queue.Queue[Callable[[], None]] = queue.Queue()
        self._running: list[Generation] = []
        self._waiting: collections.deque[Generation] = collections.deque()
        self._free = list(range(slots))
        self._turn = 0
        self._closed = False
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="llama-engine", daemon=True)
        self._thread.start()

    # -- called from any thread -------------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        """Tokens of a rendered prompt; special tokens in the text (the chat template's) are parsed, none added."""
        raw = text.encode("utf-8")
        buffer = (self.C.llama_token * (len(raw) + 8))()
        count = self.C.llama_tokenize(self.vocab, raw, len(raw), buffer, len(buffer), False, True)
        if count < 0:
            raise EngineError("the prompt could not be tokenized")
        return list(buffer[:count])

    def chat_template(self) -> str | None:
        raw = self.C.llama_model_chat_template(self.model, None)
        return raw.decode("utf-8") if raw else None

    def token_text(self, token: int) -> str:
        return self._piece(token, special=True).decode("utf-8", errors="replace")

    def load(self, name: str, path: str) -> None:
        """Load a GGUF adapter under `name` (idempotent for the same file); EngineError with llama.cpp's reason."""
        self._call(lambda: self._load(name, path))

    def unload(self, name: str) -> None:
        self._call(lambda: self._unload(name))

    def loaded(self) -> dict[str, str]:
        return dict(self.paths)

    def submit(self, generation: Generation) -> None:
        if len(generation.prompt) + 1 > self.context:
            raise EngineError(f"The prompt has {len(generation.prompt)} tokens; this server's context is "
                              f"{self.context}. Shorten the conversation.")
        generation.max_tokens = max(1, min(generation.max_tokens, self.context - len(generation.prompt)))
        if generation.adapter is not None and generation.adapter not in self.paths:
            raise EngineError(f"The model `{generation.adapter}` does not exist.")
        self._call(lambda: self._waiting.append(generation), wait=False)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=30)
        C = self.C
        C.llama_batch_free(self.batch)
        C.llama_free(self.ctx)
        C.llama_model_free(self.model)  # frees its adapters too

    # -- the engine thread --------------------------------------------------------------------------------------
    def _call(self, action: Callable[[], Any], wait: bool = True) -> Any:
        done: Future = Future()

        def run() -> None:
            try:
                done.set_result(action())
            except BaseException as exc:  # handed back to the caller's thread
                done.set_exception(exc)

        self._inbox.put(run)
        self._wake.set()
        return done.result(timeout=300) if wait else None

    def _loop(self) -> None:
        while not self._closed:
            while True:
                try:
                    self._inbox.get_nowait()()
                except queue.Empty:
                    break
            self._admit()
            if not self._running:
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                continue
            self._step()
            self._free_retired()

    def _admit(self) -> None:
        while self._waiting and self._free:
            generation = self._waiting.popleft()
            if generation.cancelled:
                continue
            if generation.adapter is not None and generation.adapter not in self.paths:  # unloaded meanwhile
                generation.emit("error", f"The model `{generation.adapter}` does not exist.")
                continue
            generation.seq = self._free.pop()
            if generation.temperature > 0:
                generation._rng = np.random.default_rng(generation.seed)
            self._running.append(generation)

    def _step(self) -> None:
        groups: dict[str | None, list[Generation]] = {}
        for generation in self._running:
            groups.setdefault(generation.adapter, []).append(generation)
        names = sorted(groups, key=lambda n: n or "")
        adapter = names[self._turn % len(names)]
        self._turn += 1
        self._apply(adapter)
        batch, outputs, n = self.batch, [], 0
        for generation in groups[adapter]:
            if generation.cancelled:
                continue
            if generation.fed < len(generation.prompt):
                chunk = generation.prompt[generation.fed: generation.fed + (self.n_batch - n)]
                for offset, token in enumerate(chunk):
                    n = self._add(n, token, generation.fed + offset, generation.seq, False)
                generation.fed += len(chunk)
                if generation.fed == len(generation.prompt):
                    batch.logits[n - 1] = True
                    outputs.append((generation, n - 1))
            else:
                position = len(generation.prompt) + len(generation.generated) - 1
                n = self._add(n, generation.generated[-1], position, generation.seq, True)
                outputs.append((generation, n - 1))
            if n >= self.n_batch:
                break
        batch.n_tokens = n
        if n and self.C.llama_decode(self.ctx, batch) != 0:
            for generation in groups[adapter]:
                self._finish(generation, error=f"llama.cpp could not decode: {self._last_error() or 'no KV space'}")
            return
        if outputs:  # the output rows come in batch order: one argmax over all of them
            logits = np.ctypeslib.as_array(self.C.llama_get_logits(self.ctx), shape=(len(outputs), self.n_vocab))
            greedy = logits.argmax(axis=1)
            for row, (generation, _) in enumerate(outputs):
                token = int(greedy[row]) if generation._rng is None else _sample(logits[row], generation)
                self._next_token(generation, token)
        for generation in [g for g in self._running if g.cancelled]:
            self._finish(generation)

    def _add(self, n: int, token: int, position: int, seq: int, logits: bool) -> int:
        batch = self.batch
        batch.token[n] = token
        batch.pos[n] = position
        batch.n_seq_id[n] = 1
        batch.seq_id[n][0] = seq
        batch.logits[n] = logits
        return n + 1

    def _next_token(self, generation: Generation, token: int) -> None:
        if token in self.eog:
            self._finish(generation, reason="stop")
            return
        generation.generated.append(token)
        piece = self.pieces[token]
        if token in self.byte_tokens:
            generation._bytes += piece
            text = ""
        else:
            text = _flush(generation) + generation._decoder.decode(piece)
        if text:
            generation.emit("text", text)
        if len(generation.generated) >= generation.max_tokens:
            self._finish(generation, reason="length")

    def _finish(self, generation: Generation, reason: FinishReason = "stop", error: str | None = None) -> None:
        if generation in self._running:
            self._running.remove(generation)
            self.C.llama_memory_seq_rm(self.memory, generation.seq, -1, -1)
            self._free.append(generation.seq)
        if error:
            generation.emit("error", error)
        elif not generation.cancelled:
            tail = _flush(generation) + generation._decoder.decode(b"", final=True)
            if tail:
                generation.emit("text", tail)
            generation.emit("done", (reason, len(generation.generated)))

    def _apply(self, name: str | None) -> None:
        if name == self._applied:
            return
        C = self.C
        if name is None:
            C.llama_set_adapters_lora(self.ctx, None, 0, None)
        else:
            adapters = (C.llama_adapter_lora_p_ctypes * 1)(self.adapters[name])
            scales = (ctypes.c_float * 1)(1.0)
            if C.llama_set_adapters_lora(self.ctx, adapters, 1, scales) != 0:
                raise EngineError(f"llama.cpp could not apply adapter {name}")
        self._applied = name

    def _load(self, name: str, path: str) -> None:
        if self.paths.get(name) == path and name not in self._retiring:
            return
        if name in self.paths and name not in self._retiring:
            raise EngineError(f"The lora adapter '{name}' has already been loaded from {self.paths[name]}; unload "
                              "it first or load this file under another name.")
        self._log.clear()
        adapter = self.C.llama_adapter_lora_init(self.model, path.encode())
        if not adapter:
            raise EngineError(f"llama.cpp refused the adapter {Path(path).name}: {self._last_error() or 'unknown'}")
        self._retiring.discard(name)
        if name in self.adapters:  # a retired copy still draining: replace its handle once free
            self._free_adapter(name)
        self.adapters[name], self.paths[name] = adapter, path

    def _unload(self, name: str) -> None:
        if name not in self.paths:
            raise KeyError(name)
        del self.paths[name]
        self._retiring.add(name)  # running requests finish with it; new ones get a 404
        self._free_retired()

    def _free_retired(self) -> None:
        busy = {g.adapter for g in self._running}
        for name in [n for n in self._retiring if n not in busy]:
            self._retiring.discard(name)
            self._free_adapter(name)

    def _free_adapter(self, name: str) -> None:
        adapter = self.adapters.pop(name)
        if self._applied == name:
            self._apply(None)
        self.C.llama_adapter_lora_free(adapter)

    def _piece(self, token: int, special: bool) -> bytes:
        buffer = ctypes.create_string_buffer(64)
        size = self.C.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, special)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = self.C.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, special)
        return buffer.raw[:size]

    def _on_log(self, level: int, text: bytes, _user: Any) -> None:
        if level in (2, 3):  # warnings and errors: the reason a load or decode failed
            self._log.append(text.decode("utf-8", errors="replace").strip())

    def _last_error(self) -> str:
        return "; ".join(line for line in self._log if line)[-500:]


def _flush(generation: Generation) -> str:
    """A finished run of byte tokens as text: its UTF-8, or one U+FFFD per byte when it is not valid UTF-8 (what
    transformers' ByteFallback decoder gives)."""
    run, generation._bytes = generation._bytes, b""
    try:
        return run.decode("utf-8")
    except UnicodeDecodeError:
        return "\ufffd" * len(run)


def _sample(logits: np.ndarray, generation: Generation) -> int:
    """Temperature and nucleus (top-p) sampling with the request's own generator."""
    scaled = logits.astype(np.float64) / generation.temperature
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    if generation.top_p < 1.0:
        order = np.argsort(-probs)
        keep = order[: int(np.searchsorted(np.cumsum(probs[order]), generation.top_p)) + 1]
        mask = np.zeros_like(probs)
        mask[keep] = probs[keep]
        probs = mask / mask.sum()
    return int(generation._rng.choice(len(probs), p=probs))
