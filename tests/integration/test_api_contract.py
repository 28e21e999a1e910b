"""The published OpenAPI document against the server: schemathesis (`--checks all`) runs every operation the app has
against a live Forge on 127.0.0.1 (the API, the router, the webhooks, a local engine with the real stages), over
objects this test creates first (a trace, a dataset, a job, a model, a domain) so the id-bearing operations are
reached, and fails on any mismatch. The operations are read from the running app, so a route added later is
covered as soon as it exists.

What it takes from the environment: nothing. A fake OpenAI-compatible teacher answers the router; the OpenAI webhook
is signed with the test's secret by tests/contract_hooks.py; the Event Grid webhook gets its key as a header.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from forge.api.app import create_app
from forge.api.limits import FailureLimit
from forge.api.server import serving
from forge.bootstrap import bootstrap
from forge.config import load_settings
from forge.services import datasets
from forge.services import domains
from forge.workflow.activities import build_activities
from forge.workflow.local import EngineClient, LocalEngine, LocalOrchestrations
from tests.factories import chat_line, make_job, make_model_version, make_trace
from tests.fakes.chat_upstream import API_KEY, ChatUpstream

ROOT = Path(__file__).parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
WEBHOOK_SECRET = "whsec_" + "Y29udHJhY3QtdGVzdC1zZWNyZXQtMzItYnl0ZXMhIQ=="
GRID_KEY = "contract-grid-key"
EXAMPLES = 8  # per operation and phase: every documented answer is reached, in about two minutes
# Operations whose input is checked past what JSON Schema can say, so that a schema-valid request may still be a 422
# naming what is wrong; for these alone that answer counts as correct, and every other check still applies to them.
# Files of examples and batches of traces are checked record by record (format, PII, duplicates, too few usable
# ones); benchmark files task by task; a domain's settings across fields (scoring weights that add up to 1, a
# minimum below its maximum, regexes that compile, the name in the body agreeing with the path).
CONTENT_CHECKED = ["POST /api/v1/datasets", "POST /api/v1/traces", "PUT /api/v1/domains/{name}/benchmark",
                   "POST /api/v1/domains", "PUT /api/v1/domains/{name}", "PATCH /api/v1/domains/{name}"]


@pytest.fixture
def live(azurite, storage, tenant, tmp_path):
    """Forge as `forge serve` runs it, with a teacher to route to, webhooks configured, and objects to reach."""
    teacher = ChatUpstream()
    with serving(teacher.app) as teacher_url:
        # Jobs the fuzzer starts fail at training (no such base model) instead of training for minutes.
        configured = load_settings(
            storage_connection=azurite.connection_string, home=tmp_path / "forge-home",
            teacher_base_url=f"{teacher_url}/v1", teacher_api_key=API_KEY, provider="local",
            allowed_providers="local", openai_webhook_secret=WEBHOOK_SECRET, eventgrid_webhook_key=GRID_KEY,
            student_base_model=str(tmp_path / "no-such-base-model"))
        forge = bootstrap(configured, storage=storage)
        key = forge.storage.keys.create(tenant, "contract")[0]
        ids = objects(forge, tenant)
        with LocalEngine(build_activities(forge)) as engine:
            app = create_app(forge, orchestrations=LocalOrchestrations(EngineClient(engine.client)))
            # The fuzzer sends thousands of bad keys on purpose; the per-address limit would soon answer 429 alone.
            app.state.auth_failures = FailureLimit(max_failures=10**9)
            with serving(app) as url:
                yield url, key, ids


def objects(forge, tenant: str) -> dict[str, str]:
    """One of each thing an id names, for the hooks to swap into well-formed path ids."""
    domain = domains.create(forge, tenant, "contract", template="coding", actor="test").name
    traces = [make_trace(tenant, domain) for _ in range(3)]
    forge.storage.traces.add(traces)
    lines = "\n".join(chat_line(i) for i in range(40)).encode()
    dataset = datasets.upload(forge, tenant, domain, io.BytesIO(lines), "jsonl")
    job = forge.storage.jobs.create(make_job(tenant, domain))
    model = forge.storage.models.create(make_model_version(tenant, domain))
    return {"job_id": job.job_id, "dataset_id": dataset.dataset_id, "version_id": model.version_id,
            "trace_id": traces[0].id, "name": domain}


@pytest.mark.timeout(900)
def test_every_operation_answers_as_the_openapi_document_says(live, tmp_path):
    url, key, ids = live
    document = httpx.get(f"{url}/openapi.json").json()
    operations = [f"{m.upper()} {p}" for p, methods in document["paths"].items() for m in methods]
    assert len(operations) >= 50 and all(o.split()[1] in document["paths"] for o in CONTENT_CHECKED)
    fixtures = tmp_path / "fixtures.json"
    fixtures.write_text(json.dumps({"ids": ids, "openai_webhook_secret": WEBHOOK_SECRET}), encoding="utf-8")
    config = tmp_path / "schemathesis.toml"
    config.write_text("".join(
        f'[[operations]]\ninclude-name = "{name}"\nchecks.positive_data_acceptance.expected-statuses = '
        '["2xx", "3xx", "401", "403", "404", "409", "422", "429"]\n\n' for name in CONTENT_CHECKED), encoding="utf-8")
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.contract_hooks", "FORGE_CONTRACT_FIXTURES": str(fixtures),
           "PYTHONPATH": str(ROOT)}
    report = tmp_path / "report"
    run = subprocess.run(
        [str(SCHEMATHESIS), "--config-file", str(config), "run", f"{url}/openapi.json", "--checks", "all",
         # One worker: hypothesis describes filters by parsing source, which CPython 3.11 cannot do from two threads.
         "--max-examples", str(EXAMPLES), "--workers", "1", "--seed", "20261130", "--no-shrink",
         "--request-timeout", "60", "--generation-database", "none",
         "--header", f"X-API-Key: {key}", "--header", f"X-Forge-Webhook-Key: {GRID_KEY}",
         "--report", "ndjson", "--report-dir", str(report), "--warnings", "off"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=840)
    tested = run.stdout.split("Tested:")[1].split()[0] if "Tested:" in run.stdout else "?"
    assert run.returncode == 0, f"schemathesis found mismatches ({tested} operations tested):\n{run.stdout[-20000:]}"
    assert tested == str(len(operations)), run.stdout[-3000:]
