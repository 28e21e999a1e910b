"""The router's capture put against Azurite: the lean REST put with an account key or a SAS, a queue that vanished,
and a memory buffer that is full while the queue is unreachable."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from azure.storage.queue import AccountSasPermissions, QueueServiceClient, ResourceTypes, generate_account_sas

from forge.api.server import free_port
from forge.domain.capture import decode
from forge.domain.traces import new_trace_id
from forge.serving.recorder import CallRecord, TraceRecorder
from forge.storage import Storage, StorageAccount
from forge.storage.azurite import ACCOUNT, ACCOUNT_KEY, find_node_modules, start, stop_pid
from forge.storage.capture import QUEUE, CaptureQueue


def call_record(tenant: str, i: int) -> CallRecord:
    now = datetime.now(timezone.utc)
    return CallRecord(trace_id=new_trace_id("coding", now), tenant=tenant, domain="coding", created_at=now, model="m",
                      request={"messages": [{"role": "user", "content": f"q{i}"}]},
                      response={"role": "assistant", "content": "a"}, usage=None, latency_ms=1.5)


def record_all(recorder: TraceRecorder, calls: list[CallRecord], together: bool = False) -> None:
    async def scenario() -> None:
        try:
            if together:  # concurrent calls, as a busy router records them
                await asyncio.gather(*(recorder.record(call) for call in calls))
            else:
                for call in calls:
                    await recorder.record(call)
        finally:
            await recorder.aclose(timeout_s=1)

    asyncio.run(scenario())


def queued_ids(account: StorageAccount) -> set[str]:
    queue = CaptureQueue(account)
    found = set()
    while messages := queue.receive(32, 30):
        for message in messages:
            found.add(decode(message.payload)["trace_id"])
            queue.delete(message)
    return found


@pytest.fixture
def private_azurite(tmp_path):
    """An Azurite of this test's own (in memory), so deleting its queue disturbs no other test."""
    instance = start(find_node_modules(), data_dir=None, log_path=tmp_path / "azurite.log", detach=False)
    try:
        yield instance
    finally:
        stop_pid(instance.pid)


def test_calls_recorded_with_an_account_key_take_the_lean_put_and_reach_the_queue_once_each(private_azurite,
                                                                                            settings, tenant):
    storage = Storage.open(StorageAccount.from_connection_string(private_azurite.connection_string))
    recorder = TraceRecorder(storage, settings)
    calls = [call_record(tenant, i) for i in range(5)]
    record_all(recorder, calls)
    assert recorder._put is not None and recorder.stats.captured == 5 and len(recorder.stats.window_ms) == 5
    assert queued_ids(storage.account) == {c.trace_id for c in calls}


def test_a_capture_queue_deleted_under_the_router_is_created_again_and_the_call_still_arrives(private_azurite,
                                                                                            settings, tenant):
    storage = Storage.open(StorageAccount.from_connection_string(private_azurite.connection_string))
    recorder = TraceRecorder(storage, settings)
    first, second = call_record(tenant, 1), call_record(tenant, 2)
    record_all(recorder, [first])
    storage.account.queues.delete_queue(QUEUE)  # e.g. an emulator restarted without its data
    recorder = TraceRecorder(storage, settings)  # a recorder that believes the queue exists
    record_all(recorder, [second])
    assert (recorder.stats.captured, recorder.stats.deferred) == (1, 0)
    assert queued_ids(storage.account) == {second.trace_id}


def test_a_sas_connection_string_reaches_the_queue_through_the_lean_put(private_azurite, settings, tenant):
    sas = generate_account_sas(ACCOUNT, ACCOUNT_KEY, ResourceTypes(service=True, container=True, object=True),
                               AccountSasPermissions(read=True, write=True, add=True, create=True, process=True,
                                                     list=True, delete=True),
                               expiry=datetime.now(timezone.utc) + timedelta(hours=1))
    keyed = StorageAccount.from_connection_string(private_azurite.connection_string)
    queue_url = f"http://127.0.0.1:{private_azurite.queue_port}/{ACCOUNT}"
    with_sas = dataclasses.replace(keyed, queues=QueueServiceClient.from_connection_string(
        f"QueueEndpoint={queue_url};SharedAccessSignature={sas}"))
    storage = dataclasses.replace(Storage.open(keyed), account=with_sas)
    recorder = TraceRecorder(storage, settings)
    call = call_record(tenant, 1)
    record_all(recorder, [call])
    assert recorder._put is not None and recorder.stats.captured == 1
    assert queued_ids(keyed) == {call.trace_id}


def test_while_the_queue_is_unreachable_calls_are_held_up_to_the_buffer_and_the_rest_dropped_and_counted(
        storage, settings, tenant):
    dead = QueueServiceClient(f"http://127.0.0.1:{free_port()}/{ACCOUNT}", credential=storage.account.queues.credential)
    broken = dataclasses.replace(storage, account=dataclasses.replace(storage.account, queues=dead))
    recorder = TraceRecorder(broken, settings.model_copy(update={"router_trace_queue": 3}))
    record_all(recorder, [call_record(tenant, i) for i in range(10)], together=True)  # none raises: a call never fails for it
    stats = recorder.stats
    assert (stats.captured, stats.deferred, stats.dropped, stats.waiting) == (0, 3, 7, 3)
