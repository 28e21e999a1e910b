"""Which runner Forge wires, and what happens when none can isolate code: the evaluation stops before any model
is called, and the unjailed opt-in is refused as soon as a second tenant exists (on Azurite's API keys)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from forge.api.server import serving
from forge.bootstrap import bootstrap, code_runner
from forge.config import load_settings
from forge.evaluation.jail import BubblewrapRunner
from forge.evaluation.sandbox import SandboxLimits, SandboxUnavailable, run_python_tests
from forge.evaluation.sessions import ContainerAppsSessionsRunner
from forge.evaluation.unjailed import UnjailedRunner
from forge.services.evaluation import Limits, evaluate_model
from forge.services.candidates import EvaluateRequest, evaluate
from tests.factories import make_job, make_model_version, unique_name
from tests.fakes.eval_upstream import API_KEY, EvalUpstream


def no_bubblewrap(tmp_path: Path) -> BubblewrapRunner:
    return BubblewrapRunner(bwrap=str(tmp_path / "no-such-bwrap"))


def test_the_settings_choose_the_jail_by_default_the_sessions_with_a_pool_and_the_opt_in_when_asked():
    def tenants():
        return {"one"}

    assert isinstance(code_runner(load_settings(), tenants), BubblewrapRunner)
    pool = load_settings(sandbox_pool_endpoint="https://eastus.dynamicsessions.io/subscriptions/s/sessionPools/p")
    assert isinstance(code_runner(pool, tenants), ContainerAppsSessionsRunner)
    assert isinstance(code_runner(load_settings(sandbox_unjailed=True), tenants), UnjailedRunner)
    assert isinstance(code_runner(load_settings(sandbox_pool_endpoint=""), tenants), BubblewrapRunner)


def test_bootstrap_wires_the_runner_once_and_a_test_can_pass_its_own(settings, storage, tmp_path):
    forge = bootstrap(settings, storage=storage)
    assert isinstance(forge.code_runner, BubblewrapRunner)
    mine = no_bubblewrap(tmp_path)
    assert bootstrap(settings, storage=storage, runner=mine).code_runner is mine


def test_an_evaluation_without_a_jail_stops_before_any_model_is_called_and_the_job_says_why(settings, storage,
                                                                                             tenant, tmp_path):
    upstream = EvalUpstream()
    with serving(upstream.app) as url:
        wired = settings.model_copy(update={"teacher_base_url": f"{url}/v1", "teacher_api_key": SecretStr(API_KEY)})
        forge = bootstrap(wired, storage=storage, runner=no_bubblewrap(tmp_path))
        with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
            evaluate_model(forge, tenant=tenant, domain="coding", model="teacher", limits=Limits(judge=False))
        job = storage.jobs.create(make_job(tenant))
        model = storage.models.create(make_model_version(tenant, provider_model_id="ft:gold"))
        result = evaluate(forge, EvaluateRequest(tenant=tenant, domain="coding", job_id=job.job_id,
                                                 model_version_id=model.version_id, judge=False))
    assert result.error and "apt-get install bubblewrap" in result.error and result.metrics is None
    assert upstream.calls == []


def test_the_unjailed_opt_in_is_refused_once_a_second_tenant_exists(settings, storage, tmp_path):
    other = unique_name("t")
    storage.keys.create(other, "ci")
    forge = bootstrap(settings.model_copy(update={"sandbox_unjailed": True}), storage=storage)
    runner = forge.code_runner
    assert isinstance(runner, UnjailedRunner) and {settings.tenant, other} <= forge.tenants()
    runner.jail = no_bubblewrap(tmp_path)  # as on a laptop without bubblewrap
    marker = tmp_path / "ran-unjailed"
    with pytest.raises(SandboxUnavailable, match="FORGE_SANDBOX_UNJAILED is refused"):
        runner.run(f"open({str(marker)!r}, 'w')", SandboxLimits())
    assert not marker.exists()


def test_the_unjailed_opt_in_runs_code_with_a_warning_for_a_single_tenant(tmp_path, caplog):
    runner = UnjailedRunner(lambda: {"solo"}, jail=no_bubblewrap(tmp_path))
    with caplog.at_level(logging.WARNING, logger="forge.evaluation.unjailed"):
        assert run_python_tests("def add(a, b):\n    return a + b", "assert add(2, 3) == 5", runner=runner).passed
        assert not run_python_tests("x = 1", "assert x == 2", runner=runner).passed
    assert sum("rlimits only" in r.getMessage() for r in caplog.records) == 1  # said once, not per run


def test_the_unjailed_opt_in_still_uses_the_jail_where_bubblewrap_works(tmp_path):
    runner = UnjailedRunner(lambda: {"a", "b"})  # two tenants: fine, since nothing runs outside the jail
    marker = tmp_path / "escaped"
    run = runner.run(f"open({str(marker)!r}, 'w')", SandboxLimits())
    assert not run.passed and not marker.exists()
