"""`forge lora`: the LoRA server students are served from — what it is, what it has loaded, and stopping Forge's own."""

from __future__ import annotations

import typer

from forge.cli.common import out, settings
from forge.providers.clients import lora_server_for, lora_server_note
from forge.providers.embedded_lora import EmbeddedLoRAServer

app = typer.Typer(help="The LoRA server (embedded llama.cpp, or vLLM) that serves students as adapters.",
                  no_args_is_help=True)


@app.command("status")
def status() -> None:
    """Which server serves LoRA students and the adapters it has loaded."""
    s = settings()
    server = lora_server_for(s)
    out.print(lora_server_note(s, server), markup=False)
    if server is not None:
        for name, source in sorted(server.loaded().items()):
            out.print(f"  {name}  ← {source}", markup=False)


@app.command("stop")
def stop() -> None:
    """Stop the embedded llama.cpp servers this FORGE_HOME started (converted models stay on disk)."""
    stopped = EmbeddedLoRAServer(settings().home).stop()
    out.print(f"Stopped {stopped} embedded LoRA server{'s' if stopped != 1 else ''}." if stopped else
              "No embedded LoRA server started by Forge is running here.")
