"""The Azure adapter, `ContainerAppsSessionsRunner`, against a contract fake of the dynamic sessions API over real
HTTP on 127.0.0.1. Only the credential is patched, at the SDK boundary (azure.identity.DefaultAzureCredential)."""

from __future__ import annotations

import asyncio
import time

import pytest
from azure.core.credentials import AccessToken

from forge.api.server import serving
from forge.domain_templates import load_domains
from forge.evaluation.benchmarks import load_benchmark
from forge.evaluation.runner import Answer, score_tasks
from forge.evaluation.sandbox import SandboxLimits, SandboxUnavailable, run_python_tests
from forge.evaluation.sessions import SCOPE, ContainerAppsSessionsRunner
from tests.fakes.aca_sessions import TOKEN, SessionPool


class PoolCredential:
    """Stands in for DefaultAzureCredential (the app's managed identity in Azure)."""

    scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes, **kwargs):
        PoolCredential.scopes.append(scopes)
        return AccessToken(TOKEN, int(time.time()) + 3600)


@pytest.fixture(scope="module")
def pool():
    fake = SessionPool()
    with serving(fake.app) as url:
        yield fake, url


@pytest.fixture
def runner(pool, monkeypatch):
    monkeypatch.setattr("azure.identity.DefaultAzureCredential", PoolCredential)
    fake, url = pool
    fake.fail_next.clear()
    sessions = ContainerAppsSessionsRunner(url)
    sessions.retry_after_s = 0
    return sessions


def test_a_correct_answer_passes_and_a_wrong_one_fails_each_in_a_new_session(pool, runner):
    fake, _ = pool
    before = len(fake.identifiers)
    assert run_python_tests("def add(a, b):\n    return a + b", "assert add(2, 3) == 5", runner=runner).passed
    wrong = run_python_tests("def add(a, b):\n    return a - b", "assert add(2, 3) == 5, 'add is wrong'", runner=runner)
    assert not wrong.passed and wrong.detail == "AssertionError: add is wrong"
    new = fake.identifiers[before:]
    assert len(new) == 2 and len(set(fake.identifiers)) == len(fake.identifiers)
    assert PoolCredential.scopes[-1] == (SCOPE,)


def test_the_demo_benchmark_scores_through_the_sessions(runner):
    tasks = load_benchmark("demo")[:3]
    scores = asyncio.run(score_tasks(tasks, [Answer(t.gold_answer) for t in tasks], load_domains()["demo"], runner))
    assert all("python_tests" not in " ".join(s.failed) for s in scores), [s.failed for s in scores]


def test_an_endless_loop_is_stopped_at_the_time_limit_in_the_session(runner):
    run = runner.run("while True:\n    pass", SandboxLimits(time_s=1))
    assert not run.passed and (run.detail == "stopped after 1s" or "killed by signal" in run.detail), run.detail


def test_endless_output_is_capped_in_the_session(runner):
    run = runner.run("while True:\n    print('x' * 1000)", SandboxLimits(output_kb=8))
    assert not run.passed and run.detail == "printed more than 8 KiB"
    assert len(run.output.encode()) <= 8 << 10


def test_a_busy_pool_is_tried_again(pool, runner):
    pool[0].fail_next += [429, 503]
    assert runner.run("assert 1 + 1 == 2", SandboxLimits()).passed


PASSES = "assert True"  # an answer that passes wherever it runs: what goes wrong below is the pool's, not the answer's


def test_a_refused_identity_is_an_error_naming_the_role_not_a_failed_answer(pool, runner):
    pool[0].fail_next.append(403)
    with pytest.raises(SandboxUnavailable, match="Azure ContainerApps Session Executor"):
        runner.run(PASSES, SandboxLimits())


def test_a_pool_that_keeps_failing_gives_no_verdict(pool, runner):
    pool[0].fail_next += [503, 503, 503]
    with pytest.raises(SandboxUnavailable, match="did not answer"):
        runner.run(PASSES, SandboxLimits())
