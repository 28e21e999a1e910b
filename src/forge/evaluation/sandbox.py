"""Run an answer's Python with a task's tests in a subprocess: CPU, memory and output limits, no network.

The child sets its own rlimits (no `preexec_fn`, which is unsafe in a threaded parent) and installs an audit hook
before the answer's code runs, so sockets, new processes and ctypes are refused for everything the code does.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

_RUNNER = r'''
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


@dataclass(frozen=True)
class SandboxLimits:
    time_s: float = 5.0
    memory_mb: int = 512
    output_kb: int = 256


@dataclass(frozen=True)
class TestRun:
    passed: bool
    detail: str  # the last line the run printed (an assertion or error), or why it was stopped


def run_python_tests(code: str, tests: str, limits: SandboxLimits = SandboxLimits()) -> TestRun:
    """Execute `code` then `tests` in a fresh interpreter; passing means exit status 0 within the limits."""
    with tempfile.TemporaryDirectory(prefix="forge-sandbox-") as tmp:
        folder = Path(tmp)
        (folder / "solution.py").write_text(f"{code}\n\n# --- tests ---\n{tests}\n", encoding="utf-8")
        (folder / "runner.py").write_text(_RUNNER, encoding="utf-8")
        log = folder / "output.txt"
        args = [sys.executable, "-I", "-X", "utf8", str(folder / "runner.py"), str(folder / "solution.py"),
                str(limits.memory_mb * 1024 * 1024), str(math.ceil(limits.time_s)), str(limits.output_kb * 1024)]
        with log.open("wb") as out:
            try:
                proc = subprocess.run(
                    args, cwd=folder, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},  # no proxies, keys or PYTHON* settings
                    timeout=limits.time_s + 2, start_new_session=True,
                )
            except subprocess.TimeoutExpired:
                return TestRun(False, f"stopped after {limits.time_s:g}s")
        lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
        if proc.returncode == 0:
            return TestRun(True, "")
        if log.stat().st_size >= limits.output_kb * 1024:
            return TestRun(False, f"printed more than {limits.output_kb} KiB")
        if proc.returncode < 0:
            return TestRun(False, f"killed by signal {-proc.returncode} (time, memory or output limit)")
        return TestRun(False, lines[-1][:300] if lines else f"exit status {proc.returncode}")
