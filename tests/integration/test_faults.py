"""Injected faults: storage restarted mid-import and mid-recording, a crash mid-import, a bad capture message,
the notification target down then up. Each test checks that nothing acknowledged is lost and nothing is done twice.
"""

from __future__ import annotations

import dataclasses
import io
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.responses import Response
from pydantic import SecretStr

from forge.api.app import create_app
from forge.api.server import serving
from forge.bootstrap import bootstrap
from forge.domain.capture import encode
from forge.domain.models import DistillationJob, JobStatus
from forge.domain.outbox import FIRST_RETRY_S
from forge.domain_templates import load_domains
from forge.services.capture import drain_once, handle
from forge.services.notifications import NotifyRequest, deliver_due, notify
from forge.services.traces import import_jsonl
from forge.storage import Storage, StorageAccount
from forge.storage.azurite import find_node_modules, start, stop_pid
from forge.storage.capture import CaptureQueue, Incoming, PoisonedTraces
from forge.storage.outbox import Outbox
from tests.factories import chat_line
from tests.fakes.chat_upstream import API_KEY, ChatUpstream

DOMAINS = load_domains()


class Restartable:
    """A private Azurite with its data on disk, that a test stops and starts again on the same ports."""

    def __init__(self, root: Path):
        self.root = root
        self.instance = start(find_node_modules(), data_dir=root / "data", log_path=root / "azurite.log",
                              detach=False)

    def restart(self, down_s: float) -> None:
        ports = (self.instance.blob_port, self.instance.queue_port, self.instance.table_port)
        stop_pid(self.instance.pid)
        time.sleep(down_s)
        self.instance = start(find_node_modules(), data_dir=self.root / "data", log_path=self.root / "azurite.log",
                              detach=False, ports=ports)

    def close(self) -> None:
        stop_pid(self.instance.pid)


@pytest.fixture
def restartable(tmp_path) -> Iterator[Restartable]:
    azurite = Restartable(tmp_path / "azurite")
    try:
        yield azurite
    finally:
        azurite.close()


def lines(n: int) -> bytes:
    return ("\n".join(chat_line(i, score=95) for i in range(n)) + "\n").encode()


class Interrupted(io.BytesIO):
    """A file whose reading fails after `after` lines: the import process crashing there."""

    def __init__(self, data: bytes, after: int):
        super().__init__(data)
        self.after, self.read_lines = after, 0

    def __iter__(self):
        while line := self.readline():
            self.read_lines += 1
            if self.read_lines > self.after:
                raise KeyboardInterrupt("the import process was stopped here")
            yield line


def test_the_same_file_imported_twice_is_stored_once_and_the_second_import_says_so(forge_cli, tmp_path, storage,
                                                                                   tenant):
    path = tmp_path / "traffic.jsonl"
    path.write_bytes(lines(40))
    code, out, _ = forge_cli("traces", "import", str(path), "--domain", "coding")
    assert code == 0 and "Imported 40 traces from 40 lines" in out
    code, out, _ = forge_cli("traces", "import", str(path), "--domain", "coding")
    assert code == 0 and "0 new, 40 already imported, from 40 lines" in out
    assert len(list(storage.traces.scan(tenant, domain="coding"))) == 40


def test_an_import_stopped_midway_resumes_after_its_last_checkpoint_without_duplicates(storage, tenant):
    data = lines(350)
    with pytest.raises(KeyboardInterrupt):
        import_jsonl(storage, Interrupted(data, after=260), tenant=tenant, domain="coding", known_domains=DOMAINS,
                     checkpoint_lines=100)
    partial = len(list(storage.traces.scan(tenant, domain="coding")))
    assert 200 <= partial <= 260  # two checkpoints committed; the third chunk may be partly written
    resumed = import_jsonl(storage, io.BytesIO(data), tenant=tenant, domain="coding", known_domains=DOMAINS,
                           resume=True, checkpoint_lines=100)
    assert (resumed.already, resumed.imported, resumed.resumed_after) == (200, 150, 200)
    again = import_jsonl(storage, io.BytesIO(data), tenant=tenant, domain="coding", known_domains=DOMAINS)
    assert (again.imported, again.already) == (0, 350)
    assert len(list(storage.traces.scan(tenant, domain="coding"))) == 350


def test_storage_restarted_mid_import_loses_no_line_and_duplicates_none(restartable, tenant):
    storage = Storage.open(StorageAccount.from_connection_string(restartable.instance.connection_string))
    data = lines(600)

    class RestartsStorage(io.BytesIO):
        def __iter__(self):
            number = 0
            while line := self.readline():
                number += 1
                if number == 250:
                    restartable.restart(down_s=1.0)  # storage gone for a second, mid-import, then back
                yield line

    summary = import_jsonl(storage, RestartsStorage(data), tenant=tenant, domain="coding", known_domains=DOMAINS,
                           checkpoint_lines=100)
    assert (summary.imported, summary.rejected_total) == (600, 0)
    assert len(list(storage.traces.scan(tenant, domain="coding"))) == 600


def test_calls_made_while_storage_restarts_are_answered_and_every_trace_arrives_once(restartable, settings, tenant):
    connection = restartable.instance.connection_string
    storage = Storage.open(StorageAccount.from_connection_string(connection))
    upstream = ChatUpstream()
    with serving(upstream.app) as upstream_url:
        forge = bootstrap(settings.model_copy(update={"teacher_base_url": f"{upstream_url}/v1",
                                                      "teacher_api_key": API_KEY}), storage=storage)
        key = storage.keys.create(tenant, "faults")[0]
        app = create_app(forge)
        with serving(app) as url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                                               timeout=30) as client:
            def call(i: int) -> str:
                response = client.post("/v1/chat/completions", json={
                    "model": "forge:coding", "messages": [{"role": "user", "content": f"q{i}"}]})
                assert response.status_code == 200
                return response.headers["x-forge-trace-id"]

            ids = [call(i) for i in range(5)]
            down = threading.Thread(target=restartable.restart, args=(2.0,))
            down.start()
            time.sleep(0.3)
            ids += [call(i) for i in range(5, 10)]  # the queue is gone: answered all the same, traces held
            down.join()
            ids += [call(i) for i in range(10, 15)]
            recorder = app.state.chat_router.recorder
            deadline = time.monotonic() + 30
            while recorder.stats.waiting and time.monotonic() < deadline:
                time.sleep(0.2)
            assert recorder.stats.waiting == 0 and recorder.stats.dropped == 0
        deadline = time.monotonic() + 30
        stored: list[str] = []
        while len(stored) < 15 and time.monotonic() < deadline:
            drain_once(forge)
            stored = [t.id for t in storage.traces.scan(tenant, domain="coding")]
        assert sorted(stored) == sorted(ids)  # every call once: none lost, none twice


def test_a_bad_capture_message_is_set_aside_with_its_reason_and_costs_no_other_trace(forge, tenant):
    good = [captured(tenant, f"q{i}") for i in range(3)]
    messages = [Incoming(f"ok-{tenant}-{i}", encode(call), 1) for i, call in enumerate(good)]
    messages.insert(1, Incoming(f"bad-{tenant}", encode({**good[0], "latency_ms": "slow"}), 1))
    messages.insert(2, Incoming(f"junk-{tenant}", b"not a message", 1))
    done = handle(forge, messages)
    assert sorted(m.id for m in done.written) == sorted(m.id for m in messages if m.id.startswith("ok"))
    assert {m.id for m in done.poisoned} == {f"bad-{tenant}", f"junk-{tenant}"}
    assert sorted(t.id for t in forge.storage.traces.scan(tenant)) == sorted(c["trace_id"] for c in good)
    reasons = {p["messageId"]: p["reason"] for p in PoisonedTraces(forge.storage.account).recent("-", 1000)}
    assert "latency_ms" in reasons[f"bad-{tenant}"] and "compressed JSON" in reasons[f"junk-{tenant}"]
    again = handle(forge, [messages[0]])  # redelivered: the same row, not a second trace
    assert len(again.written) == 1 and len(list(forge.storage.traces.scan(tenant))) == 3


def test_a_message_still_failing_after_five_deliveries_is_poisoned_not_retried_for_ever(forge, tenant, monkeypatch):
    from azure.core.exceptions import ServiceRequestError

    def unreachable(traces):
        list(traces)
        raise ServiceRequestError("connection refused")

    monkeypatch.setattr(forge.storage.traces, "add", unreachable)
    call = encode(captured(tenant, "q"))
    assert [m.id for m in handle(forge, [Incoming(f"m-{tenant}", call, 4)]).retry] == [f"m-{tenant}"]
    last = handle(forge, [Incoming(f"m-{tenant}", call, 5)])
    assert [m.id for m in last.poisoned] == [f"m-{tenant}"]


def captured(tenant: str, content: str) -> dict[str, Any]:
    from forge.domain.traces import new_trace_id

    created = datetime.now(timezone.utc)
    return {"trace_id": new_trace_id("coding", created), "tenant": tenant, "domain": "coding",
            "created_at": created.isoformat(), "model": "gpt-4.1",
            "request": {"messages": [{"role": "user", "content": content}]},
            "response": {"role": "assistant", "content": "ok"}, "usage": None, "latency_ms": 3.0}


class Receiver:
    """A notification target on 127.0.0.1 that is down (503) until told otherwise; records what it accepted."""

    def __init__(self):
        self.up, self.accepted, self.refused = False, [], 0
        self.app = FastAPI()

        @self.app.post("/hook")
        async def hook(request: Request) -> Response:
            if not self.up:
                self.refused += 1
                return Response(status_code=503)
            self.accepted.append((dict(request.headers), await request.json()))
            return Response(status_code=204)


def test_a_notification_target_down_then_up_gets_each_notification_once_with_a_stable_id(settings, storage, tenant):
    receiver = Receiver()
    with serving(receiver.app) as url:
        forge = bootstrap(settings.model_copy(update={"notify_url": f"{url}/hook",
                                                      "notify_eventgrid_endpoint": f"{url}/hook",
                                                      "notify_eventgrid_key": SecretStr("topic-key")}), storage=storage)
        job = storage.jobs.create(DistillationJob(tenant=tenant, domain="coding", status=JobStatus.PROMOTING))
        request = NotifyRequest(tenant=tenant, domain="coding", job_id=job.job_id, status=JobStatus.COMPLETED,
                                model_version_id="01JZZZZZZZZZZZZZZZZZZZZZZZ", promotion="canary")
        notify(forge, request)
        assert storage.jobs.get(tenant, job.job_id).status == JobStatus.COMPLETED  # the outcome never waits on it
        notes = Outbox(storage.account).for_job(tenant, job.job_id)
        assert {(n.channel, n.type, n.status) for n in notes} == {
            ("webhook", "forge.job.completed", "pending"), ("eventgrid", "forge.job.completed", "pending"),
            ("eventgrid", "forge.model.promoted", "pending")}
        notify(forge, request)  # the activity retried: no second notification
        soon = datetime.now(timezone.utc) + timedelta(seconds=FIRST_RETRY_S / 2)
        assert deliver_due(forge, soon) == 0  # backing off
        receiver.up = True
        later = datetime.now(timezone.utc) + timedelta(seconds=FIRST_RETRY_S * 4)
        delivered = deliver_due(forge, later)
        assert deliver_due(forge, later + timedelta(hours=1)) == 0  # sent ones are never sent again
    mine = [(h, body) for h, body in receiver.accepted if job.job_id in h.get("webhook-id", "") or
            (isinstance(body, list) and body[0]["subject"] == f"jobs/{job.job_id}")]
    assert delivered >= 3 and len(mine) == 3
    webhook = next(body for h, body in mine if "webhook-id" in h)
    assert webhook["status"] == "COMPLETED" and webhook["jobId"] == job.job_id
    events = sorted(body[0]["type"] for h, body in mine if isinstance(body, list))
    assert events == ["forge.job.completed", "forge.model.promoted"]
    assert all(h.get("aeg-sas-key") == "topic-key" for h, body in mine if isinstance(body, list))
    assert {n.status for n in Outbox(storage.account).for_job(tenant, job.job_id)} == {"sent"}
