"""Provider `local`: forge-trainer as a detached subprocess, one run folder per job under `$FORGE_HOME/runs/`.

The run folder is the provider's whole state: `data/` (the dataset, copied from Blob), `config.yaml`, `run.json`
(pid, launches), `trainer.log`, and the trainer's `out/` (status.json, metrics.jsonl, checkpoints/, adapter/).
The trainer runs in its own session, so it outlives a Forge restart; `start` and `status` find it again by its
folder. The provider job id is the Forge job id; a succeeded run's result model is the adapter folder's path.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from forge.domain.errors import DatasetNotFound
from forge.providers.lora import TRAINER_DEFAULT_LR, metrics_events, trainer_overrides
from forge.providers.training import (PreparedData, ProviderEvent, ProviderRejected, TrainingRequest,
                                      TrainingState, TrainingStatus)

MAX_LAUNCHES = 3  # the first start plus two resumes after the trainer died (a reboot, an OOM kill)
TRAINER_STATES = {"starting": TrainingState.RUNNING, "running": TrainingState.RUNNING,
                  "succeeded": TrainingState.SUCCEEDED, "failed": TrainingState.FAILED}


class LocalProvider:
    name = "local"

    def __init__(self, home: Path, storage: Any, *, command: list[str] | None = None, base_config: Path | None = None):
        self.runs = home / "runs"
        self.storage = storage
        self.command = command or default_command()
        self.base_config = base_config
        self._children: dict[int, subprocess.Popen] = {}  # reaped by status() so they never linger as zombies

    @classmethod
    def from_forge(cls, forge: Any) -> "LocalProvider":
        s = forge.settings
        command = shlex.split(s.trainer_command) if s.trainer_command else None
        return cls(s.home, forge.storage, command=command, base_config=s.local_trainer_config)

    # --- the protocol --------------------------------------------------------------------------------

    def prepare(self, request: TrainingRequest) -> PreparedData:
        """Copy train.jsonl (and valid.jsonl, if the dataset has one) from Blob into the run folder, once."""
        folder = self._folder(request.job_id) / "data"
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in ("train", "valid"):
            target = folder / f"{name}.jsonl"
            if not target.exists():
                try:
                    chunks = self.storage.datasets.open_file(request.tenant, request.dataset_id, name)
                    tmp = target.with_suffix(".part")
                    with open(tmp, "wb") as out:
                        for chunk in chunks:
                            out.write(chunk)
                    tmp.replace(target)  # a crash mid-copy leaves no file that looks complete
                except DatasetNotFound:
                    if name == "train":
                        raise ProviderRejected(f"Dataset {request.dataset_id} has no train.jsonl; curate it again.")
                    continue
            paths[name] = str(target)
        return PreparedData(train=paths["train"], valid=paths.get("valid"))

    def start(self, request: TrainingRequest, data: PreparedData) -> str:
        """Launch the trainer; for a job whose run folder exists, re-attach (or resume it) instead."""
        folder = self._folder(request.job_id)
        if (folder / "run.json").exists():
            self.status(request.job_id)  # resumes a run whose trainer died; otherwise only looks
            return request.job_id
        config = self._trainer_config(request, data, folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        self._launch(folder, resume=False)
        return request.job_id

    def status(self, provider_job_id: str) -> TrainingStatus:
        folder = self._existing(provider_job_id)
        run = self._run(folder)
        trainer = _read(folder / "out" / "status.json") or {}
        state, alive = trainer.get("state"), self._alive(run)
        common = {"provider_job_id": provider_job_id, "progress": trainer.get("progress"),
                  "trained_tokens": trainer.get("tokens")}
        if state == "succeeded":
            return TrainingStatus(state=TrainingState.SUCCEEDED, result_model=str(folder / "out" / "adapter"),
                                  **common)
        if state == "failed":
            return TrainingStatus(state=TrainingState.FAILED, error=trainer.get("error"), **common)
        if run.get("cancel_requested"):
            return TrainingStatus(state=TrainingState.RUNNING if alive else TrainingState.CANCELLED, **common)
        if alive:
            return TrainingStatus(state=TRAINER_STATES.get(state, TrainingState.QUEUED), **common)
        # The trainer is gone without a final state (SIGTERM from outside, a reboot, a kill): resume it.
        if run["launches"] < MAX_LAUNCHES:
            self._launch(folder, resume=True)
            return TrainingStatus(state=TrainingState.RUNNING, **common)
        return TrainingStatus(state=TrainingState.FAILED, error=(
            f"the trainer stopped {run['launches']} times without finishing; see {folder / 'trainer.log'}:\n"
            + _tail(folder / "trainer.log")), **common)

    def cancel(self, provider_job_id: str) -> None:
        """Ask the trainer to stop after its current step (it checkpoints first); a finished run is left alone."""
        folder = self._existing(provider_job_id)
        run = self._run(folder)
        if (_read(folder / "out" / "status.json") or {}).get("state") in ("succeeded", "failed"):
            return
        run["cancel_requested"] = time.time()
        self._save_run(folder, run)
        if self._alive(run):
            try:
                os.killpg(run["pid"], signal.SIGTERM)  # its own session: the trainer and anything it started
            except ProcessLookupError:
                pass

    def events(self, provider_job_id: str, after: str | None = None) -> list[ProviderEvent]:
        """Loss points from the trainer's metrics.jsonl, newer than line `after`."""
        path = self._existing(provider_job_id) / "out" / "metrics.jsonl"
        if not path.exists():
            return []
        return metrics_events(path.read_text(encoding="utf-8").splitlines(), after)

    # --- the run folder ------------------------------------------------------------------------------

    def _folder(self, job_id: str) -> Path:
        if not job_id or "/" in job_id or job_id.startswith("."):
            raise ProviderRejected(f"'{job_id}' cannot name a run folder.")
        return self.runs / job_id

    def _existing(self, provider_job_id: str) -> Path:
        folder = self._folder(provider_job_id)
        if not (folder / "run.json").exists():
            raise ProviderRejected(f"No local training run '{provider_job_id}' under {self.runs}.")
        return folder

    def _trainer_config(self, request: TrainingRequest, data: PreparedData, folder: Path) -> dict[str, Any]:
        base: dict[str, Any] = {}
        if self.base_config:
            base = yaml.safe_load(self.base_config.read_text(encoding="utf-8")) or {}
        base_lr = float(base.get("train", {}).get("lr", TRAINER_DEFAULT_LR))
        overrides = trainer_overrides(request, base_lr=base_lr) + [
            f"data.train={data.train}", f"data.valid={data.valid}" if data.valid else "data.valid=null",
            f"output.dir={folder / 'out'}"]
        for item in overrides:
            key, _, raw = item.partition("=")
            section, _, field = key.partition(".")
            base.setdefault(section, {})[field] = yaml.safe_load(raw)
        return base

    def _launch(self, folder: Path, *, resume: bool) -> None:
        run = self._run(folder) if (folder / "run.json").exists() else {"launches": 0}
        command = [*self.command, "train", "--config", str(folder / "config.yaml")] + (["--resume"] if resume else [])
        with open(folder / "trainer.log", "ab") as log:
            try:
                child = subprocess.Popen(command, cwd=folder, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
            except OSError as exc:
                raise ProviderRejected(f"Cannot run {command[0]} ({exc}); install gpu-trainer (`make setup`) or "
                                       "set FORGE_TRAINER_COMMAND.") from None
        self._children[child.pid] = child
        run.update(pid=child.pid, started=_start_time(child.pid), launches=run["launches"] + 1, command=command)
        self._save_run(folder, run)

    def _alive(self, run: dict[str, Any]) -> bool:
        pid = run.get("pid")
        if pid is None:
            return False
        child = self._children.get(pid)
        if child is not None and child.poll() is not None:
            del self._children[pid]
            return False
        # Same pid and same start time: the very process launched, not a later one that reused the pid.
        started = _start_time(pid)
        return started is not None and started == run.get("started")

    @staticmethod
    def _run(folder: Path) -> dict[str, Any]:
        return json.loads((folder / "run.json").read_text(encoding="utf-8"))

    @staticmethod
    def _save_run(folder: Path, run: dict[str, Any]) -> None:
        tmp = folder / ".run.json.tmp"
        tmp.write_text(json.dumps(run), encoding="utf-8")
        tmp.replace(folder / "run.json")


def default_command() -> list[str]:
    """`forge-trainer` from this Python's environment (the venv `make setup` builds)."""
    beside = Path(sys.executable).with_name("forge-trainer")
    return [str(beside)] if beside.exists() else ["forge-trainer"]


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or '?' without /proc; None if it is gone."""
    if not Path("/proc/self/stat").exists():
        try:
            os.kill(pid, 0)
            return "?"
        except ProcessLookupError:
            return None
        except PermissionError:
            return "?"
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]  # a zombie has exited already


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
