"""`forge serve` and `forge worker`, as real processes, listen on loopback only and keep worker.json to their owner.

The engine's gRPC port has no authentication (whoever reaches it can start, signal and read runs), so it must not
be reachable from the network, and the file naming it must not be readable by other local users.
"""

import ipaddress
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from forge.api.server import free_port

BIN = Path(sys.executable).parent


def listening(pid: int) -> set[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]]:
    """The TCP addresses `pid` listens on, from /proc (its socket inodes, matched in its network namespace's tables)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed while we looked
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    found = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.add(_address(fields[1]))
    return found


def listening_on(pid: int, ports: set[int]):
    """Everything `pid` listens on, once it listens on all of `ports`."""
    sockets = listening(pid)
    return sockets if ports <= {port for _, port in sockets} else None


def _address(field: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    host, port = field.split(":")
    raw = bytes.fromhex(host)
    # The kernel prints each 32-bit word of the address in host byte order.
    words = [raw[i:i + 4] for i in range(0, len(raw), 4)]
    raw = b"".join(w[::-1] for w in words) if sys.byteorder == "little" else raw
    return ipaddress.ip_address(raw), int(port, 16)


def loopback(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)  # gRPC binds 127.0.0.1 as ::ffff:127.0.0.1 on a dual-stack socket
    return (mapped or ip).is_loopback


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the process exited ({proc.returncode}) before {what}")
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(300)
def test_serve_and_worker_listen_on_loopback_only_and_keep_worker_json_owner_only(tmp_path, azurite):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    env.update(FORGE_STORAGE_CONNECTION=azurite.connection_string)
    http_port = free_port()
    procs = {
        # No worker in its home, so `forge serve` starts an engine of its own beside the HTTP server.
        "serve": subprocess.Popen([str(BIN / "forge"), "serve", "--port", str(http_port)],
                                  env={**env, "FORGE_HOME": str(tmp_path / "serve")},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        "worker": subprocess.Popen([str(BIN / "forge"), "worker"], env={**env, "FORGE_HOME": str(tmp_path / "worker")},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    }
    try:
        for name, proc in procs.items():
            state = tmp_path / name / "worker.json"
            wait_for(state.is_file, 120, f"{name} to write worker.json", proc)
            engine_port = int(json.loads(state.read_text())["address"].rpartition(":")[2])
            ports = {engine_port, http_port} if name == "serve" else {engine_port}
            sockets = wait_for(lambda: listening_on(proc.pid, ports), 120, f"{name} to listen", proc)
            assert all(loopback(ip) for ip, _ in sockets), f"{name} listens beyond loopback: {sorted(map(str, sockets))}"
            assert stat.S_IMODE(state.stat().st_mode) == 0o600
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
