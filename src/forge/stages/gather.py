"""gather: count the golden traces since the domain's watermark and decide whether the run goes on."""

from __future__ import annotations

from typing import Any

from forge.bootstrap import Forge
from forge.services import gathering

NAME = "gather"
Request = gathering.GatherRequest


def run(forge: Forge, request: Request) -> dict[str, Any]:
    return gathering.gather(forge, request)
