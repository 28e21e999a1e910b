"""`forge cost`: what fine-tuning a dataset or a file would cost, before anything is spent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from forge.cli.common import forge, out
from forge.services import estimates


def cost(
    dataset: Optional[str] = typer.Option(None, "--dataset", help="A stored dataset's id (its train.jsonl)."),
    file: Optional[Path] = typer.Option(None, "--file", help="A chat fine-tuning JSONL file."),
    model: Optional[str] = typer.Option(None, "--model", help="Base model (default: FORGE_STUDENT_BASE_MODEL)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Epochs (default: OpenAI's auto choice)."),
    tenant: Optional[str] = typer.Option(None, help="Tenant of --dataset (default: FORGE_TENANT)."),
    as_json: bool = typer.Option(False, "--json", help="The estimate as JSON."),
) -> None:
    """Billed tokens, epochs, price and estimated cost of fine-tuning on a dataset or a file."""
    if (dataset is None) == (file is None):
        raise typer.BadParameter("give either --dataset ID or --file F")
    f = forge()
    if file is not None:
        estimate = estimates.estimate_file(f, file, model=model, epochs=epochs)
    else:
        estimate = estimates.estimate_dataset(f, tenant or f.settings.tenant, dataset, model=model, epochs=epochs)
    if as_json:
        out.print(json.dumps(estimate.model_dump(mode="json"), indent=2), markup=False)
        return
    e = estimate
    out.print(f"Model {e.model}: {e.examples:,} examples, {e.dataset_tokens:,} tokens per epoch "
              f"(at most {e.token_limit:,} per example; {e.truncated_examples} longer ones billed up to it)",
              markup=False)
    out.print(f"Epochs: {e.epochs}" + (" (auto, from the example count)" if e.epochs_auto else ""), markup=False)
    out.print(f"Billed tokens: {e.billed_tokens:,}", markup=False)
    if e.cost is None:
        out.print(f"Cost: no price for {e.model} in the price table of {e.prices_as_of}; set FORGE_PRICE_TABLE to "
                  "a table that has it.", markup=False)
    else:
        out.print(f"Price: {e.price_per_1m:g} {e.currency} per 1M training tokens (prices as of {e.prices_as_of})",
                  markup=False)
        out.print(f"Estimated cost: {e.cost:.4f} {e.currency}", markup=False)
