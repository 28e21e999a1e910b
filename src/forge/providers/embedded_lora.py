"""The embedded LoRA server: llama.cpp (`forge.serving.lora_app`) run by Forge the way it runs Azurite.

One server per base model, on a free loopback port, with a bearer token; its state (pid, port, token) in
`$FORGE_HOME/lora/servers/{base}/state.json` (owner-only), so every Forge command on this FORGE_HOME reuses it.
Models and adapters are converted to GGUF once, by llama.cpp's own converter, into `$FORGE_HOME/lora/`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import httpx

from forge.domain.models import ModelVersion
from forge.providers import gguf
from forge.providers.inference import ChatClient, InferenceError
from forge.providers.local_model import local_path
from forge.providers.lora_server import (Endpoint, HttpLoRAServer, LoRAServerUnavailable, StudentClient, Unservable,
                                         adapter_name)
from forge.storage.azurite import stop_pid as _stop

HOST = "127.0.0.1"
MODULE = "forge.serving.lora_app"
START_TIMEOUT_S = 180.0


@dataclass
class ServerState:
    pid: int
    port: int
    token: str
    model: str  # the base GGUF it serves
    base: str  # the Hugging Face folder it was converted from

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


class EmbeddedLoRAServer:
    """Students as GGUF adapters on a llama.cpp server Forge starts on demand."""

    kind = "llama.cpp"

    def __init__(self, home: Path, *, scripts: Path | None = None, slots: int = 8, context: int = 2048,
                 outtype: str = "f32"):
        self.root = home / "lora"
        self.scripts = scripts
        self.slots = slots
        self.context = context
        self.outtype = outtype  # of converted bases and adapters: f32 keeps a small student's greedy answers exact

    # -- the LoRAServer protocol --------------------------------------------------------------------------------
    def describe(self) -> str:
        running = self.running()
        if not running:
            return (f"LoRA server: llama.cpp, embedded (started on a student's first call; state in "
                    f"{self.root / 'servers'})")
        lines = [f"LoRA server: llama.cpp, embedded — pid {s.pid} on {s.url}, base {Path(s.base).name}, "
                 f"{len(self._http(s).loaded())} adapters loaded" for s in running]
        return "\n".join(lines)

    def ensure_loaded(self, model: ModelVersion) -> Endpoint:
        base = self.base_dir(model)
        state = self.ensure_server(base)
        adapter = self.adapter_gguf(model, base)
        return self._http(state, source=lambda _: str(adapter)).ensure_loaded(model)

    def unload(self, model: ModelVersion) -> bool:
        state = self._state(self._key(self.base_dir(model)))
        return bool(state) and self._http(state).unload(model)  # type: ignore[arg-type]

    def loaded(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for state in self.running():
            found.update(self._http(state).loaded())
        return found

    def client(self, model: ModelVersion, *, timeout_s: float, concurrency: int, max_retries: int,
               transport: httpx.AsyncBaseTransport | None = None,
               fallback: Callable[[], ChatClient] | None = None) -> ChatClient:
        return StudentClient(self, model, timeout_s=timeout_s, concurrency=concurrency, max_retries=max_retries,
                             transport=transport, fallback=fallback)

    # -- conversions --------------------------------------------------------------------------------------------
    def base_dir(self, model: ModelVersion) -> Path:
        try:
            base = local_path(model.base_model)
        except InferenceError as exc:
            raise Unservable(str(exc)) from None
        if not (base / "config.json").is_file():
            raise Unservable(f"The base model {model.base_model} is not a local model folder; the embedded LoRA "
                             "server converts local Hugging Face folders only.")
        return base.resolve()

    def base_gguf(self, base: Path) -> Path:
        """The base model as GGUF, converted once per base folder (a refusal is remembered, not retried)."""
        folder = self.root / "bases" / self._key(base)
        out, refused = folder / "model.gguf", folder / "refused.txt"
        with _locked(folder / "lock"):
            if refused.is_file():
                raise Unservable(refused.read_text(encoding="utf-8"))
            if not out.is_file():
                try:
                    gguf.convert_model(base, out, outtype=self.outtype, scripts=self.scripts)
                except gguf.GGUFRefused as exc:
                    refused.write_text(str(exc), encoding="utf-8")
                    raise Unservable(str(exc)) from None
                (folder / "source.txt").write_text(str(base), encoding="utf-8")
        return out

    def adapter_gguf(self, model: ModelVersion, base: Path) -> Path:
        """The student's PEFT adapter as a GGUF adapter under the folder the server loads from."""
        try:
            adapter = local_path(model.adapter_uri or "")
        except InferenceError as exc:
            raise Unservable(f"{exc} The embedded LoRA server reads adapters on this machine.") from None
        if not (adapter / "adapter_config.json").is_file():
            raise Unservable(f"No PEFT adapter at {adapter} (adapter_config.json missing).")
        out = self.root / "adapters" / f"{adapter_name(model)}.gguf"
        with _locked(self.root / "adapters" / f".{out.stem}.lock"):
            if not out.is_file():
                try:
                    gguf.convert_adapter(adapter, base, out, outtype=self.outtype, scripts=self.scripts)
                except gguf.GGUFRefused as exc:
                    raise Unservable(str(exc)) from None
        return out

    # -- the server process -------------------------------------------------------------------------------------
    def ensure_server(self, base: Path) -> ServerState:
        """The running server for `base`, or a new one (its base converted first)."""
        key = self._key(base)
        model = self.base_gguf(base)
        folder = self.root / "servers" / key
        with _locked(folder / "lock"):
            state = self._state(key)
            if state:
                return state
            token, port = secrets.token_urlsafe(32), _free_port()
            log_path = folder / "server.log"
            args = [sys.executable, "-m", MODULE, "--model", str(model), "--name", base.name, "--port", str(port),
                    "--adapters-dir", str(self.root / "adapters"), "--slots", str(self.slots),
                    "--context", str(self.context)]
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True, env={**os.environ, "FORGE_LORA_TOKEN": token})
            state = ServerState(proc.pid, port, token, str(model), str(base))
            deadline = time.monotonic() + START_TIMEOUT_S
            while not _healthy(state):
                if proc.poll() is not None or time.monotonic() > deadline:
                    _stop(proc.pid)
                    tail = log_path.read_text(errors="replace")[-800:]
                    raise LoRAServerUnavailable(f"The embedded LoRA server did not start (log {log_path}):\n{tail}")
                time.sleep(0.1)
            _write_private(folder / "state.json", asdict(state))
            return state

    def running(self) -> list[ServerState]:
        servers = self.root / "servers"
        return [s for s in (self._state(p.name) for p in sorted(servers.iterdir()) if p.is_dir())
                if s] if servers.is_dir() else []

    def stop(self) -> int:
        """Stop every server this FORGE_HOME started; how many stopped."""
        stopped = 0
        for state in self.running():
            with _locked(self.root / "servers" / self._key(Path(state.base)) / "lock"):
                _stop(state.pid)
                (self.root / "servers" / self._key(Path(state.base)) / "state.json").unlink(missing_ok=True)
                stopped += 1
        return stopped

    def _state(self, key: str) -> ServerState | None:
        path = self.root / "servers" / key / "state.json"
        try:
            state = ServerState(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return state if _is_server(state.pid) and _healthy(state) else None

    def _http(self, state: ServerState, source: Callable[[ModelVersion], str] | None = None) -> HttpLoRAServer:
        return HttpLoRAServer(state.url, api_key=state.token, kind=self.kind, label=f"llama.cpp pid {state.pid}",
                              **({"source": source} if source else {}))

    @staticmethod
    def _key(base: Path) -> str:
        """A base folder's identity: its path and its weights' sizes and times (a rebuilt folder converts again)."""
        parts = [str(base)]
        for file in sorted(base.glob("*.safetensors")) + sorted(base.glob("tokenizer*")) + [base / "config.json"]:
            if file.is_file():
                info = file.stat()
                parts.append(f"{file.name}:{info.st_size}:{info.st_mtime_ns}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two commands reaching for the same conversion or server must share one, not race to make two.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_private(path: Path, state: dict[str, object]) -> None:
    """state.json holds the server's bearer token: created 0600 (mkstemp) and renamed into place."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(state, handle)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _healthy(state: ServerState) -> bool:
    try:
        return httpx.get(f"{state.url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _is_server(pid: int) -> bool:
    # A recorded pid may since belong to another program; only trust it if it is still our server.
    try:
        return MODULE in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False
