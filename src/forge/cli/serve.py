"""`forge serve`: the HTTP API on this machine."""

from __future__ import annotations

from typing import Optional

import typer
import uvicorn

from forge.api.app import create_app
from forge.cli.common import forge, out


def serve(
    host: Optional[str] = typer.Option(None, help="Default FORGE_API_HOST (127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Default FORGE_API_PORT (8080)."),
) -> None:
    """Serve the API (OpenAPI at /docs) until Ctrl-C."""
    f = forge()
    host = host or f.settings.api_host
    port = port if port is not None else f.settings.api_port
    out.print(f"Forge API on http://{host}:{port} (docs at /docs)", markup=False)
    uvicorn.run(create_app(f), host=host, port=port, log_level="info")
