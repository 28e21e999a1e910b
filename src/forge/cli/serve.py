"""`forge serve`: the HTTP API and router on this machine, with an orchestration engine behind it."""

from __future__ import annotations

import threading
from typing import Optional

import typer
import uvicorn

from forge.api.app import create_app
from forge.cli.common import forge, out
from forge.providers.clients import lora_server_note
from forge.workflow.local import EngineClient, LocalOrchestrations
from forge.workflow.worker import Worker, running_worker


def serve(
    host: Optional[str] = typer.Option(None, help="Default FORGE_API_HOST (127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Default FORGE_API_PORT (8080)."),
) -> None:
    """Serve the API (OpenAPI at /docs) until Ctrl-C; runs are handed to `forge worker`, or to an engine here."""
    f = forge()
    host = host or f.settings.api_host
    port = port if port is not None else f.settings.api_port
    address = running_worker(f.settings.home)
    worker = None
    if address:
        orchestrations = LocalOrchestrations(EngineClient.connect(address))
        out.print(f"Runs go to the forge worker at {address}", markup=False)
    else:
        worker = Worker(f)
        orchestrations = worker.start()
        threading.Thread(target=worker.schedule, args=(orchestrations,), name="forge-nightly", daemon=True).start()
    out.print(f"Forge API on http://{host}:{port} (docs at /docs)", markup=False)
    out.print(lora_server_note(f.settings, f.lora_server()), markup=False)  # what serves LoRA students, or why none
    try:
        uvicorn.run(create_app(f, orchestrations=orchestrations), host=host, port=port, log_level="info")
    finally:
        if worker is not None:
            worker.stop()
            worker.close()
