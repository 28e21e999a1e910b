"""A Forge as `forge serve` runs it (API + dashboard + a local engine on 127.0.0.1) over seeded demo traffic, and
Debian's Chromium driven by Playwright. Shared by the browser tests and `make screenshots`."""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from forge.api.app import create_app
from forge.api.server import serving
from forge.bootstrap import Forge, bootstrap
from forge.config import load_settings
from forge.demo import seed
from forge.services import traces as trace_service
from forge.storage import Storage, StorageAccount
from forge.workflow.activities import build_activities
from forge.workflow.local import EngineClient, LocalEngine, LocalOrchestrations

CHROMIUM = "/usr/bin/chromium"
# No network of its own: no component updates, no sync, no first-run pings — so every request a page makes is
# one the dashboard made, and the tests can check each goes to Forge.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-default-apps", "--disable-extensions"]
TRAFFIC = 240  # demo traffic lines: enough golden traces for a run, few enough to curate and train in seconds
# A small run the loss chart can be watched on: ~50 steps of a ~200K-parameter model on one CPU thread, about 10 s
# on an idle machine — long enough for the page to see the curve before training ends.
RUN_HYPERPARAMETERS = {"n_epochs": 24, "batch_size": 4, "learning_rate": 0.01, "lora_r": 16, "lora_alpha": 32,
                       "max_seq_length": 128, "eval_every": 10, "threads": 1}


@dataclass
class Running:
    url: str
    key: str
    tenant: str
    forge: Forge


def chromium_path() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)


def spread_over_days(path: Path, days: int) -> None:
    """Date the seeded traffic over the last `days` days (more of it lately), as a service's log would be."""
    now = datetime.now(timezone.utc)
    lines = path.read_text(encoding="utf-8").splitlines()
    with open(path, "w", encoding="utf-8") as out:
        for i, line in enumerate(lines):
            try:
                record = json.loads(line)
            except ValueError:
                out.write(line + "\n")  # the seed's malformed lines stay malformed
                continue
            back = int(days * (1 - ((i * 7919) % len(lines) / len(lines)) ** 0.5))
            record["created_at"] = (now - timedelta(days=back, minutes=i)).isoformat()
            out.write(json.dumps(record) + "\n")


@contextmanager
def running_forge(connection: str, home: Path, tenant: str, *, traffic: int = TRAFFIC,
                  days: int = 0) -> Iterator[Running]:
    """Seed `traffic` lines of demo traffic for `tenant` (over `days` days; 0: now), build a tiny base model on it,
    and serve Forge."""
    from forge_trainer import tiny

    home.mkdir(parents=True, exist_ok=True)
    lines = seed.write(home / "traffic.jsonl", count=traffic)
    if days:
        spread_over_days(lines, days)
    base = home / "base"
    if not (base / "config.json").is_file():
        tiny.build(base, seed=0, corpus_file=lines)
    # The operator's settings: the tiny model is the default base (a tenant may not name a folder), and the local
    # provider is the one API callers may use.
    settings = load_settings(storage_connection=connection, home=home, student_base_model=str(base),
                             provider="local", allowed_providers="local")
    forge = bootstrap(settings, storage=Storage.open(StorageAccount.from_connection_string(connection)))
    with open(lines, "rb") as stream:
        trace_service.import_jsonl(forge.storage, stream, tenant=tenant, domain="demo", known_domains=forge.domains)
    key = forge.storage.keys.create(tenant, "browser")[0]
    with LocalEngine(build_activities(forge)) as engine:
        app = create_app(forge, orchestrations=LocalOrchestrations(EngineClient(engine.client)))
        with serving(app) as url:
            yield Running(url, key, tenant, forge)
