"""`forge export MODEL`: a LoRA student as a PEFT adapter, merged safetensors, GGUF or an Ollama model."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from forge.cli.common import forge, out
from forge.services.exports import ExportFormat, export_model


def export(
    version_id: str = typer.Argument(..., help="The model version to export (`forge models list`)."),
    fmt: str = typer.Option(..., "--format", help="peft, merged, gguf or ollama."),
    quant: Optional[str] = typer.Option(None, help="gguf and ollama: f16 (default), q8_0, q4_k_m, or f32 (exact)."),
    to: Optional[Path] = typer.Option(None, "--out", help="A new folder (default: $FORGE_HOME/exports/…)."),
    tenant: Optional[str] = typer.Option(None),
) -> None:
    """Export a student; a folder with the final name is always complete, and says how to serve it."""
    f = forge()
    if fmt not in {e.value for e in ExportFormat}:
        raise typer.BadParameter(f"--format must be one of {', '.join(e.value for e in ExportFormat)} (got {fmt!r}).")
    done = export_model(f, tenant or f.settings.tenant, version_id, fmt, quant=quant,
                        out=to.expanduser().resolve() if to else None)
    total = sum(file["bytes"] for file in done.files)
    out.print(f"Exported {done.model} as {done.format}{f' ({done.quant})' if done.quant else ''} to {done.folder} "
              f"({len(done.files)} files, {total / (1 << 20):.1f} MiB):", markup=False)
    for file in done.files:
        out.print(f"  {file['name']}  {file['bytes']:,} bytes  sha256 {file['sha256'][:16]}…", markup=False)
    out.print(f"vLLM: {done.vllm}", markup=False)
    for name, command in done.commands.items():
        out.print(f"{name}: {command}", markup=False)
