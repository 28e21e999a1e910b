"""The FastAPI app: collects the routers, installs errors and limits. OpenAPI at /docs."""

from __future__ import annotations

from fastapi import FastAPI

from forge.api import contract, errors
from forge.api.limits import BodySizeLimit
from forge.api.routes import health, jobs, models, traces
from forge.api.routes import datasets
from forge.api.routes import webhooks
from forge.api.routes import dashboard, dataset_checks, insights, session
from forge.api.routes import domains, evaluations
from forge.api.routes import canary, drift
from forge.bootstrap import Forge
from forge.services.runs import Orchestrations
from forge.api.routes import chat
from forge.api.routes import economics


def create_app(forge: Forge, orchestrations: Orchestrations | None = None) -> FastAPI:
    """The API over a wired Forge; `orchestrations` is the engine runs are started on (none: 503 on trigger)."""
    app = FastAPI(
        title="Forge",
        version=contract.API_VERSION,
        description="Distil a teacher model's traffic into a cheaper student. Authenticate with `X-API-Key` (or "
                    "`Authorization: Bearer`). Errors are `application/problem+json`; lists page with `limit` and "
                    "`continuation`. The package's version is `info.x-forge-version`.",
    )
    app.state.forge = forge
    app.state.orchestrations = orchestrations
    errors.install(app)
    for module in (health, traces, jobs, models, datasets, webhooks, domains, evaluations, canary, drift):
        app.include_router(module.router)
    app.include_router(economics.router)
    for module in (session, insights, dataset_checks, dashboard):  # the dashboard at / and what only it reads
        app.include_router(module.router)
    chat.install(app, forge)  # the OpenAI-compatible router: /v1/chat/completions, /v1/models
    app.add_middleware(BodySizeLimit, max_bytes=forge.settings.api_max_body_bytes)
    contract.install(app)  # the OpenAPI every route shares (errors, keys, paging, version) and the version header
    return app
