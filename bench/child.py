"""Run one benchmark arm in a child process: its stdout's last line is JSON, its peak RSS is its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_child(argv: list[str], env: dict[str, str] | None = None) -> dict:
    """`python argv…` → the JSON its last stdout line holds, plus `peak_mib` (the child's max RSS) and `cpu_s`
    (its user + system CPU time: a fair clock for one-core runs on a machine others share)."""
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{' '.join(argv)} failed")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_mib"] = usage.ru_maxrss / 1024
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    return result
