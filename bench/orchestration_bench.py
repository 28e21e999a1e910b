"""The pipeline's own cost: orchestration dispatch, and a real run's time outside training and evaluation.

1. Dispatch: 100 no-op orchestrations (one activity each) on durabletask's in-memory backend, started together;
   latency from schedule to completion, against the peer — the same activity called directly — in the same run.
2. Overhead: one real `distill` run (Azurite, real stages, local provider, a tiny model trained briefly);
   wall time minus the TRAINING and EVALUATING stages, from the job's own stage stamps.

    .venv/bin/python bench/orchestration_bench.py [--orchestrations 100]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def noop(payload: dict[str, Any]) -> dict[str, Any]:
    return {"echo": payload["job_id"]}


def dispatch(n: int) -> None:
    from durabletask import client as dt_client
    from durabletask import worker as dt_worker
    from durabletask.testing import InMemoryOrchestrationBackend

    from forge.workflow.local import free_port, sdk_logger

    def ping(ctx: Any, payload: dict[str, Any]) -> Any:
        return (yield ctx.call_activity("noop", input=payload))

    def noop_activity(ctx: Any, payload: dict[str, Any]) -> dict[str, Any]:
        return noop(payload)

    noop_activity.__name__ = "noop"
    port = free_port()
    backend = InMemoryOrchestrationBackend(port=port)
    backend.start()
    worker = dt_worker.TaskHubGrpcWorker(host_address=f"localhost:{port}", logger=sdk_logger())
    worker.add_orchestrator(ping)
    worker.add_activity(noop_activity)
    worker.start()
    client = dt_client.TaskHubGrpcClient(host_address=f"localhost:{port}", logger=sdk_logger())
    try:
        client.wait_for_orchestration_completion(client.schedule_new_orchestration(ping, input={"job_id": "warm"}),
                                                 timeout=60)
        began = time.perf_counter()
        starts = {}
        for i in range(n):
            starts[client.schedule_new_orchestration(ping, input={"job_id": str(i)})] = time.perf_counter()
        latencies = []
        for instance, started in starts.items():
            state = client.wait_for_orchestration_completion(instance, timeout=120)
            assert state.runtime_status.name == "COMPLETED", state
            latencies.append(_completed_at(state) - started)
        total = time.perf_counter() - began
    finally:
        worker.stop()
        client.close()
        backend.stop()
    direct = time.perf_counter()
    for i in range(n):
        noop({"job_id": str(i)})
    direct = time.perf_counter() - direct
    latencies.sort()
    p50, p95 = statistics.median(latencies), latencies[int(0.95 * (len(latencies) - 1))]
    print(f"dispatch: {n} no-op orchestrations in {total:.2f} s ({n / total:.0f}/s); schedule→complete p50 "
          f"{p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms | peer (direct call): {direct / n * 1e6:.1f} µs each | "
          f"durable/direct per item: {total / max(direct, 1e-9):.0f}x")


def _completed_at(state: Any) -> float:
    # The backend stamps completion in wall time; convert it to this process's perf_counter scale.
    lag = time.time() - state.last_updated_at.timestamp()
    return time.perf_counter() - lag


def overhead() -> None:
    from forge.bootstrap import bootstrap
    from forge.config import load_settings
    from forge.demo import seed
    from forge.domain.job_settings import JobSettings
    from forge.services import runs
    from forge.services.traces import import_jsonl
    from forge.storage.azurite import find_node_modules, start, stop_pid
    from forge.workflow.worker import engine_for

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        azurite = start(find_node_modules(), data_dir=None, log_path=home / "azurite.log", detach=False)
        try:
            forge = bootstrap(load_settings(home=home, storage_connection=azurite.connection_string))
            import_jsonl(forge.storage, io.BytesIO("\n".join(seed.traces(300, seed=5)).encode()), tenant="bench",
                         domain="demo", known_domains=forge.domains)
            base = home / "base"
            subprocess.run([str(Path(sys.executable).parent / "forge-trainer"), "tiny-model", "--out", str(base)],
                           check=True, capture_output=True)
            with engine_for(forge) as engine:
                began = time.perf_counter()
                job, _ = runs.run_sync(runs.trigger(
                    forge, engine, tenant="bench", domain="demo", provider="local", by_operator=True,
                    settings=JobSettings(trigger_threshold=10, base_model=str(base), poll_interval_s=1,
                                         hyperparameters={"n_epochs": 5})))
                while not (job := forge.storage.jobs.get("bench", job.job_id)).status.finished:
                    time.sleep(0.2)
                wall = time.perf_counter() - began
        finally:
            stop_pid(azurite.pid)
    stamps = job.stage_times
    training = (stamps["EVALUATING"] - stamps["TRAINING"]).total_seconds()
    evaluation = (stamps.get("PROMOTING", stamps[job.status.value]) - stamps["EVALUATING"]).total_seconds()
    own = wall - training - evaluation
    print(f"overhead: one real run {job.status.value} in {wall:.1f} s = training {training:.1f} s + evaluation "
          f"{evaluation:.1f} s + the pipeline's own {own:.1f} s ({own / wall:.0%} of the run; gather, curation, "
          "upload, promotion, notification, dispatch and the 1 s poll interval)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orchestrations", type=int, default=100)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    dispatch(args.orchestrations)
    overhead()


if __name__ == "__main__":
    main()
