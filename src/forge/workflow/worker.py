"""`forge worker`: the local engine as a long-running process — resumes unfinished jobs, fires the nightly run,
drains the trace capture queue and reconciles stuck jobs and due notifications every `RECONCILE_EVERY_S`.

Its gRPC address is written to `$FORGE_HOME/worker.json`, so `forge run`, `forge jobs cancel` and `forge serve`
in other processes reach the same engine instead of starting their own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from forge.bootstrap import Forge
from forge.domain.cron import parse_cron
from forge.services import runs
from forge.services.capture import drain_forever
from forge.services.reconcile import reconcile
from forge.workflow import canary_loop
from forge.workflow.activities import build_activities
from forge.workflow.local import EngineClient, LocalEngine, LocalOrchestrations

log = logging.getLogger("forge.worker")
RECONCILE_EVERY_S = 60.0  # Azure's reconcile timer fires every 5 minutes; a laptop can afford more often


def state_file(home: Path) -> Path:
    return home / "worker.json"


def running_worker(home: Path) -> str | None:
    """The address of this home's live worker, if there is one."""
    path = state_file(home)
    try:
        state = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return state["address"]


def announce(path: Path, state: dict[str, object]) -> None:
    """Write worker.json readable by its owner only: the engine it names runs anything it is sent, unauthenticated.

    mkstemp creates the file 0600 (there is no moment it is readable by others, whatever the umask), and the rename
    replaces a stale file from a killed worker at once, so no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(state, f)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


@contextmanager
def engine_for(forge: Forge) -> Iterator[LocalOrchestrations]:
    """The running worker's engine if there is one, else an engine in this process for as long as the block."""
    address = running_worker(forge.settings.home)
    if address:
        client = EngineClient.connect(address)
        try:
            yield LocalOrchestrations(client)
        finally:
            client.close()
        return
    with LocalEngine(build_activities(forge)) as engine:
        yield LocalOrchestrations(EngineClient(engine.client))


class Worker:
    def __init__(self, forge: Forge, port: int | None = None, reconcile_every_s: float = RECONCILE_EVERY_S):
        self.forge = forge
        self.engine = LocalEngine(build_activities(forge), port=port)
        self.stopped = threading.Event()
        self.reconcile_every_s = reconcile_every_s

    def start(self) -> LocalOrchestrations:
        """Start the engine, announce it in worker.json, and resume what was unfinished."""
        self.engine.start()
        announce(state_file(self.forge.settings.home), {"address": self.engine.address, "pid": os.getpid()})
        self.orchestrations = LocalOrchestrations(EngineClient(self.engine.client))
        resumed = asyncio.run(runs.resume_unfinished(self.forge, self.orchestrations, runs.tenants(self.forge)))
        if resumed:
            log.info("resumed %d unfinished jobs: %s", len(resumed), ", ".join(resumed))
        self.ensure_loops()
        threading.Thread(target=drain_forever, args=(self.forge, self.stopped), name="forge-capture",
                         daemon=True).start()
        threading.Thread(target=self.reconcile_forever, name="forge-reconcile", daemon=True).start()
        return self.orchestrations

    def ensure_loops(self) -> None:
        """One canary control loop per domain with a route (started again after a restart; a running one stays)."""
        try:
            for wanted in canary_loop.loops_wanted(self.forge, runs.tenants(self.forge)):
                self.orchestrations.client.ensure_loop(wanted)
        except Exception as exc:  # storage down: the next beat tries again
            log.warning("starting the canary loops failed (%s)", type(exc).__name__)

    def reconcile_forever(self) -> None:
        """The same pass Azure's reconcile timer runs: stuck or orphaned jobs, then due notifications."""
        while not self.stopped.wait(self.reconcile_every_s):
            self.ensure_loops()
            try:
                done = asyncio.run(reconcile(self.forge, self.orchestrations, runs.tenants(self.forge),
                                             datetime.now(timezone.utc)))
            except Exception as exc:  # storage down: the next beat tries again
                log.warning("reconciling failed (%s)", type(exc).__name__)
                continue
            if done.started or done.resumed or done.failed:
                log.info("reconciler started %s, resumed %s, failed %s", done.started, done.resumed, done.failed)

    def run(self) -> None:
        """Serve until `stop()`: resume what was unfinished, then wait for each scheduled firing."""
        try:
            self.schedule(self.start())
        finally:
            self.close()

    def close(self) -> None:
        self.stopped.set()  # the drainer and the reconciler end with the engine
        state_file(self.forge.settings.home).unlink(missing_ok=True)
        self.engine.stop()

    def stop(self) -> None:
        self.stopped.set()

    def schedule(self, orchestrations: LocalOrchestrations) -> None:
        cron = parse_cron(self.forge.settings.schedule_cron)
        while not self.stopped.is_set():
            now = datetime.now(timezone.utc)
            fire_at = cron.next_after(now)
            if self.stopped.wait((fire_at - now).total_seconds()):
                return
            if not self.forge.settings.enabled:
                log.info("nightly run skipped: FORGE_ENABLED is false")
                continue
            started = asyncio.run(runs.nightly(self.forge, orchestrations, runs.tenants(self.forge), fire_at))
            log.info("nightly run at %s started %d jobs", fire_at.isoformat(), len(started))
