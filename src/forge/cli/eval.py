"""`forge eval`: score a model on a domain's benchmark (and held-out traces), against production, with the gates."""

from __future__ import annotations

import json
from typing import Optional

import typer

from forge.cli.common import forge, out
from forge.services import evaluation as service


def eval_(
    model: str = typer.Option(..., "--model", "-m", help="A model version id, `teacher`, or a hosted model's name."),
    domain: Optional[str] = typer.Option(None, "--domain", "-d", help="Default FORGE_DOMAIN."),
    dataset: Optional[str] = typer.Option(None, help="Dataset id whose valid.jsonl is scored against the teacher."),
    baseline: Optional[str] = typer.Option(None, help="Compare with this model; default: the production model."),
    no_baseline: bool = typer.Option(False, "--no-baseline", help="Do not compare with any model."),
    examples: int = typer.Option(50, min=0, max=1000, help="Held-out traces to score at most."),
    tasks: Optional[int] = typer.Option(None, min=1, help="Benchmark tasks to run at most (default: all)."),
    max_tokens: int = typer.Option(1024, min=16, help="Longest answer asked for."),
    judge: bool = typer.Option(True, help="Run the LLM judge when FORGE_GRADER_MODEL is set."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    tenant: Optional[str] = typer.Option(None),
) -> None:
    """Evaluate a model and print its scores per category, the gates' decision and their reasons."""
    f = forge()
    tenant, domain = tenant or f.settings.tenant, domain or f.settings.domain
    candidate = service.resolve_model(f, tenant, domain, model)
    rival = None
    if baseline:
        rival = service.resolve_model(f, tenant, domain, baseline)
    elif not no_baseline:
        rival = service.production_model(f, tenant, domain)
        if rival is not None and service.label(rival) == service.label(candidate):
            rival = None
    limits = service.Limits(examples, tasks, max_tokens, judge)
    evaluation = service.evaluate_model(f, tenant=tenant, domain=domain, model=candidate, baseline=rival,
                                        dataset_id=dataset, limits=limits)
    if as_json:
        out.print_json(json.dumps({**evaluation.result.model_dump(mode="json"),
                                   "tasks": [s.model_dump(mode="json") for s in evaluation.task_scores],
                                   "items": evaluation.items()}))
        return
    _print(evaluation)


def _print(evaluation: service.Evaluation) -> None:
    result, metrics, theirs = evaluation.result, evaluation.result.metrics, evaluation.result.baseline_metrics
    assert metrics is not None  # evaluate_model always measures the candidate
    against = f" vs {result.baseline}" if theirs else ""
    held = f"eval set v{result.eval_set_version}" if result.eval_set_version else "held-out traces"
    out.print(f"{result.model} on {result.domain}{against}: {metrics.benchmark_tasks} benchmark tasks, "
              f"{metrics.validation_examples} {held}", markup=False)
    out.print(f"  {'category':<22}{'score':>8}" + (f"{'baseline':>10}" if theirs else ""), markup=False)
    for category, score in metrics.categories.items():
        other = f"{theirs.categories.get(category, 0):>10.1f}" if theirs else ""
        out.print(f"  {category:<22}{score:>8.1f}{other}", markup=False)
    overall = f"{theirs.score:>10.1f}" if theirs else ""
    out.print(f"  {'overall':<22}{metrics.score:>8.1f}{overall}", markup=False)
    out.print("  " + "  ".join(f"{k} {v:.1f}" for k, v in metrics.components.items()), markup=False)
    if metrics.teacher_similarity is not None:
        out.print(f"  similarity to the teacher (chrF) {metrics.teacher_similarity:.1f}", markup=False)
    if metrics.task_metrics:
        out.print("  " + "  ".join(f"{k} {v:.3f}" for k, v in metrics.task_metrics.items()), markup=False)
    for name, diff in result.comparisons.items():
        what = "vs production" if name == "production" else "gap to the teacher"
        out.print(f"  {what}: {diff.mean:+.1f} points per example over {diff.n} ({diff.confidence:.0%}: "
                  f"{diff.lower:+.1f} to {diff.upper:+.1f})", markup=False)
    if result.judge is not None:
        j = result.judge
        rate = "-" if j.win_rate is None else f"{j.win_rate:.0%}"
        out.print(f"  judge vs {j.opponent}: {j.wins} wins, {j.losses} losses, {j.ties} ties, {j.invalid} undecided "
                  f"(win rate {rate})", markup=False)
        agreed = j.agreement.rate if j.agreement else None
        out.print(f"  judge {j.model} ({j.prompt_version}): " + (f"agrees with people on {agreed:.0%} of "
                  f"{j.agreement.decided}" if agreed is not None else "no alignment set (no labelled traces)"),
                  markup=False)
    weakest = sorted(evaluation.task_scores, key=lambda s: s.total)[:3]
    for score in weakest:
        if score.failed:
            out.print(f"  weak: {score.task_id} {score.total:.1f} ({'; '.join(score.failed[:2])})", markup=False)
    out.print(f"Decision: {result.decision.upper()}", markup=False)
    for reason in result.reasons:
        out.print(f"  - {reason}", markup=False)
