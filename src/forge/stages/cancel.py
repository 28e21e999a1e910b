"""cancel_training: stop the provider's run (time limit reached, or the job was cancelled)."""

from __future__ import annotations

from typing import Any

from forge.bootstrap import Forge
from forge.services import training

NAME = "cancel_training"
Request = training.PollRequest


def run(forge: Forge, request: Request) -> dict[str, Any]:
    return training.cancel_training(forge, request)
