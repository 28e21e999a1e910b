"""train: start the provider's training job, once per Forge job."""

from __future__ import annotations

from typing import Any

from forge.bootstrap import Forge
from forge.services import training

NAME = "train"
Request = training.TrainRequest


def run(forge: Forge, request: Request) -> dict[str, Any]:
    return training.train(forge, request)
