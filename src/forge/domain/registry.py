"""The registry's rules: how promote, rollback and archive move model versions and the domain's route. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

from forge.domain.errors import ForgeError
from forge.domain.models import ModelStage, ModelVersion, Route, utcnow


class InvalidTransition(ForgeError):
    """The model is not in a stage the action applies to; the message names the stage and what to do instead."""

    status = 409
    title = "Invalid model transition"


@dataclass
class Transition:
    """The route to write and the new stage of every model version the action touches."""

    route: Route
    stages: dict[str, ModelStage] = field(default_factory=dict)
    changed: bool = True


def next_stage(stage: ModelStage) -> ModelStage:
    """Where a plain `promote` takes a model: staging or archived → candidate → production."""
    return ModelStage.PRODUCTION if stage in (ModelStage.CANDIDATE, ModelStage.PRODUCTION) else ModelStage.CANDIDATE


def promote(route: Route, model: ModelVersion, to: ModelStage | None, canary_percent: float) -> Transition:
    """Make `model` the canary at `canary_percent`, or the production model (the old one kept for rollback)."""
    target = to or next_stage(model.stage)
    vid = model.version_id
    if target == ModelStage.CANDIDATE:
        if route.production_model == vid:
            raise InvalidTransition(f"{vid} serves {route.domain} in production; roll it back instead of demoting it.")
        if not 0 < canary_percent <= 100:
            raise InvalidTransition(f"canary percent must be above 0 and at most 100 (got {canary_percent:g}).")
        if route.canary_model == vid and route.canary_percent == canary_percent and model.stage == target:
            return Transition(route, changed=False)
        new = _copy(route, canary_model=vid, canary_percent=canary_percent)
        stages = {vid: ModelStage.CANDIDATE}
        if route.canary_model and route.canary_model != vid:
            stages[route.canary_model] = ModelStage.ARCHIVED  # one canary at a time: the newer one replaces it
        return Transition(new, stages)
    if target == ModelStage.PRODUCTION:
        if route.production_model == vid and model.stage == target:
            return Transition(route, changed=False)
        old = route.production_model
        previous = old if old and old != vid else route.previous_production_model
        new = _copy(route, production_model=vid, previous_production_model=previous)
        if route.canary_model == vid:
            new.canary_model, new.canary_percent = None, 0.0
        stages = {vid: ModelStage.PRODUCTION}
        if old and old != vid:
            stages[old] = ModelStage.ARCHIVED  # not serving, but kept as the rollback target
        return Transition(new, stages)
    raise InvalidTransition(f"promote goes to 'candidate' or 'production', not '{target.value}'; "
                            "use archive to retire a model.")


def rollback(route: Route, model: ModelVersion) -> Transition:
    """Put the previous production model back (the teacher when there was none) and retire `model`."""
    vid = model.version_id
    if route.production_model != vid:
        serving = route.production_model or "the teacher"
        raise InvalidTransition(f"{vid} is not in production for {route.domain} ({serving} is); "
                                "rollback applies to the production model.")
    previous = route.previous_production_model
    new = _copy(route, production_model=previous, previous_production_model=None)
    if previous and route.canary_model == previous:
        new.canary_model, new.canary_percent = None, 0.0
    stages = {vid: ModelStage.ARCHIVED}
    if previous:
        stages[previous] = ModelStage.PRODUCTION
    return Transition(new, stages)


def archive(route: Route, model: ModelVersion) -> Transition:
    """Retire `model`: it stops serving as the canary and stops being a rollback target."""
    vid = model.version_id
    if route.production_model == vid:
        raise InvalidTransition(f"{vid} serves {route.domain} in production; roll it back or promote another "
                                "model to production before archiving it.")
    changes: dict[str, object] = {}
    if route.canary_model == vid:
        changes.update(canary_model=None, canary_percent=0.0)
    if route.previous_production_model == vid:
        changes["previous_production_model"] = None
    if not changes and model.stage == ModelStage.ARCHIVED:
        return Transition(route, changed=False)
    return Transition(_copy(route, **changes) if changes else route, {vid: ModelStage.ARCHIVED})


def role(route: Route, version_id: str) -> str | None:
    """What the model does in its domain's route right now."""
    if route.production_model == version_id:
        return "production"
    if route.canary_model == version_id:
        return f"canary {route.canary_percent:g}%"
    if route.previous_production_model == version_id:
        return "rollback target"
    return None


def _copy(route: Route, **changes: object) -> Route:
    return route.model_copy(update={**changes, "updated_at": utcnow()})
