"""`BubblewrapRunner`: untrusted Python in a fresh namespace jail on this machine (the embedded default, Linux workers).

The jail (bubblewrap, Debian package `bubblewrap`) has its own PID, network, IPC, UTS and cgroup namespaces: no
network at all, no other process to see or signal, no host /proc. Its file system is an empty read-only root
holding only the interpreter, its standard library and the system's shared libraries (read-only), a private /proc
and a minimal /dev; the one writable place is a size-capped tmpfs at /tmp that vanishes with the run. The code
runs with no capabilities as a user that owns nothing, under rlimits on CPU, memory, file size and processes, and
a wall clock: when its first process exits or the clock runs out, the PID namespace dies with every process in it.

Started by a user, bubblewrap needs a user namespace, and the code runs as `nobody` in it. Started by root, it
needs none: the code becomes a uid of its own (random, owning no file) before it runs, because the kernel does
not apply RLIMIT_NPROC to root, and a fork bomb would otherwise fill the machine.
"""

from __future__ import annotations

import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from contextlib import suppress

from forge.evaluation.sandbox import LIMITS_SCRIPT, SandboxLimits, SandboxUnavailable, TestRun, limit_args, verdict

INSTALL = ("Install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`, the package `bubblewrap`; "
           "`make setup` does it when run as root)")
NAMESPACES = ("Run as a user, bubblewrap needs user namespaces: allow them (Debian: `sysctl -w "
              "kernel.unprivileged_userns_clone=1`; in a container, a seccomp profile that allows them)")
AZURE = ("In Azure, code runs in a session pool instead: `azd env set FORGE_CODE_SESSIONS true` and provision, "
         "which sets FORGE_SANDBOX_POOL_ENDPOINT")
OPT_IN = ("On a single-tenant laptop without bubblewrap (macOS) an operator may instead set "
          "FORGE_SANDBOX_UNJAILED=true, which runs the code with rlimits only")
NOBODY = "65534"
OWN_UIDS = (1_000_000_000, 2_000_000_000)  # far above any real account: a uid here owns no file and no process
SHM_BYTES = 1 << 20
GRACE_S = 1.0  # starting the jail and the interpreter, on top of the run's time limit
SYSTEM_LIBRARIES = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32")


class BubblewrapRunner:
    """Each run gets a new jail; nothing of one run is visible to the next or to this machine."""

    def __init__(self, bwrap: str = "bwrap") -> None:
        self.bwrap = bwrap
        self.python = os.path.realpath(sys.executable)  # past a venv's symlink: the venv stays outside
        self._checked = False
        self._lock = threading.Lock()

    def check(self) -> None:
        """Start one jail (once per runner) so that a machine that cannot make one fails before any answer runs."""
        with self._lock:
            if self._checked:
                return
            run = self.run("import json, re, math", SandboxLimits(time_s=10))
            if not run.passed:
                raise SandboxUnavailable(f"The code jail started but cannot run Python: {run.detail}. {INSTALL}.")
            self._checked = True

    def run(self, source: str, limits: SandboxLimits) -> TestRun:
        bwrap = shutil.which(self.bwrap)
        if bwrap is None:
            raise SandboxUnavailable(f"Benchmark code cannot be run: bubblewrap ({self.bwrap}) is not installed, "
                                     f"and model-written code never runs outside a jail. {INSTALL}. {AZURE}. "
                                     f"{OPT_IN}.")
        user = secrets.choice(range(*OWN_UIDS)) if os.geteuid() == 0 else 0
        with tempfile.TemporaryFile() as solution:  # no name on disk: bwrap copies it into the jail
            solution.write(source.encode("utf-8"))
            solution.seek(0)
            status_r, status_w = os.pipe()
            try:
                command = [bwrap, *self._jail(limits, solution.fileno(), status_w, root=bool(user)), self.python,
                           "-I", "-S", "-B", "-X", "utf8", "-c", LIMITS_SCRIPT, "/tmp/solution.py",
                           *limit_args(limits, user)]
                try:
                    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, pass_fds=(status_w, solution.fileno()),
                                            start_new_session=True, env={})
                finally:
                    os.close(status_w)
                jail = _Watch(proc, status_r)
                try:
                    output, stopped = jail.collect(limits)
                finally:
                    jail.stop()
            finally:
                os.close(status_r)
        if jail.child_pid() is None:  # bwrap reports the jailed process once the jail exists
            message = output.decode("utf-8", errors="replace").strip()[-500:] or f"exit status {proc.returncode}"
            raise SandboxUnavailable(f"bubblewrap could not make the code jail ({message}). {NAMESPACES}. {OPT_IN}.")
        return verdict(proc.returncode, output, limits, stopped=stopped)

    def _jail(self, limits: SandboxLimits, solution_fd: int, status_fd: int, *, root: bool) -> list[str]:
        if root:  # no user namespace: the code drops to its own uid, with only the capabilities to do that
            args = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                    "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            args = ["--unshare-all", "--unshare-user", "--disable-userns", "--uid", NOBODY, "--gid", NOBODY]
        args += ["--die-with-parent", "--new-session", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin",
                 "--setenv", "LANG", "C.UTF-8", "--json-status-fd", str(status_fd)]
        mounts = _system_libraries() + _interpreter(self.python)
        args += _parents([op[-1] for op in mounts])
        args += [part for op in mounts for part in op]
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(SHM_BYTES), "--tmpfs",
                 "/dev/shm", "--remount-ro", "/dev", "--perms", "1777", "--size", str(limits.scratch_mb << 20),
                 "--tmpfs", "/tmp", "--perms", "0444", "--ro-bind-data", str(solution_fd), "/tmp/solution.py",
                 "--remount-ro", "/", "--chdir", "/tmp"]
        return args


def _system_libraries() -> list[list[str]]:
    """The shared libraries the interpreter and its extension modules load, read-only; merged-/usr links kept."""
    ops: list[list[str]] = []
    for path in SYSTEM_LIBRARIES:
        if os.path.islink(path):
            ops.append(["--symlink", os.readlink(path), path])
        elif os.path.isdir(path):
            ops.append(["--ro-bind", path, path])
    if os.path.isfile("/etc/ld.so.cache"):
        ops.append(["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"])
    return ops


def _interpreter(python: str) -> list[list[str]]:
    """The interpreter, libpython and the standard library, read-only; never site-packages, the venv or the repo."""
    ops = [["--ro-bind", python, python]]
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        lib = os.path.join(sysconfig.get_config_var("LIBDIR") or "", sysconfig.get_config_var("INSTSONAME") or "")
        if os.path.isfile(lib):
            ops.append(["--ro-bind", os.path.realpath(lib), lib])
    base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix,
            "installed_base": sys.base_prefix, "installed_platbase": sys.base_exec_prefix}
    libraries: list[str] = []
    for name in ("stdlib", "platstdlib"):
        path = os.path.realpath(sysconfig.get_path(name, vars=base))
        if os.path.isdir(path) and not any(path == p or path.startswith(p + os.sep) for p in libraries):
            libraries.append(path)
    for path in libraries:
        ops.append(["--ro-bind", path, path])
        for packages in ("site-packages", "dist-packages"):  # installed packages stay out: an empty mount over them
            hidden = os.path.join(path, packages)
            if os.path.isdir(hidden):
                ops += [["--tmpfs", hidden], ["--remount-ro", hidden]]
    return ops


def _parents(paths: list[str]) -> list[str]:
    """Every folder above a mount, created world-readable: bwrap would copy the host's modes (/root is 0700)."""
    seen: dict[str, None] = {}
    for path in paths:
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            seen.setdefault("/" + "/".join(parts[:i]))
    return [arg for folder in seen for arg in ("--perms", "0755", "--dir", folder)]


class _Watch:
    """One jail's bwrap: its output up to the cap, its status reports, and a stop that leaves no process behind."""

    def __init__(self, proc: subprocess.Popen[bytes], status_fd: int) -> None:
        self.proc, self.status_fd, self.status = proc, status_fd, bytearray()

    def collect(self, limits: SandboxLimits) -> tuple[bytes, str | None]:
        """What the run prints until it exits; a reason when a limit stopped it (then `stop` kills it)."""
        assert self.proc.stdout is not None
        cap, out = limits.output_kb << 10, bytearray()
        deadline = time.monotonic() + limits.time_s + GRACE_S
        stdout = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            selector.register(self.status_fd, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return bytes(out), f"stopped after {limits.time_s:g}s"
                for key, _ in selector.select(left):
                    chunk = os.read(key.fd, 65536)
                    if key.fd == self.status_fd:
                        self.status += chunk
                        if not chunk:
                            selector.unregister(key.fd)
                        continue
                    if not chunk:
                        try:
                            self.proc.wait(max(0.1, deadline - time.monotonic()))
                        except subprocess.TimeoutExpired:
                            return bytes(out), f"stopped after {limits.time_s:g}s"
                        return bytes(out), None
                    out += chunk
                    if len(out) > cap:  # endless output: stop it now rather than hold or store it
                        return bytes(out[:cap]), f"printed more than {limits.output_kb} KiB"

    def child_pid(self) -> int | None:
        match = re.search(rb'"child-pid"\s*:\s*(\d+)', bytes(self.status))
        return int(match[1]) if match else None

    def stop(self) -> None:
        """Kill the jail's init: its PID namespace dies with every process in it, and bwrap reaps it and exits."""
        if self.proc.poll() is None:
            self.status += _read_all(self.status_fd)
            child = self.child_pid()
            if child is not None:
                with suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)  # still bwrap's unreaped child: the pid cannot be reused yet
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:  # bwrap itself stuck: its group, and --die-with-parent does the rest
                with suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.status += _read_all(self.status_fd)


def _read_all(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks = []
    with suppress(BlockingIOError):
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    return b"".join(chunks)
