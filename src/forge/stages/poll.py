"""poll: ask the provider how training goes, copy its new events (loss points) onto the job."""

from __future__ import annotations

from typing import Any

from forge.bootstrap import Forge
from forge.services import training

NAME = "poll"
Request = training.PollRequest


def run(forge: Forge, request: Request) -> dict[str, Any]:
    return training.poll(forge, request)
