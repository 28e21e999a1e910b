"""The registry's transitions: promote, rollback, archive, as pure functions of a route and a model."""

import pytest

from forge.domain.models import ModelStage, ModelVersion, Route
from forge.domain.registry import InvalidTransition, archive, next_stage, promote, role, rollback


def model(vid: str, stage: ModelStage = ModelStage.STAGING) -> ModelVersion:
    return ModelVersion(version_id=vid, tenant="t", domain="coding", base_model="b", stage=stage)


def test_promote_goes_staging_to_candidate_to_production():
    assert next_stage(ModelStage.STAGING) == ModelStage.CANDIDATE == next_stage(ModelStage.ARCHIVED)
    assert next_stage(ModelStage.CANDIDATE) == ModelStage.PRODUCTION


def test_a_candidate_becomes_the_canary_and_replaces_an_older_canary():
    start = Route(tenant="t", domain="coding", production_model="P", canary_model="OLD", canary_percent=5)
    moved = promote(start, model("NEW"), None, 15)
    assert (moved.route.canary_model, moved.route.canary_percent, moved.route.production_model) == ("NEW", 15, "P")
    assert moved.stages == {"NEW": ModelStage.CANDIDATE, "OLD": ModelStage.ARCHIVED}


def test_promoting_to_production_keeps_the_old_production_model_as_the_rollback_target():
    start = Route(tenant="t", domain="coding", production_model="P", canary_model="C", canary_percent=10)
    moved = promote(start, model("C", ModelStage.CANDIDATE), None, 10)
    assert (moved.route.production_model, moved.route.previous_production_model) == ("C", "P")
    assert (moved.route.canary_model, moved.route.canary_percent) == (None, 0)
    assert moved.stages == {"C": ModelStage.PRODUCTION, "P": ModelStage.ARCHIVED}
    assert role(moved.route, "P") == "rollback target" and role(moved.route, "C") == "production"


def test_promoting_again_changes_nothing():
    route = Route(tenant="t", domain="coding", production_model="P")
    assert not promote(route, model("P", ModelStage.PRODUCTION), None, 10).changed
    canary = Route(tenant="t", domain="coding", canary_model="C", canary_percent=10)
    assert not promote(canary, model("C", ModelStage.CANDIDATE), ModelStage.CANDIDATE, 10).changed


def test_rollback_restores_the_previous_production_model_or_hands_the_domain_back_to_the_teacher():
    route = Route(tenant="t", domain="coding", production_model="NEW", previous_production_model="OLD")
    back = rollback(route, model("NEW", ModelStage.PRODUCTION))
    assert (back.route.production_model, back.route.previous_production_model) == ("OLD", None)
    assert back.stages == {"NEW": ModelStage.ARCHIVED, "OLD": ModelStage.PRODUCTION}
    first = rollback(Route(tenant="t", domain="coding", production_model="ONLY"), model("ONLY", ModelStage.PRODUCTION))
    assert first.route.production_model is None and first.stages == {"ONLY": ModelStage.ARCHIVED}


def test_wrong_stages_are_refused_with_what_to_do_instead():
    route = Route(tenant="t", domain="coding", production_model="P")
    with pytest.raises(InvalidTransition, match="rollback applies to the production model"):
        rollback(route, model("X"))
    with pytest.raises(InvalidTransition, match="roll it back or promote another"):
        archive(route, model("P", ModelStage.PRODUCTION))
    with pytest.raises(InvalidTransition, match="roll it back instead of demoting"):
        promote(route, model("P", ModelStage.PRODUCTION), ModelStage.CANDIDATE, 10)
    with pytest.raises(InvalidTransition, match="use archive"):
        promote(route, model("X"), ModelStage.ARCHIVED, 10)
    with pytest.raises(InvalidTransition, match="canary percent"):
        promote(route, model("X"), ModelStage.CANDIDATE, 0)


def test_archiving_the_canary_or_the_rollback_target_takes_it_out_of_the_route():
    route = Route(tenant="t", domain="coding", production_model="P", previous_production_model="R",
                  canary_model="C", canary_percent=10)
    assert archive(route, model("C", ModelStage.CANDIDATE)).route.canary_model is None
    assert archive(route, model("R", ModelStage.ARCHIVED)).route.previous_production_model is None
    assert not archive(Route(tenant="t", domain="coding"), model("Z", ModelStage.ARCHIVED)).changed
