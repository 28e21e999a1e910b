"""Curation's fan-out as Durable Functions replays it: shard activities scheduled a bounded number at a time, the
fan-in waited for (racing cancel), and `curate` called again with every part in shard order."""

from __future__ import annotations

import json

from tests.unit.test_orchestrator_replay import (CALL_RETRY, ORCHESTRATOR_STARTED, TASK_COMPLETED, TASK_SCHEDULED,
                                                 WAIT_EVENT, History, last_actions)

PLAN = {"fan_out": {"shards": [0, 1, 2], "cutoff": None, "parallel": 2}}


def gathered_and_planned() -> History:
    return (History().activity("gather", {"skip": False, "cutoff": "2026-11-01T00:00:00Z"})
            .activity("curate", PLAN))


def shards(history: History, results: list[tuple[str, object]]) -> History:
    """Shard activities scheduled together, then completed one by one."""
    first = history.next_id
    for _ in results:
        history.add(TASK_SCHEDULED, history.next_id, Name="curate_shard", Version="")
        history.next_id += 1
    for offset, (_, value) in enumerate(results):
        history.add(ORCHESTRATOR_STARTED)
        history.add(TASK_COMPLETED, TaskScheduledId=first + offset, Result=json.dumps(value))
    return history


def test_a_fanned_out_curate_schedules_at_most_parallel_shard_activities_and_races_cancel():
    state = gathered_and_planned().replay()
    actions = last_actions(state)
    assert actions.count((CALL_RETRY, "curate_shard")) == 2 and (WAIT_EVENT, None) in actions
    assert state["customStatus"]["activity"] == "curate_shard"


def test_the_next_wave_starts_only_when_the_first_has_all_finished():
    history = shards(gathered_and_planned(), [("ok", {"part": "t/j/00.frames"})])
    assert (CALL_RETRY, "curate_shard") not in last_actions(history.replay())[2:]
    state = shards(gathered_and_planned(), [("ok", {"part": "t/j/00.frames"}), ("ok", {"part": "t/j/01.frames"})]).replay()
    assert last_actions(state).count((CALL_RETRY, "curate_shard")) == 1  # shard 2, alone in the second wave


def test_when_every_shard_is_mapped_curate_runs_again_with_the_parts_in_shard_order():
    history = shards(gathered_and_planned(), [("ok", {"part": "p0"}), ("ok", {"part": "p1"})])
    history = shards(history, [("ok", {"part": "p2"})])
    state = history.replay()
    assert (CALL_RETRY, "curate") in last_actions(state)
    scheduled = [a for a in state["actions"][-1] if a.get("functionName") == "curate"]
    assert json.loads(scheduled[0]["input"])["parts"] == ["p0", "p1", "p2"]
    state = history.activity("curate", {"dataset_id": "ds1"}).replay()
    assert (CALL_RETRY, "upload") in last_actions(state)

