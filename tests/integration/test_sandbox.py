"""The bubblewrap jail, for real: each attack a model's answer could make has no effect outside the run, and a
correct answer still passes. Every attack goes through `_posixsubprocess.fork_exec` as well, which no audit hook
sees. These need bubblewrap (`make setup` installs it) and are never skipped: without it they fail, loudly."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from forge.evaluation.jail import BubblewrapRunner
from forge.evaluation.sandbox import SandboxLimits, SandboxUnavailable, run_python_tests

REPO = Path(__file__).resolve().parents[2]
LIMITS = SandboxLimits(time_s=3)
STOPPED_S = 10  # a run a limit stopped is back well within this (a loose bound: a loaded CI machine is slow)

# Starts `argv` without subprocess, os.system or os.fork, none of which an audit hook lets through unseen.
FORK_EXEC = '''
import _posixsubprocess, os, sys
def fork_exec(argv):
    err_r, err_w = os.pipe()
    try:  # subprocess.Popen's own call (Python 3.11-3.13), minus its audit event
        return _posixsubprocess.fork_exec([a.encode() for a in argv], [argv[0].encode()], True, (), None, None,
                                          -1, -1, -1, -1, -1, -1, err_r, err_w, False, False, -1, None, None, -1,
                                          -1, None, False)
    except Exception as exc:
        print("fork_exec:", exc)
'''


@pytest.fixture
def runner() -> BubblewrapRunner:
    return BubblewrapRunner()


def jailed(runner, code: str, limits: SandboxLimits = LIMITS):
    return runner.run(FORK_EXEC + code, limits)


def host_processes_with(token: bytes) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if token in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            pass
    return found


def test_the_fork_exec_attack_really_starts_processes_here(tmp_path):
    """Outside any sandbox (in this test process) the helper works, so a jailed run it fails in proves the jail."""
    marker = tmp_path / "started"
    namespace: dict = {}
    exec(FORK_EXEC, namespace)
    pid = namespace["fork_exec"]([sys.executable, "-c", f"open({str(marker)!r}, 'w')"])
    assert isinstance(pid, int)
    os.waitpid(pid, 0)
    assert marker.exists()


def test_a_correct_answer_passes_and_a_wrong_one_fails(runner):
    assert run_python_tests("def add(a, b):\n    return a + b", "assert add(2, 3) == 5", runner=runner).passed
    wrong = run_python_tests("def add(a, b):\n    return a - b", "assert add(2, 3) == 5, 'add is wrong'", runner=runner)
    assert not wrong.passed and wrong.detail == "AssertionError: add is wrong"


def test_the_standard_library_works_in_the_jail(runner):
    code = ("import json, re, math, decimal, collections, itertools, tempfile, sqlite3, hashlib\n"
            "with tempfile.TemporaryDirectory() as d:\n    open(d + '/f', 'w').write('scratch')\n"
            "assert sqlite3.connect(':memory:').execute('select 1').fetchone() == (1,)")
    run = runner.run(code, LIMITS)
    assert run.passed, run.output


def test_a_shell_started_through_fork_exec_or_os_system_changes_nothing_outside(runner, tmp_path):
    marker = tmp_path / "shell-was-here"
    run = jailed(runner, f'''
import time
fork_exec(["/bin/sh", "-c", "echo pwned > {marker}"])
fork_exec([sys.executable, "-c", "open({str(marker)!r}, 'w').write('pwned')"])
try:
    os.system("echo pwned > {marker}")
except Exception as exc:
    print("os.system:", exc)
time.sleep(1)
''')
    time.sleep(0.5)
    assert not marker.exists(), run.output


def test_writes_outside_the_jail_land_nowhere(runner, tmp_path):
    secret_file = tmp_path / "escaped.txt"
    in_repo = REPO / f"forge-sandbox-escape-{uuid.uuid4().hex}.txt"
    try:
        run = jailed(runner, f'''
import time
for target in ({str(secret_file)!r}, {str(in_repo)!r}):
    try:
        open(target, "w").write("escaped")
    except OSError as exc:
        print("write:", exc)
    fork_exec([sys.executable, "-c", f"open({{target!r}}, 'w').write('escaped')"])
time.sleep(1)
''')
        time.sleep(0.5)
        assert not secret_file.exists() and not in_repo.exists(), run.output
    finally:
        in_repo.unlink(missing_ok=True)


def test_the_code_reaches_no_listener_on_loopback(runner):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        run = jailed(runner, f'''
import socket, time
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=1).sendall(b"leak")
except OSError as exc:
    print("connect:", exc)
fork_exec([sys.executable, "-c", "import socket; socket.create_connection(('127.0.0.1', {port}), timeout=1)"])
time.sleep(1)
''')
        readable, _, _ = select.select([listener], [], [], 0.5)
        assert not readable, f"the listener saw a connection; the run printed: {run.output}"


def test_no_other_processes_environment_can_be_read(runner, monkeypatch):
    secret = f"canary-{uuid.uuid4().hex}"
    # /proc/<pid>/environ shows the environment a process started with: a process started with the secret is
    # what a worker holding keys looks like (putenv in this process would not show there).
    monkeypatch.setenv("SANDBOX_CANARY", secret)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], env={**os.environ})
    try:
        run = jailed(runner, '''
import glob
found = set()
for path in glob.glob("/proc/*/environ"):
    try:
        found.update(v for v in open(path, "rb").read().decode(errors="replace").split("\\0") if "CANARY" in v)
    except OSError as exc:
        print("environ:", exc)
raise SystemExit(f"found {sorted(found)}")
''')
    finally:
        holder.kill()
        holder.wait()
    assert secret not in run.output and secret not in run.detail


def test_no_process_outlives_the_run(runner, tmp_path):
    token = f"outlive-{uuid.uuid4().hex}"
    marker = tmp_path / "still-running"
    later = f"import time; time.sleep(1.5); open({str(marker)!r}, 'w').write('alive')  # {token}"
    run = jailed(runner, f'''
fork_exec([sys.executable, "-c", {later!r}])
if os.fork() == 0:
    os.execv(sys.executable, [sys.executable, "-c", {later!r}])
''')
    assert host_processes_with(token.encode()) == [], run.output
    time.sleep(2)
    assert not marker.exists()


def test_killing_its_parent_or_every_process_leaves_the_caller_alive(runner):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        # Only where the jail is a PID namespace of its own: were it not, kill -1 would take this machine with it.
        run = jailed(runner, '''
import signal
if len([p for p in os.listdir("/proc") if p.isdigit()]) > 10:
    raise SystemExit("NOT IN A PID NAMESPACE: refusing to kill -1")
for target in (os.getppid(), -1):
    try:
        os.kill(target, signal.SIGKILL)
    except OSError as exc:
        print("kill:", target, exc)
''')
        assert "NOT IN A PID NAMESPACE" not in run.output
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_a_fork_bomb_is_contained_and_stopped_within_the_limit(runner):
    limits = SandboxLimits(time_s=2, memory_mb=509)  # 509 MiB marks this run's processes on the host
    started = time.monotonic()
    run = jailed(runner, '''
while True:
    try:
        os.fork()
    except OSError:
        pass
''', limits)
    assert not run.passed and time.monotonic() - started < limits.time_s + STOPPED_S, run.detail
    assert host_processes_with(str(509 << 20).encode()) == []


def test_the_process_limit_stops_forking(runner):
    run = jailed(runner, '''
import time
children = 0
while children < 200:
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(10)
        os._exit(0)
    children += 1
assert children < 20, children
''')
    assert run.passed, run.output


def test_a_memory_bomb_fails_cleanly(runner):
    run = jailed(runner, "hoard = []\nwhile True:\n    hoard.append(bytearray(64 << 20))")
    assert not run.passed and ("MemoryError" in run.detail or "killed" in run.detail), run.detail


def test_endless_output_is_cut_at_the_cap(runner):
    started = time.monotonic()
    run = jailed(runner, 'fork_exec([sys.executable, "-c", "while True: print(\'y\' * 1000)"])\n'
                         'while True:\n    print("x" * 1000)')
    assert not run.passed and run.detail == f"printed more than {LIMITS.output_kb} KiB"
    assert len(run.output.encode()) <= LIMITS.output_kb << 10
    assert time.monotonic() - started < STOPPED_S


def test_the_scratch_space_is_capped(runner):
    run = jailed(runner, '''
written = 0
try:
    for i in range(1000):
        with open(f"/tmp/fill-{i}", "wb") as f:
            f.write(b"x" * (200 << 10))
        written += 200 << 10
except OSError as exc:
    print("full:", exc)
assert written <= 16 << 20, written
''')
    assert run.passed, run.output


def test_an_endless_loop_is_stopped_at_the_time_limit(runner):
    started = time.monotonic()
    run = runner.run("while True:\n    pass", SandboxLimits(time_s=1))
    assert not run.passed and time.monotonic() - started < 1 + STOPPED_S, run.detail


def test_a_missing_bubblewrap_is_refused_with_the_command_that_installs_it(tmp_path):
    runner = BubblewrapRunner(bwrap=str(tmp_path / "no-such-bwrap"))
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        runner.check()
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        runner.run("print('never runs')", LIMITS)


def test_a_bubblewrap_that_cannot_make_namespaces_is_refused_not_bypassed(tmp_path):
    marker = tmp_path / "ran-anyway"
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(SandboxUnavailable, match="No permissions to creating new namespace"):
        BubblewrapRunner(bwrap=str(fake)).run(f"open({str(marker)!r}, 'w')", LIMITS)
    assert not marker.exists()
