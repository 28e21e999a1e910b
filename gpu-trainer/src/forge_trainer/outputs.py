"""The run folder: status.json, metrics.jsonl, summary.json, checkpoints/ and the adapter, written atomically."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

STATES = ("starting", "running", "succeeded", "failed", "interrupted")


def write_json(path: Path, value: Any) -> None:
    """Write JSON through a temp file and a rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class RunFiles:
    """Everything a run writes under its output folder; `on_change` mirrors files elsewhere (e.g. Blob)."""

    def __init__(self, root: Path, on_change: Callable[[list[Path]], None] | None = None):
        self.root = root
        self.on_change = on_change or (lambda paths: None)
        self.status_path = root / "status.json"
        self.metrics_path = root / "metrics.jsonl"
        self.summary_path = root / "summary.json"
        self.adapter_dir = root / "adapter"
        self.merged_dir = root / "merged"
        self.checkpoints = root / "checkpoints"
        self._status: dict[str, Any] = {}

    @property
    def state(self) -> str | None:
        return self._status.get("state")

    def holds_results(self) -> bool:
        """A finished or resumable run lives here already (so a fresh run must not overwrite it)."""
        return self.adapter_dir.exists() or self.metrics_path.exists() or any(self.checkpoints.glob("step-*"))

    def status(self, state: str, **fields: Any) -> None:
        assert state in STATES, state
        self._status.update(fields, state=state, pid=os.getpid(), updated_at=time.time())
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(self.status_path, self._status)
        self.on_change([self.status_path])

    def metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def truncate_metrics(self, after_step: int) -> None:
        """On resume, drop lines logged after the checkpoint: they are logged again, identically."""
        if not self.metrics_path.exists():
            return
        lines = self.metrics_path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= after_step]
        tmp = self.metrics_path.with_name(".metrics.jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.replace(tmp, self.metrics_path)

    def publish(self, write: Callable[[Path], None], target: Path) -> Path:
        """Write into a temp folder, then rename: a half-written adapter is never presented as a result."""
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        write(tmp)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        return target

    def summary(self, value: dict[str, Any]) -> None:
        write_json(self.summary_path, value)
