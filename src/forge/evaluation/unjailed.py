"""`UnjailedRunner`: the operator's opt-in (FORGE_SANDBOX_UNJAILED) for a single-tenant laptop without bubblewrap.

Where the jail can be made it is used all the same. Where it cannot (macOS), the code runs in a plain subprocess
under rlimits and an audit hook: that stops mistakes, not an attacker (it can write the user's files, read their
environment, reach the network), so it is refused as soon as a second tenant exists, whose data it could read.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Callable, Collection

from forge.evaluation.jail import BubblewrapRunner
from forge.evaluation.sandbox import SandboxLimits, SandboxUnavailable, TestRun, verdict

log = logging.getLogger(__name__)
RECHECK_S = 60.0  # how long a tenant count stays good: a key created for a second tenant ends the opt-in

_BARE = r'''
import resource, sys
memory, cpu, output = (int(x) for x in sys.argv[2:5])
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_FSIZE, (output, output))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
_BLOCKED = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
            "pty.", "ctypes.", "urllib.Request", "webbrowser.")
def _guard(event, args):
    if event.startswith(_BLOCKED):
        raise PermissionError(f"{event} is not allowed in the benchmark sandbox")
sys.addaudithook(_guard)
with open(sys.argv[1], encoding="utf-8") as f:
    source = f.read()
exec(compile(source, "solution.py", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
'''


class UnjailedRunner:
    def __init__(self, tenants: Callable[[], Collection[str]], jail: BubblewrapRunner | None = None) -> None:
        self.tenants = tenants  # every tenant this Forge serves (API key holders and the configured one)
        self.jail = jail or BubblewrapRunner()
        self._jailed: bool | None = None
        self._checked_at = -math.inf
        self._lock = threading.Lock()

    def check(self) -> None:
        with self._lock:
            if self._jailed is None:
                try:
                    self.jail.check()
                    self._jailed = True
                except SandboxUnavailable as exc:
                    self._jailed = False
                    log.warning("FORGE_SANDBOX_UNJAILED: the jail cannot be made here (%s); model-written benchmark "
                                "code runs with rlimits only, which does not stop malicious code.", exc)
            if self._jailed or time.monotonic() - self._checked_at < RECHECK_S:
                return
            count = len(set(self.tenants()))
            if count > 1:
                raise SandboxUnavailable(
                    f"FORGE_SANDBOX_UNJAILED is refused: this Forge serves {count} tenants, and code run outside a "
                    "jail could read the others' data. Install bubblewrap (Debian/Ubuntu: `apt-get install "
                    "bubblewrap`), or set FORGE_SANDBOX_POOL_ENDPOINT to use Azure Container Apps sessions.")
            self._checked_at = time.monotonic()

    def run(self, source: str, limits: SandboxLimits) -> TestRun:
        self.check()
        if self._jailed:
            return self.jail.run(source, limits)
        return _run_bare(source, limits)


def _run_bare(source: str, limits: SandboxLimits) -> TestRun:
    with tempfile.TemporaryDirectory(prefix="forge-sandbox-") as tmp:
        folder = Path(tmp)
        (folder / "solution.py").write_text(source, encoding="utf-8")
        output = folder / "output.txt"
        args = [sys.executable, "-I", "-X", "utf8", "-c", _BARE, str(folder / "solution.py"),
                str(limits.memory_mb << 20), str(max(1, math.ceil(limits.time_s))), str(limits.output_kb << 10)]
        with output.open("wb") as out:
            proc = subprocess.Popen(args, cwd=folder, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, start_new_session=True)
            try:
                proc.wait(limits.time_s + 2)
                stopped = None
            except subprocess.TimeoutExpired:
                stopped = f"stopped after {limits.time_s:g}s"
            finally:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # its group, not only itself
                proc.wait()
        text = output.read_bytes()
        if stopped is None and proc.returncode != 0 and len(text) >= limits.output_kb << 10:
            stopped = f"printed more than {limits.output_kb} KiB"
        return verdict(proc.returncode, text, limits, stopped=stopped)
