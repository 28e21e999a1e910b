"""promote: a student that passed its gates goes live (canary, or production when the domain has none yet); one
that failed is archived with the reasons."""

from __future__ import annotations

from typing import Any

from forge.bootstrap import Forge
from forge.services import promotion

NAME = "promote"
Request = promotion.PromoteRequest


def run(forge: Forge, request: Request) -> dict[str, Any]:
    return promotion.promote(forge, request).model_dump(mode="json")
