from datetime import datetime, timedelta, timezone

import pytest

from forge.domain.errors import InvalidInput, TraceNotFound
from tests.factories import make_trace

DAY = datetime(2026, 10, 1, 9, 0, tzinfo=timezone.utc)


def test_a_stored_trace_reads_back_whole(storage, tenant):
    trace = make_trace(tenant, score=97.0, conversation_id="c1", metadata={"k": [1, 2]})
    assert storage.traces.add([trace]) == 1
    assert storage.traces.get(tenant, trace.id) == trace


def test_a_body_over_32_kib_goes_to_blob_and_reads_back_whole(storage, tenant):
    big = "é" * 40_000
    trace = make_trace(tenant, response={"role": "assistant", "content": big})
    storage.traces.add([trace])
    entity = storage.traces.table.client.get_entity(*__import__("forge.storage.traces", fromlist=["x"]).trace_keys(
        tenant, trace.id))
    assert "body_blob" in entity and "response__json" not in entity
    assert storage.traces.get(tenant, trace.id).response["content"] == big


def test_many_traces_across_days_and_domains_are_all_stored_and_paged_without_repeats(storage, tenant):
    traces = [make_trace(tenant, domain, created_at=DAY + timedelta(hours=7 * i))
              for i in range(130) for domain in ("coding", "legal")]
    assert storage.traces.add(traces) == 260
    seen, token, pages = [], None, 0
    while True:
        page = storage.traces.list(tenant, domain="coding", limit=50, continuation=token)
        seen += [t.id for t in page.items]
        pages += 1
        token = page.continuation
        if not token:
            break
    assert pages >= 3
    assert len(seen) == len(set(seen)) == 130
    assert all(i.startswith("coding.") for i in seen)
    assert seen == sorted(seen, key=lambda i: storage.traces.get(tenant, i).created_at)


def test_listing_by_time_window_keeps_only_that_window(storage, tenant):
    storage.traces.add([make_trace(tenant, created_at=DAY + timedelta(days=d)) for d in range(5)])
    page = storage.traces.list(tenant, since=DAY + timedelta(days=1), until=DAY + timedelta(days=3))
    assert [t.created_at for t in page.items] == [DAY + timedelta(days=1), DAY + timedelta(days=2)]


def test_feedback_and_score_change_only_those_fields(storage, tenant):
    trace = make_trace(tenant, metadata={"keep": True})
    storage.traces.add([trace])
    storage.traces.set_feedback(tenant, trace.id, "rejected")
    updated = storage.traces.set_score(tenant, trace.id, 42)
    assert (updated.feedback, updated.score, updated.metadata) == ("rejected", 42.0, {"keep": True})
    assert list(storage.traces.verdicts(tenant)) == [(42.0, "rejected")]


def test_another_tenants_trace_is_not_found(storage, tenant):
    trace = make_trace(tenant)
    storage.traces.add([trace])
    with pytest.raises(TraceNotFound):
        storage.traces.get(tenant + "-other", trace.id)
    with pytest.raises(TraceNotFound):
        storage.traces.set_feedback(tenant + "-other", trace.id, "approved")
    with pytest.raises(TraceNotFound):
        storage.traces.get(tenant, "garbage")


def test_a_forged_continuation_token_is_refused(storage, tenant):
    with pytest.raises(InvalidInput):
        storage.traces.list(tenant, continuation="bm90IGEgdG9rZW4")


def test_connections_reset_mid_import_lose_and_repeat_nothing(azurite, tenant):
    from forge.storage import Storage, StorageAccount
    from tests.fakes.flaky_proxy import FlakyProxy

    # The first two transactions are applied by the server, but the client only sees its connection reset.
    proxy = FlakyProxy(azurite.table_port, marker=b"$batch", drops=2)
    try:
        connection = azurite.connection_string.replace(f":{azurite.table_port}/", f":{proxy.port}/")
        storage = Storage.open(StorageAccount.from_connection_string(connection))
        traces = [make_trace(tenant, created_at=DAY + timedelta(seconds=i)) for i in range(250)]
        assert storage.traces.add(traces) == 250
        assert proxy.dropped == 2
        stored = [t.id for t in storage.traces.scan(tenant)]
        assert sorted(stored) == sorted(t.id for t in traces)  # each once: a retried batch rewrote the same rows
    finally:
        proxy.close()


def test_one_days_traces_spread_over_the_shards_and_read_back_in_time_order(storage, tenant):
    from forge.storage.traces import trace_keys

    traces = [make_trace(tenant, created_at=DAY + timedelta(seconds=37 * i)) for i in range(200)]
    storage.traces.add(traces)
    partitions = {trace_keys(tenant, t.id)[0] for t in traces}
    assert len(partitions) == 16 and all(p.startswith(f"{tenant}|coding|s") for p in partitions)
    read = [t.id for t in storage.traces.scan(tenant, domain="coding")]
    assert read == [t.id for t in sorted(traces, key=lambda t: t.created_at)]
    window = list(storage.traces.scan(tenant, domain="coding", since=DAY + timedelta(seconds=37 * 50),
                                      until=DAY + timedelta(seconds=37 * 60)))
    assert [t.id for t in window] == [t.id for t in traces[50:60]]


def test_a_tenant_wide_listing_pages_through_every_domain_without_repeats(storage, tenant):
    traces = [make_trace(tenant, domain, created_at=DAY + timedelta(minutes=i))
              for i in range(25) for domain in ("coding", "finance", "legal")]
    storage.traces.add(traces)
    seen, token = [], None
    while True:
        page = storage.traces.list(tenant, limit=25, continuation=token)  # a page ends exactly at each domain
        seen += [t.id for t in page.items]
        token = page.continuation
        if not token:
            break
    assert len(seen) == len(set(seen)) == 75
    assert [i.split(".")[0] for i in seen] == ["coding"] * 25 + ["finance"] * 25 + ["legal"] * 25


def test_any_well_formed_continuation_token_is_a_place_to_resume_from(storage, tenant):
    from forge.storage.tables import encode_cursor

    traces = [make_trace(tenant, domain, created_at=DAY + timedelta(minutes=i)) for i in range(3)
              for domain in ("coding", "legal")]
    storage.traces.add(traces)
    resumed = storage.traces.list(tenant, continuation=encode_cursor("finance", ""))  # between the two domains
    assert [t.domain for t in resumed.items] == ["legal"] * 3
    assert storage.traces.list(tenant, continuation=encode_cursor("zzz", "")).items == []


def test_traces_stored_before_sharding_are_read_and_migrated_once_even_after_a_crash(storage, tenant, forge_cli):
    from forge.storage.tables import to_entity
    from forge.storage.traces import legacy_keys, trace_keys

    old = [make_trace(tenant, score=95.0, created_at=DAY + timedelta(minutes=i)) for i in range(30)]
    client = storage.traces.table.client
    for trace in old:
        client.upsert_entity(to_entity(trace, *legacy_keys(tenant, trace.id)))
    half_moved = old[0]  # a migration that crashed after writing the new row, before deleting the old one
    client.upsert_entity(to_entity(half_moved, *trace_keys(tenant, half_moved.id)))
    assert [t.id for t in storage.traces.scan(tenant, domain="coding")] == [t.id for t in old]  # nothing lost
    assert storage.traces.get(tenant, old[5].id).score == 95.0
    storage.traces.set_feedback(tenant, old[6].id, "rejected")  # unmigrated rows take feedback where they are

    code, out, _ = forge_cli("storage", "migrate", "--tenant", tenant)
    assert code == 0 and "30 traces moved" in out
    legacy = list(client.query_entities(f"PartitionKey eq '{tenant}|coding|{DAY:%Y%m%d}'"))
    assert legacy == []
    assert [t.id for t in storage.traces.scan(tenant, domain="coding")] == [t.id for t in old]
    assert storage.traces.get(tenant, old[6].id).feedback == "rejected"
    code, out, _ = forge_cli("storage", "migrate", "--tenant", tenant)
    assert code == 0 and "0 traces moved" in out and "nothing left to move" in out
