"""A domain's control loop as Durable Functions replays it: the canary step, then the drift check, then a durable
timer to the start of the next window, then continue-as-new with the same input — one window of history at most."""

from __future__ import annotations

import json
from datetime import datetime

from azure.durable_functions.models import DurableOrchestrationContext
from azure.durable_functions.orchestrator import Orchestrator

from forge.workflow.azure import df_canary_loop
from forge.workflow.canary_loop import ACTIVITY, DRIFT_ACTIVITY, instance_id
from tests.unit.test_orchestrator_replay import CALL_RETRY, CREATE_TIMER, History, last_actions

LOOP = {"tenant": "t", "domain": "coding"}
CONTINUE_AS_NEW = 4


class LoopHistory(History):
    def __init__(self) -> None:
        super().__init__(job=LOOP)
        self.events[1]["Name"] = "canary_loop"

    def replay(self) -> dict:
        body = {"instanceId": instance_id("t", "coding"), "parentInstanceId": None, "isReplaying": False,
                "input": json.dumps(LOOP), "history": self.events, "upperSchemaVersion": 0}
        context = DurableOrchestrationContext.from_json(json.dumps(body))
        return json.loads(Orchestrator(df_canary_loop).handle(context))


def decided() -> LoopHistory:
    history = LoopHistory()
    history.activity(ACTIVITY, {"action": "hold", "window": 1, "next_s": 300})
    history.activity(DRIFT_ACTIVITY, {"action": "ok", "window": 1, "next_s": 60})
    return history


def test_each_window_runs_the_canary_step_then_the_drift_check_with_retries():
    history = LoopHistory()
    assert last_actions(history.replay()) == [(CALL_RETRY, ACTIVITY)]
    history.activity(ACTIVITY, {"action": "hold", "window": 1, "next_s": 300})
    assert last_actions(history.replay()) == [(CALL_RETRY, DRIFT_ACTIVITY)]
    payload = json.loads(history.replay()["actions"][-1][0]["input"])
    assert payload["tenant"] == "t" and payload["domain"] == "coding" and payload["at"].startswith("2026-11-01T02:00")


def test_then_it_sleeps_to_the_start_of_the_next_window_of_the_shorter_interval():
    state = decided().replay()
    timer = state["actions"][-1][0]
    assert timer["actionType"] == CREATE_TIMER
    fire_at = datetime.fromisoformat(timer["fireAt"].replace("Z", "+00:00"))
    assert fire_at.second == 0 and fire_at.minute == 1  # 02:00:0x → the next minute, the drift check's 60 s
    assert state["customStatus"] == {"window": 1, "action": "hold", "drift": "ok"}


def test_when_the_timer_fires_it_continues_as_new_with_the_same_input():
    state = decided().timer(fired=True).replay()
    action = state["actions"][-1][0]
    assert action["actionType"] == CONTINUE_AS_NEW and json.loads(action["input"]) == LOOP


def test_a_drift_check_that_keeps_failing_leaves_the_canarys_loop_going():
    history = LoopHistory()
    history.activity(ACTIVITY, {"action": "hold", "window": 1, "next_s": 300})
    history.failed_attempts(DRIFT_ACTIVITY, "storage unreachable", attempts=3)
    state = history.replay()
    assert state["actions"][-1][0]["actionType"] == CREATE_TIMER
    assert state["customStatus"]["drift"] == "failed"
