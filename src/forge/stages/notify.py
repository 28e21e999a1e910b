"""notify: write the job's final status and tell whoever asked to be told."""

from __future__ import annotations

from typing import Any

from forge.bootstrap import Forge
from forge.services import notifications

NAME = "notify"
Request = notifications.NotifyRequest


def run(forge: Forge, request: Request) -> dict[str, Any]:
    return notifications.notify(forge, request)
