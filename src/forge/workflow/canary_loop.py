"""One control loop per domain: an eternal orchestration (instance `canary-{tenant}-{domain}`) that runs the canary
step and the drift check for the current window, sleeps on a durable timer until the next, and continues as new — so
its history stays one window long however long it lives. Durable Functions runs it in Azure, durabletask's engine
under `forge worker`.

The loop holds no state of its own: the window comes from the orchestration's replay-safe clock and the decision is
claimed on the canary's stored state, so a replay, a retried activity or a loop started again after a restart never
takes a second decision for a window.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable, Generator

from pydantic import BaseModel, ConfigDict

from forge.bootstrap import Forge
from forge.domain.canary import window_of
from forge.services import canary, drift
from forge.workflow.flow import Flow, Retry

NAME = "canary_loop"
ACTIVITY = canary.ACTIVITY
DRIFT_ACTIVITY = drift.ACTIVITY
MIN_SLEEP_S = 0.01


class LoopInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str
    domain: str


def instance_id(tenant: str, domain: str) -> str:
    return f"canary-{tenant}-{domain}"


def loop(flow: Flow, raw: dict[str, Any]) -> Generator[Any, Any, dict[str, Any]]:
    """Decide this window, check its drift, wait for the next one, start over."""
    request = LoopInput.model_validate(raw)
    now = flow.now()
    payload = {**request.model_dump(), "at": now.isoformat()}
    result = yield flow.call(ACTIVITY, payload, retry=Retry(attempts=3))
    try:
        watched = yield flow.call(DRIFT_ACTIVITY, payload, retry=Retry(attempts=3))
    except Exception as exc:  # drift could not be checked this window: the canary's loop goes on regardless
        watched = {"action": "failed", "reason": str(exc)[:200]}
    flow.status({"window": result.get("window"), "action": result.get("action"), "drift": watched.get("action")})
    interval = max(min(float(result.get("next_s") or canary.IDLE_S), float(watched.get("next_s") or drift.IDLE_S)),
                   MIN_SLEEP_S)
    # Sleep to the start of the next window (not `interval` from now), so windows never drift or repeat.
    next_start = (window_of(now, interval) + 1) * interval
    yield flow.timer(now + timedelta(seconds=max(next_start - now.timestamp(), MIN_SLEEP_S)))
    flow.continue_as_new(request.model_dump())
    return result


class StepPayload(LoopInput):
    at: str


def activities(forge: Forge) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    """The loop's activities, bound to a wired Forge (beside the distill stages in both engines)."""
    from datetime import datetime

    def bound(name: str, run: Callable[[Forge, str, str, datetime], dict[str, Any]]) -> Callable[..., Any]:
        def step(payload: dict[str, Any]) -> dict[str, Any]:
            request = StepPayload.model_validate(payload)
            return run(forge, request.tenant, request.domain, datetime.fromisoformat(request.at))

        step.__name__ = name
        return step

    return {ACTIVITY: bound(ACTIVITY, canary.step), DRIFT_ACTIVITY: bound(DRIFT_ACTIVITY, drift.step)}


def loops_wanted(forge: Forge, tenants: list[str]) -> list[dict[str, str]]:
    """A loop for every domain that has a route (every domain the router has served or a model was promoted in)."""
    wanted = []
    for tenant in tenants:
        token = None
        while True:
            page = forge.storage.routes.list(tenant, limit=200, continuation=token)
            wanted += [LoopInput(tenant=tenant, domain=r.domain).model_dump() for r in page.items]
            token = page.continuation
            if not token:
                break
    return wanted
