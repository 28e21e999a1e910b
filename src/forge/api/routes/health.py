from __future__ import annotations

from azure.core.exceptions import AzureError
from fastapi import APIRouter
from starlette.responses import JSONResponse

from forge import __version__
from forge.api.auth import ForgeDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health(forge: ForgeDep) -> JSONResponse:
    """Liveness and storage reachability; needs no key and reveals nothing about tenants."""
    try:
        next(iter(forge.storage.account.tables.list_tables(results_per_page=1)), None)
        storage = "ok"
    except AzureError:
        storage = "unreachable"
    status = 200 if storage == "ok" else 503
    return JSONResponse({"status": "ok" if status == 200 else "degraded", "version": __version__, "storage": storage},
                        status_code=status)
