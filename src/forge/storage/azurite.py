"""Azurite, run by Forge when no storage is configured: found in the project's node_modules, on free ports."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

from forge.domain.errors import ForgeError
from forge.storage.account import EMULATOR_ACCOUNT

# Azurite's well-known development account; the key is public and documented, and only opens the emulator.
ACCOUNT = EMULATOR_ACCOUNT
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
HOST = "127.0.0.1"
ENTRY = Path("azurite") / "dist" / "src" / "azurite.js"


class AzuriteUnavailable(ForgeError):
    status = 503
    title = "Azurite unavailable"


@dataclass
class AzuriteInstance:
    pid: int
    blob_port: int
    queue_port: int
    table_port: int

    @property
    def connection_string(self) -> str:
        base = f"http://{HOST}:{{}}/{ACCOUNT}"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={base.format(self.blob_port)};QueueEndpoint={base.format(self.queue_port)};"
            f"TableEndpoint={base.format(self.table_port)};"
        )


def find_node_modules(configured: Path | None = None, search_from: Sequence[Path] | None = None) -> Path:
    """The node_modules holding Azurite: the configured one, else the nearest above the cwd or this package."""
    candidates = [configured] if configured else []
    for start in search_from if search_from is not None else (Path.cwd(), Path(__file__).resolve()):
        candidates += [p / "node_modules" for p in (start, *start.parents)]
    for candidate in candidates:
        if candidate and (candidate / ENTRY).is_file():
            return candidate
    raise AzuriteUnavailable(
        "Azurite is not installed (no node_modules/azurite found). Run `make setup` in the Forge checkout, "
        "or set FORGE_NODE_MODULES, or point FORGE_STORAGE_CONNECTION at a storage account."
    )


def start(node_modules: Path, *, data_dir: Path | None, log_path: Path, detach: bool,
          ports: tuple[int, int, int] | None = None) -> AzuriteInstance:
    """Start Azurite on free ports, or on `ports` (blob, queue, table: a restart where clients expect it), in
    memory when `data_dir` is None, and wait until it answers."""
    node = shutil.which("node")
    if node is None:
        raise AzuriteUnavailable("Node.js is not on PATH; install Node 20+ and run `make setup`.")
    blob, queue, table = ports or _free_ports(3)
    args = [node, str(node_modules / ENTRY), "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry"]
    args += ["--blobHost", HOST, "--queueHost", HOST, "--tableHost", HOST]
    args += ["--blobPort", str(blob), "--queuePort", str(queue), "--tablePort", str(table)]
    if data_dir is None:
        args.append("--inMemoryPersistence")
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        args += ["--location", str(data_dir)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=detach
        )
    instance = AzuriteInstance(proc.pid, blob, queue, table)
    deadline = time.monotonic() + 30
    while not all(_answers(p) for p in (blob, queue, table)):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_pid(proc.pid)
            tail = log_path.read_text(errors="replace")[-800:]
            raise AzuriteUnavailable(f"Azurite did not start (log {log_path}):\n{tail}\nRun `make setup` and retry.")
        time.sleep(0.1)
    return instance


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """Stop a process we started: SIGTERM, then SIGKILL if it lingers."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
            if finished:
                return
        except ChildProcessError:  # not our child: poll its existence instead
            if not _alive(pid):
                return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class ManagedAzurite:
    """The Azurite Forge runs for one FORGE_HOME: data under `$FORGE_HOME/azurite`, reused by later commands."""

    def __init__(self, home: Path, node_modules: Path | None = None):
        self.dir = home / "azurite"
        self.state_file = self.dir / "state.json"
        self.node_modules = node_modules

    def ensure(self) -> AzuriteInstance:
        """The running instance this home started before, or a new one."""
        with self._lock():
            running = self.running()
            if running:
                return running
            instance = start(
                find_node_modules(self.node_modules), data_dir=self.dir / "data", log_path=self.dir / "azurite.log",
                detach=True,
            )
            self.state_file.write_text(json.dumps(asdict(instance)))
            return instance

    def running(self) -> AzuriteInstance | None:
        if not self.state_file.is_file():
            return None
        try:
            instance = AzuriteInstance(**json.loads(self.state_file.read_text()))
        except (ValueError, TypeError):
            return None
        if _is_azurite(instance.pid) and _answers(instance.table_port) and _answers(instance.blob_port):
            return instance
        return None

    def stop(self) -> bool:
        """Stop the instance this home started; never touches an Azurite someone else runs. True if one stopped."""
        with self._lock():
            instance = self.running()
            self.state_file.unlink(missing_ok=True)
            if instance is None:
                return False
            stop_pid(instance.pid)
            return True

    @contextmanager
    def _lock(self) -> Iterator[None]:
        # Two commands starting at once must share one Azurite, not race to start two.
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_azurite(pid: int) -> bool:
    # A recorded pid may since belong to another program; only trust it if it is still Azurite.
    try:
        return "azurite" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return _alive(pid)
