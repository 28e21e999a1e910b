"""One list of stages: the activities are derived from the stage modules, and `distill` calls only those."""

from __future__ import annotations

import ast
import inspect

from pydantic import BaseModel

from forge.stages import stages
from forge.workflow import orchestrator
from forge.workflow.activities import activity_names


def called_activities() -> set[str]:
    """Every activity name `distill` passes to `flow.call` or to its `step` helper (always a literal)."""
    names = set()
    for node in ast.walk(ast.parse(inspect.getsource(orchestrator))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        callee = node.func
        is_call = isinstance(callee, ast.Attribute) and callee.attr == "call"
        is_step = isinstance(callee, ast.Name) and callee.id == "step"
        if is_call or is_step:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
            elif not (isinstance(first, ast.Name) and first.id == "activity"):  # step's own forwarding call
                raise AssertionError(f"line {node.lineno}: an activity name the test cannot read")
    return names


def test_the_orchestrator_calls_only_activities_a_stage_module_provides():
    called = called_activities()
    assert called, "no activity calls found in distill"
    assert called <= set(activity_names()), f"no stage module provides {sorted(called - set(activity_names()))}"


def test_every_stage_module_is_an_activity_the_orchestrator_calls():
    assert set(activity_names()) == called_activities()


def test_every_stage_names_its_payload_model_and_its_run_function():
    for name, stage in stages().items():
        assert issubclass(stage.request, BaseModel), name
        assert list(inspect.signature(stage.run).parameters) == ["forge", "request"], name


def test_every_stage_a_run_can_start_at_is_an_activity_and_one_from_upload_must_name_its_dataset():
    import typing

    import pytest
    from pydantic import ValidationError

    starts = typing.get_args(orchestrator.DistillInput.model_fields["start"].annotation)
    assert set(starts) == {"gather", "upload"} and set(starts) <= set(activity_names())
    base = {"tenant": "t", "domain": "coding", "job_id": "01JOB", "provider": "local"}
    assert orchestrator.DistillInput(**base).start == "gather"
    with pytest.raises(ValidationError, match="dataset_id"):
        orchestrator.DistillInput(**base, start="upload")
