"""upload: make the dataset readable by the training provider (Files API upload, run folder, Blob URIs)."""

from __future__ import annotations

from typing import Any

from forge.bootstrap import Forge
from forge.services import training

NAME = "upload"
Request = training.UploadRequest


def run(forge: Forge, request: Request) -> dict[str, Any]:
    return training.upload(forge, request)
