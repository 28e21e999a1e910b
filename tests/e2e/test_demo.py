"""`forge demo` as a user runs it: a fresh FORGE_HOME, no storage configured, the real console script."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

FORGE = Path(sys.executable).parent / "forge"


def test_the_demo_starts_its_own_storage_imports_traffic_and_reports_computed_figures(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    env["FORGE_HOME"] = str(tmp_path / "home")
    try:
        result = subprocess.run([str(FORGE), "demo"], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        out = result.stdout
        imported, lines_rejected = map(int, re.search(r"Imported (\d+) traces; rejected (\d+) lines", out).groups())
        assert imported + lines_rejected == 400 and lines_rejected > 0
        golden, total = map(int, re.search(r"(\d+) of (\d+)\. A run starts", out).groups())
        assert total == imported and 0 < golden < total
        assert "without a key → 401" in out and "with the demo key → 200" in out
        again = subprocess.run([str(FORGE), "storage", "status"], env=env, capture_output=True, text=True, timeout=60)
        assert "Azurite pid" in again.stdout  # left running for the next command, as the demo says
    finally:
        subprocess.run([str(FORGE), "storage", "stop"], env=env, capture_output=True, timeout=60)


def test_forge_serve_answers_on_127_0_0_1_until_stopped(tmp_path, azurite):
    import httpx

    from forge.api.server import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    env.update(FORGE_HOME=str(tmp_path / "home"), FORGE_STORAGE_CONNECTION=azurite.connection_string)
    port = free_port()
    proc = subprocess.Popen([str(FORGE), "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(200):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.1)
        assert response.status_code == 200 and response.json()["storage"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/forge/jobs").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=20)
