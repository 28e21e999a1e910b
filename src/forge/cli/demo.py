"""`forge demo`: one real distillation cycle on the embedded default — a tiny model, the local provider, Azurite.

Every figure it prints is computed in the run: nothing is canned.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from forge.cli.common import forge, out
from forge.cli.run import follow
from forge.demo import seed
from forge.domain.errors import ForgeError
from forge.domain.job_settings import JobSettings
from forge.domain.models import DistillationJob, ModelVersion
from forge.providers.clients import lora_server_note
from forge.services import domains, runs
from forge.services import traces as trace_service
from forge.services.estimates import estimate_dataset
from forge.services.evaluation import Limits, evaluate_model
from forge.workflow.worker import engine_for

TENANT = "demo"
DOMAIN = "demo"
THRESHOLD = 50  # the demo's traffic is 400 traces; production keeps FORGE_TRIGGER_THRESHOLD (500 by default)
# Enough steps for a ~200K-parameter model to learn the task on a CPU in about a minute (see docs/training.md). With
# the SentencePiece tokenizer llama.cpp's converter takes, 60 epochs named `reverse` `shout` (it keys on the wording);
# 100 copy the name (docs/decisions.md, issue 17).
HYPERPARAMETERS = {"n_epochs": 100, "learning_rate": 0.01, "lora_r": 32, "lora_alpha": 32, "max_seq_length": 128,
                   "batch_size": 2, "threads": 1}  # one thread: tiny matrices, and two would contend on 2 cores
ROUTER_PROMPT = "Implement the Python function `reverse`; it returns a string reversed."


def demo(
    base_model: Optional[Path] = typer.Option(None, help="A local Hugging Face model folder (default: build a tiny one)."),
    count: int = typer.Option(400, min=100, help="Lines of teacher traffic to seed."),
) -> None:
    """Seed teacher traffic, distil it into a student, evaluate it, promote it, and ask the router."""
    f = forge()
    started = time.monotonic()
    where = f"Azurite (pid {f.azurite.pid}, data in {f.settings.home / 'azurite'})" if f.azurite else "your storage account"
    out.print(f"Storage: {where}", markup=False)
    out.print(lora_server_note(f.settings, f.lora_server()), markup=False)
    home = f.settings.home / "demo"

    path = seed.write(home / "traces.jsonl", count=count)
    rejects: list[trace_service.Reject] = []
    with open(path, "rb") as stream:
        summary = trace_service.import_jsonl(f.storage, stream, tenant=TENANT, domain=DOMAIN, on_reject=rejects.append,
                                             known_domains=domains.known(f, TENANT, DOMAIN))
    out.print(f"1. Teacher traffic: {count} lines for the '{DOMAIN}' domain (forge.demo.seed) → {summary.imported} "
              f"traces imported, {summary.rejected_total} lines rejected "
              f"({_counts(summary.rejected)}; e.g. line {rejects[0].line}: {rejects[0].detail})." if rejects else
              f"1. Teacher traffic: {count} lines imported.", markup=False)

    base = base_model or _tiny_model(home / "base", path)
    out.print(f"2. Student base model: {base}", markup=False)

    out.print(f"3. Distillation run (provider local; this run's trigger threshold is {THRESHOLD} new golden traces):")
    with engine_for(f) as engine:
        settings = JobSettings(trigger_threshold=THRESHOLD, base_model=str(base), hyperparameters=HYPERPARAMETERS,
                               poll_interval_s=2, max_training_s=1800, retry_first_s=1)
        job, _ = runs.run_sync(runs.trigger(f, engine, tenant=TENANT, domain=DOMAIN, provider="local",
                                            settings=settings, by_operator=True))
        job = follow(f, job, quiet=True)
    _report(f, job, base)
    out.print(f"Done in {time.monotonic() - started:.0f} s.", markup=False)
    if f.azurite:
        out.print("Azurite keeps running for the next command; `forge storage stop` stops it.")
    if f.lora_server() is not None and f.lora_server().kind == "llama.cpp":
        out.print("The embedded LoRA server keeps running for the router; `forge lora stop` stops it.")
    if job.status.value != "COMPLETED":
        raise typer.Exit(1)


def _tiny_model(folder: Path, corpus: Path) -> Path:
    """A random tiny Llama and a tokenizer trained on the traffic, built by forge-trainer (no download)."""
    if (folder / "config.json").is_file():
        return folder
    trainer = shutil.which("forge-trainer", path=str(Path(sys.executable).parent)) or shutil.which("forge-trainer")
    if trainer is None:
        raise ForgeError("forge-trainer is not installed; run `make setup`.")
    # SentencePiece: the tokenizer llama.cpp's GGUF converter takes, so the embedded LoRA server can serve it.
    subprocess.run([trainer, "tiny-model", "--out", str(folder), "--corpus", str(corpus), "--tokenizer",
                    "sentencepiece"], check=True, capture_output=True)
    return folder


def _report(f, job: DistillationJob, base: Path) -> None:
    if job.dataset_id:
        dataset = f.storage.datasets.get(job.tenant, job.dataset_id)
        out.print(f"4. Curation: kept {dataset.counts.get('kept', 0)} of the {dataset.counts.get('read', 0)} traces read "
                  f"→ {dataset.counts.get('train', 0)} train / {dataset.counts.get('valid', 0)} valid; dropped "
                  f"{_counts(dataset.dropped)}.", markup=False)
        estimate = estimate_dataset(f, job.tenant, job.dataset_id, model=f.settings.student_base_model)
        out.print(f"5. Hosted fine-tuning of {estimate.model} would bill {estimate.billed_tokens:,} tokens over "
                  f"{estimate.epochs} epochs: {_money(estimate)}.", markup=False)
    losses = [e.data for e in f.storage.events.list(job.job_id, limit=1000).items if e.type == "training.metrics"]
    if losses:
        picks = losses[:: max(1, len(losses) // 8)] + ([losses[-1]] if len(losses) % 8 else [])
        curve = ", ".join(f"{p['step']}: {p['loss']:.2f}" for p in picks if "loss" in p)
        valid = [p["valid_loss"] for p in losses if p.get("valid_loss") is not None]
        out.print(f"6. Loss by step: {curve}" + (f"; validation loss {valid[0]:.2f} → {valid[-1]:.2f}" if valid
                                                    else ""), markup=False)
    metrics = job.eval_metrics.get("metrics") or {}
    if metrics:
        limits = Limits(max_examples=0, judge=False)
        stand_in = ModelVersion(version_id="base", tenant=job.tenant, domain=job.domain, base_model=str(base))
        base_score = evaluate_model(f, tenant=job.tenant, domain=job.domain, model=stand_in, limits=limits).result
        base_value = base_score.metrics.score if base_score.metrics else 0.0
        out.print(f"7. Evaluation on the {metrics.get('benchmark_tasks', 0)}-task benchmark (code run against tests): "
                  f"student {metrics.get('score', 0):.1f} vs base model {base_value:.1f}; decision "
                  f"{job.eval_metrics.get('decision')}:", markup=False)
        for reason in job.eval_metrics.get("reasons", []):
            out.print(f"   - {reason}", markup=False)
    promotion = job.promotion or {}
    out.print(f"8. Promotion: {promotion.get('outcome', 'none')}"
              + (f" — {promotion.get('model_version_id')} now serves forge:{job.domain}" if promotion.get("outcome")
                 in ("production", "canary") else "") + _loaded_on(f, promotion.get("model_version_id")),
              markup=False)
    if promotion.get("outcome") in ("production", "canary"):
        _ask_router(f, job)


def _ask_router(f, job: DistillationJob) -> None:
    from openai import OpenAI

    from forge.api.app import create_app
    from forge.api.server import serving

    key, record = f.storage.keys.create(job.tenant, "forge demo")
    try:
        with serving(create_app(f)) as url:
            client = OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=120)
            raw = client.chat.completions.with_raw_response.create(
                model=f"forge:{job.domain}", messages=[{"role": "system", "content": seed.SYSTEM},
                                                       {"role": "user", "content": ROUTER_PROMPT}], max_tokens=80)
            reply = raw.parse()
        served_by = raw.headers.get("x-forge-served-by") or "the router's own process"
        out.print(f"9. The router ({url}/v1, official openai SDK) asked '{ROUTER_PROMPT}' → answered by "
                  f"{raw.headers.get('x-forge-model')} on {served_by} (as adapter {reply.model}):", markup=False)
        out.print("   " + (reply.choices[0].message.content or "").replace("\n", "\n   "), markup=False)
    finally:
        f.storage.keys.revoke(job.tenant, record.key_hash)


def _loaded_on(f, version_id: str | None) -> str:
    """Where the promoted student was loaded: the LoRA server's own list of adapters, asked now."""
    lora = f.lora_server()
    if lora is None or not version_id:
        return ""
    names = [name for name in lora.loaded() if name.endswith(version_id.lower())]
    return f" (adapter {names[0]} loaded on the {lora.kind} LoRA server)" if names else ""


def _counts(counter: dict) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counter.items(), key=lambda kv: -kv[1])) or "none"


def _money(estimate) -> str:
    if estimate.cost is None:
        return "no price for it in the table"
    return f"about {estimate.cost:.2f} {estimate.currency} at the prices of {estimate.prices_as_of}"
