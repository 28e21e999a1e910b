"""Run an answer's Python with a task's tests where it can harm nothing: one `CodeRunner` protocol, two adapters.

Model-written code is untrusted. `BubblewrapRunner` (evaluation/jail.py) runs it in a namespace jail on this
machine; `ContainerAppsSessionsRunner` (evaluation/sessions.py) in an Azure Container Apps dynamic session. A
runner that cannot isolate the code raises `SandboxUnavailable`; nothing falls back to running it bare, except
the operator's explicit opt-in (`FORGE_SANDBOX_UNJAILED`, evaluation/unjailed.py) on a single-tenant laptop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from forge.domain.errors import ConfigError

# Runs inside the jail or session before the answer's code: the limits the kernel enforces on its process tree.
# `user` (non-zero when root started the jail) is a uid of this run's own: RLIMIT_NPROC does not bind root, and
# counts per user. The hard CPU limit is a second past the soft one: SIGXCPU first, SIGKILL after.
LIMITS_SCRIPT = r'''
import os, resource, sys
with open(sys.argv[1], encoding="utf-8") as f:
    source = f.read()
memory, cpu, output, processes, user = (int(x) for x in sys.argv[2:7])
if user:
    os.setgroups([])
    os.setresgid(user, user, user)
    os.setresuid(user, user, user)
for limit, soft, hard in ((resource.RLIMIT_AS, memory, memory), (resource.RLIMIT_CPU, cpu, cpu + 1),
                          (resource.RLIMIT_FSIZE, output, output), (resource.RLIMIT_CORE, 0, 0),
                          (resource.RLIMIT_NPROC, processes, processes)):
    resource.setrlimit(limit, (soft, hard))
exec(compile(source, "solution.py", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
'''


class SandboxUnavailable(ConfigError):
    """Code cannot be run in isolation here; the message names the fix. Never a verdict on the answer."""

    title = "Code sandbox unavailable"


@dataclass(frozen=True)
class SandboxLimits:
    time_s: float = 5.0  # wall clock for the whole run; CPU seconds per process are capped at the same
    memory_mb: int = 512  # address space per process
    output_kb: int = 256  # stdout and stderr together; also the largest file it may write
    processes: int = 16  # processes and threads in the run (a fork bomb stops here)
    scratch_mb: int = 16  # the private /tmp


@dataclass(frozen=True)
class TestRun:
    passed: bool
    detail: str  # the last line the run printed (an assertion or error), or why it was stopped
    output: str = ""  # what it printed, at most `output_kb`


class CodeRunner(Protocol):
    """Runs untrusted Python in isolation; passing means exit status 0 within the limits."""

    def check(self) -> None:
        """Raise SandboxUnavailable (naming the fix) when no code can be run safely now."""

    def run(self, source: str, limits: SandboxLimits) -> TestRun:
        """Run one Python file; raises SandboxUnavailable, never runs it unisolated."""


def solution_source(code: str, tests: str) -> str:
    """The file a run executes: the answer's code, then the task's tests."""
    return f"{code}\n\n# --- tests ---\n{tests}\n"


def run_python_tests(code: str, tests: str, limits: SandboxLimits = SandboxLimits(), *,
                     runner: CodeRunner | None = None) -> TestRun:
    """Execute `code` then `tests` with `runner` (default: the bubblewrap jail on this machine)."""
    if runner is None:
        from forge.evaluation.jail import BubblewrapRunner  # the jail imports this module's types

        runner = BubblewrapRunner()
    return runner.run(solution_source(code, tests), limits)


def limit_args(limits: SandboxLimits, user: int = 0) -> list[str]:
    """LIMITS_SCRIPT's arguments after the file: memory, CPU seconds, file size, processes, the uid to become."""
    cpu = max(1, math.ceil(limits.time_s))
    return [str(limits.memory_mb << 20), str(cpu), str(limits.output_kb << 10), str(limits.processes), str(user)]


def verdict(returncode: int, output: bytes, limits: SandboxLimits, *, stopped: str | None = None) -> TestRun:
    """A finished run's TestRun: `stopped` says why it was cut short (a limit), else its exit status decides."""
    text = output[: limits.output_kb * 1024].decode("utf-8", errors="replace")
    if stopped:
        return TestRun(False, stopped, text)
    if returncode == 0:
        return TestRun(True, "", text)
    if returncode < 0 or returncode > 128:  # a signal: directly, or as the jail's init reports it (128 + n)
        signal = -returncode if returncode < 0 else returncode - 128
        return TestRun(False, f"killed by signal {signal} (time, memory or output limit)", text)
    lines = [line for line in text.splitlines() if line.strip()]
    return TestRun(False, lines[-1][:300] if lines else f"exit status {returncode}", text)
