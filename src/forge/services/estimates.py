"""Fine-tuning cost before anything is spent: for a JSONL file, a stored dataset, inline examples, or a job's run.

Billed tokens, epochs and prices come from `forge.domain.cost` (OpenAI's accounting and its dated price table, or
FORGE_PRICE_TABLE); tokens are counted offline with the model's own encoding (`forge.tokens`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

from forge import tokens
from forge.bootstrap import Forge
from forge.domain import chat_format, cost
from forge.domain.errors import DatasetInvalid, ForgeError, InvalidInput
from forge.providers.training import TrainingRequest
from forge.curation import sources as trace_sources
from forge.services.datasets import get as get_dataset
from forge.services.datasets import validate_lines
from forge.services.pricing import price_table
from forge.services.jobs import record, update_job

NOT_BLOCKING = ("over_token_limit", "too_few_examples")  # billed up to the limit; too few is the provider's call


def estimate_file(forge: Forge, path: Path, *, model: str | None = None, epochs: int | None = None) -> cost.CostEstimate:
    """`forge cost --file F`: the file is checked as OpenAI would check it, then its training tokens are counted."""
    if not path.is_file():
        raise InvalidInput(f"No file {path}; give the path of a chat fine-tuning JSONL file.")
    model, count, limit = _counter(forge, model, epochs)
    with open(path, "rb") as stream:
        report = validate_lines(trace_sources.lines(stream), count, limit)
    blocking = [p for p in report.problems if p["code"] not in NOT_BLOCKING]
    if blocking:
        first = blocking[0]
        raise DatasetInvalid(f"{path} has {len(blocking)} problem(s) the provider would refuse, the first on line "
                             f"{first['line']}: {first['message']}. `forge datasets validate {path}` lists them all.")
    over = sum(1 for p in report.problems if p["code"] == "over_token_limit")
    return cost.estimate_from_totals(report.examples, report.tokens, over, model, epochs=epochs,
                                     prices=price_table(forge.settings), limit=limit)


def estimate_dataset(forge: Forge, tenant: str, dataset_id: str, *, model: str | None = None,
                     epochs: int | None = None) -> cost.CostEstimate:
    """A stored dataset's train.jsonl (validation examples are not billed), streamed from Blob."""
    get_dataset(forge, tenant, dataset_id)
    return _estimate(forge, forge.storage.datasets.read_file(tenant, dataset_id, "train"), model, epochs)


def estimate_examples(forge: Forge, examples: list[dict[str, Any]], *, model: str | None = None,
                      epochs: int | None = None) -> cost.CostEstimate:
    """Examples sent inline (the API), each checked first."""
    for number, example in enumerate(examples):
        problems = chat_format.validate(example)
        if problems:
            raise InvalidInput(f"examples[{number}]: {problems[0].message}. Send chat fine-tuning examples "
                               '({"messages": [...]}), or a datasetId.')
    return _estimate(forge, examples, model, epochs)


def estimate_for_tenant(forge: Forge, tenant: str, *, dataset_id: str | None = None,
                        examples: list[dict[str, Any]] | None = None, model: str | None = None,
                        epochs: int | None = None) -> cost.CostEstimate:
    """The API's estimate: of one of the tenant's datasets, or of examples sent inline."""
    if (dataset_id is None) == (examples is None):
        raise InvalidInput("Send either datasetId (a stored dataset) or examples (chat examples), not both or none.")
    if dataset_id is not None:
        return estimate_dataset(forge, tenant, dataset_id, model=model, epochs=epochs)
    return estimate_examples(forge, examples or [], model=model, epochs=epochs)


def estimate_for_job(forge: Forge, request: TrainingRequest) -> cost.CostEstimate:
    """What the job's run will bill: its dataset's totals when they were counted for the same model."""
    epochs = request.hyperparameters.get("n_epochs")
    epochs = epochs if isinstance(epochs, int) else None  # "auto" or unset: OpenAI's heuristic
    stored = forge.storage.datasets.get(request.tenant, request.dataset_id).estimate
    if stored.get("model") == request.base_model and "dataset_tokens" in stored:
        return cost.estimate_from_totals(stored["examples"], stored["dataset_tokens"], stored["truncated_examples"],
                                         request.base_model, epochs=epochs, prices=price_table(forge.settings),
                                         limit=stored["token_limit"])
    return estimate_dataset(forge, request.tenant, request.dataset_id, model=request.base_model, epochs=epochs)


def record_estimate(forge: Forge, request: TrainingRequest) -> None:
    """Store the run's estimate on the job (`cost.estimate`) before training starts; an estimate never blocks a run."""
    try:
        estimate = estimate_for_job(forge, request).model_dump(mode="json")
    except ForgeError as exc:
        record(forge, request.job_id, "cost", f"no cost estimate: {exc}", level="warning")
        return
    if forge.storage.jobs.get(request.tenant, request.job_id).cost.get("estimate") == estimate:
        return  # a retried stage: already stored and announced

    def store(job: Any) -> None:
        job.cost = {**job.cost, "estimate": estimate}

    update_job(forge, request.tenant, request.job_id, store)
    record(forge, request.job_id, "cost", describe(cost.CostEstimate.model_validate(estimate)), **estimate)


def describe(estimate: cost.CostEstimate) -> str:
    """One line: billed tokens, epochs and cost."""
    price = (f"~{estimate.cost:.4f} {estimate.currency}" if estimate.cost is not None
             else f"no price for {estimate.model} in the table of {estimate.prices_as_of}")
    epochs = f"{estimate.epochs} epochs" + (" (auto)" if estimate.epochs_auto else "")
    return f"{estimate.billed_tokens:,} billed tokens over {epochs} on {estimate.model}: {price}"


def _estimate(forge: Forge, examples: Iterable[dict[str, Any]], model: str | None,
              epochs: int | None) -> cost.CostEstimate:
    model, count, limit = _counter(forge, model, epochs)
    lengths = (chat_format.count_example_tokens(example, count)[0] for example in examples)
    return cost.estimate(lengths, model, epochs=epochs, prices=price_table(forge.settings), limit=limit)


def _counter(forge: Forge, model: str | None, epochs: int | None) -> tuple[str, Callable[[str], int], int]:
    """(model, token counter in its encoding, its per-example token limit)."""
    if epochs is not None and epochs < 1:
        raise InvalidInput(f"epochs must be at least 1 (got {epochs}); leave it out for OpenAI's auto choice.")
    model = model or forge.settings.student_base_model
    encoding = tokens.encoding(tokens.encoding_name_for_model(model), home=forge.settings.home,
                               node_modules=forge.settings.node_modules)
    return model, (lambda text: len(encoding.encode_ordinary(text))), cost.token_limit(model, price_table(forge.settings))
