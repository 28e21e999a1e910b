"""Killing `forge worker` while a job trains, then starting it again, finishes the same job: one upload, one run."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from forge.demo import seed
from forge.domain_templates import load_domains
from forge.services.traces import import_jsonl

BIN = Path(sys.executable).parent


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(900)  # a whole training cycle: minutes on a loaded 2-core machine
def test_a_worker_killed_during_training_resumes_the_same_job_to_completion(tmp_path, azurite, storage, tenant):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    env.update(FORGE_HOME=str(home), FORGE_STORAGE_CONNECTION=azurite.connection_string, FORGE_TENANT=tenant)
    traffic = "\n".join(seed.traces(300, seed=3)).encode()
    import_jsonl(storage, io.BytesIO(traffic), tenant=tenant, domain="demo", known_domains=load_domains())
    base = tmp_path / "base"
    subprocess.run([str(BIN / "forge-trainer"), "tiny-model", "--out", str(base)], check=True, capture_output=True)

    worker = subprocess.Popen([str(BIN / "forge"), "worker"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    second = None
    try:
        wait_for(lambda: (home / "worker.json").is_file(), 60, "the worker to start")
        run = subprocess.run(
            [str(BIN / "forge"), "run", "--domain", "demo", "--provider", "local", "--threshold", "10",
             "--base-model", str(base), "--set", "poll_interval_s=1", "--set", "retry_first_s=0.5",
             "--set", "hyperparameters.n_epochs=40", "--set", "hyperparameters.learning_rate=0.01"],
            env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        job_id = re.search(r"job (\S+) started", run.stdout).group(1)
        run_dir = home / "runs" / job_id
        wait_for(lambda: storage.jobs.get(tenant, job_id).status.value == "TRAINING" and (run_dir / "run.json").is_file(),
                 300, "the job to reach TRAINING")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)

        second = subprocess.Popen([str(BIN / "forge"), "worker"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        job = wait_for(lambda: (j := storage.jobs.get(tenant, job_id)).status.finished and j, 600, "the job to end")
        assert job.status.value == "COMPLETED", job.error
        assert json.loads((run_dir / "run.json").read_text())["launches"] == 1  # one training run, never restarted
        events = storage.events.list(job_id, limit=1000).items
        assert [e.type for e in events].count("upload") == 1
        assert [e.type for e in events].count("train") == 1
        steps = [e.data["step"] for e in events if e.type == "training.metrics"]
        assert steps == sorted(set(steps))  # the loss curve was copied once, in order
    finally:
        for proc in (worker, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
