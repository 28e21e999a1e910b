"""The FastAPI app: collects the routers, installs errors and limits. OpenAPI at /docs."""

from __future__ import annotations

from fastapi import FastAPI

from forge import __version__
from forge.api import errors
from forge.api.limits import BodySizeLimit
from forge.api.routes import health, jobs, traces
from forge.bootstrap import Forge


def create_app(forge: Forge) -> FastAPI:
    app = FastAPI(
        title="Forge",
        version=__version__,
        description="Distil a teacher model's traffic into a cheaper student. Authenticate with `X-API-Key`.",
    )
    app.state.forge = forge
    errors.install(app)
    for module in (health, traces, jobs):
        app.include_router(module.router)
    app.add_middleware(BodySizeLimit, max_bytes=forge.settings.api_max_body_bytes)
    return app
