"""`forge demo` as a user runs it: a fresh FORGE_HOME, no storage configured, the real console scripts."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

FORGE = Path(sys.executable).parent / "forge"


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    return {**env, "FORGE_HOME": str(home), **extra}


@pytest.mark.timeout(900)  # a whole training cycle: minutes on a loaded 2-core machine
def test_the_demo_distils_a_tiny_student_that_beats_its_base_is_promoted_and_answers_through_the_router(tmp_path):
    env = clean_env(tmp_path / "home")
    try:
        result = subprocess.run([str(FORGE), "demo"], env=env, capture_output=True, text=True, timeout=900)
        out = result.stdout
        assert result.returncode == 0, out + result.stderr
        imported, rejected = map(int, re.search(r"→ (\d+) traces imported, (\d+) lines rejected", out).groups())
        assert imported + rejected == 400 and rejected > 0
        kept, read = map(int, re.search(r"kept (\d+) of the (\d+) traces read", out).groups())
        assert 10 <= kept < read == imported
        assert re.search(r"would bill [\d,]+ tokens over \d+ epochs", out)
        losses = [float(x) for x in re.findall(r"\d+: (\d+\.\d+)", out.split("Loss by step:")[1].split("\n")[0])]
        assert losses[-1] < losses[0] / 2
        student, base = map(float, re.search(r"student ([\d.]+) vs base model ([\d.]+)", out).groups())
        assert student >= 50 > base
        assert "decision pass" in out and "8. Promotion: production" in out
        answer = out.split("9. The router")[1]
        assert "def reverse(x)" in answer and "[::-1]" in answer
        # The student was loaded into the embedded llama.cpp LoRA server when promoted, and answered from it.
        assert "LoRA server: llama.cpp, embedded" in out
        promoted = re.search(r"8\. Promotion: production — (\S+) now serves forge:demo \(adapter (\S+) loaded on the "
                             r"llama\.cpp LoRA server\)", out)
        assert promoted, out
        version, adapter = promoted.groups()
        assert f"answered by {version} on llama.cpp (as adapter {adapter})" in out
        # Its GGUF export loads in llama.cpp and answers the router's question as the student did.
        exported = forge(env, "export", version, "--format", "gguf", "--tenant", "demo",
                         "--out", str(tmp_path / "gguf"))
        assert "vLLM: vllm serve" in exported and "--lora-modules" in exported
        merged = next(p for p in (tmp_path / "gguf").glob("*-f16.gguf") if "-adapter-" not in p.name)
        assert "def reverse(x)" in gguf_answer(merged, out)
        # Rollback routes back to the teacher, then unloads the adapter once the drain is over.
        rolled = forge({**env, "FORGE_LORA_DRAIN_S": "1"}, "models", "rollback", "--domain", "demo", "--tenant", "demo")
        assert "the teacher in production" in rolled
        assert f"{version}'s adapter unloads from the llama.cpp LoRA server after a 1 s drain" in rolled
        assert adapter not in forge(env, "lora", "status")
        status = subprocess.run([str(FORGE), "status", "--tenant", "demo"], env=env, capture_output=True, text=True,
                                timeout=120)
        assert re.search(r"demo\s+traces\s+\d+\s+golden\s+\d+\s+serving \S+", status.stdout)
        listed = subprocess.run([str(FORGE), "jobs", "list", "--tenant", "demo"], env=env, capture_output=True,
                                text=True, timeout=120).stdout
        job_id = listed.split()[0]
        shown = subprocess.run([str(FORGE), "jobs", "show", job_id, "--tenant", "demo"], env=env, capture_output=True,
                               text=True, timeout=120).stdout
        assert '"status": "COMPLETED"' in shown and '"settings"' in shown
        # The public view of a finished local job names no path on this machine (run folders, adapters, the base).
        assert str(tmp_path) not in shown and '"prepared"' not in shown and '"eventCursor"' not in shown
    finally:
        subprocess.run([str(FORGE), "lora", "stop"], env=env, capture_output=True, timeout=60)
        subprocess.run([str(FORGE), "storage", "stop"], env=env, capture_output=True, timeout=60)


def forge(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(FORGE), *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def gguf_answer(model: Path, demo_output: str) -> str:
    """llama.cpp (llama-cpp-python) itself, greedy, asked what the demo asked the router."""
    from llama_cpp import Llama

    from forge.cli.demo import ROUTER_PROMPT
    from forge.demo import seed

    assert ROUTER_PROMPT in demo_output
    llm = Llama(model_path=str(model), n_ctx=512, n_threads=1, verbose=False)
    try:
        reply = llm.create_chat_completion(messages=[{"role": "system", "content": seed.SYSTEM},
                                                     {"role": "user", "content": ROUTER_PROMPT}],
                                           temperature=0.0, max_tokens=80)
    finally:
        llm.close()
    return reply["choices"][0]["message"]["content"]


def test_forge_serve_answers_on_127_0_0_1_until_stopped(tmp_path, azurite):
    import httpx

    from forge.api.server import free_port

    env = clean_env(tmp_path / "home", FORGE_STORAGE_CONNECTION=azurite.connection_string)
    port = free_port()
    proc = subprocess.Popen([str(FORGE), "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(300):
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
