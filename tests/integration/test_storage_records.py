import hashlib
import threading

import pytest

from forge.domain.errors import AlreadyExists, ConcurrentUpdate, DatasetNotFound, JobNotFound
from forge.domain.models import Dataset, JobEvent, JobStatus, ModelVersion
from forge.services.jobs import WRITE_ATTEMPTS, read_modify_write
from tests.factories import make_job


def test_a_job_is_created_read_and_updated_under_its_etag(storage, tenant):
    job = storage.jobs.create(make_job(tenant))
    read = storage.jobs.get(tenant, job.job_id)
    read.advance(JobStatus.CURATING)
    saved = storage.jobs.save(read)
    assert saved.etag != job.etag
    assert storage.jobs.get(tenant, job.job_id).status is JobStatus.CURATING


def test_a_lost_update_on_a_job_is_an_error_and_the_first_write_survives(storage, tenant):
    job = storage.jobs.create(make_job(tenant))
    alice, bob = storage.jobs.get(tenant, job.job_id), storage.jobs.get(tenant, job.job_id)
    alice.dataset_size = 10
    storage.jobs.save(alice)
    bob.dataset_size = 99
    with pytest.raises(ConcurrentUpdate, match="read it again"):
        storage.jobs.save(bob)
    assert storage.jobs.get(tenant, job.job_id).dataset_size == 10


def test_a_stage_update_reapplies_its_change_over_a_concurrent_write_and_keeps_both(storage, tenant):
    job = storage.jobs.create(make_job(tenant))
    interrupted = []

    def change(current):
        if not interrupted:  # another writer saves between this read and its write, once
            other = storage.jobs.get(tenant, job.job_id)
            other.dataset_size = 10
            interrupted.append(storage.jobs.save(other))
        current.dataset_id = "ds-1"

    read_modify_write(lambda: storage.jobs.get(tenant, job.job_id), change, storage.jobs.save, "Job")
    stored = storage.jobs.get(tenant, job.job_id)
    assert (stored.dataset_size, stored.dataset_id) == (10, "ds-1")


def test_a_record_that_never_stops_changing_is_an_error_that_says_to_retry(storage, tenant):
    job = storage.jobs.create(make_job(tenant))

    def change(current):
        other = storage.jobs.get(tenant, job.job_id)
        other.dataset_size = (other.dataset_size or 0) + 1
        storage.jobs.save(other)

    with pytest.raises(ConcurrentUpdate, match=f"kept changing under {WRITE_ATTEMPTS} attempts.*retry"):
        read_modify_write(lambda: storage.jobs.get(tenant, job.job_id), change, storage.jobs.save, "Job")
    assert storage.jobs.get(tenant, job.job_id).dataset_size == WRITE_ATTEMPTS  # every other write stands


def test_creating_a_job_twice_is_refused(storage, tenant):
    job = storage.jobs.create(make_job(tenant))
    with pytest.raises(AlreadyExists):
        storage.jobs.create(job.model_copy(update={"etag": None}))


def test_jobs_of_one_tenant_are_invisible_to_another(storage, tenant):
    job = storage.jobs.create(make_job(tenant))
    with pytest.raises(JobNotFound):
        storage.jobs.get(tenant + "-x", job.job_id)
    assert storage.jobs.list(tenant + "-x").items == []


def test_jobs_list_pages_in_creation_order(storage, tenant):
    ids = [storage.jobs.create(make_job(tenant)).job_id for _ in range(5)]
    first = storage.jobs.list(tenant, limit=3)
    rest = storage.jobs.list(tenant, limit=3, continuation=first.continuation)
    assert [j.job_id for j in first.items + rest.items] == ids and rest.continuation is None


def test_job_events_are_numbered_in_order_even_with_concurrent_writers(storage, tenant):
    job_id = storage.jobs.create(make_job(tenant)).job_id

    def write(who: str) -> None:
        for i in range(5):
            storage.events.append(job_id, JobEvent(job_id=job_id, type="log", message=f"{who}-{i}"))

    threads = [threading.Thread(target=write, args=(name,)) for name in "abc"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = storage.events.list(job_id).items
    assert [e.seq for e in events] == list(range(1, 16))
    assert sorted(e.message for e in events) == sorted(f"{w}-{i}" for w in "abc" for i in range(5))


def test_a_long_run_of_events_spans_transactions_and_can_be_read_after_a_sequence_number(storage, tenant):
    job_id = storage.jobs.create(make_job(tenant)).job_id
    stored = storage.events.append(job_id, *[JobEvent(job_id=job_id, type="loss", data={"step": i}) for i in range(250)])
    assert [e.seq for e in stored] == list(range(1, 251))
    later = storage.events.list(job_id, after=240, limit=100).items
    assert [e.data["step"] for e in later] == list(range(240, 250))


def test_dataset_files_stream_to_blob_and_back_with_a_matching_sha256(storage, tenant):
    dataset = storage.datasets.create(Dataset(tenant=tenant, domain="coding", counts={"train": 3000}))
    records = ({"messages": [{"role": "user", "content": f"q{i} ü"}]} for i in range(3000))
    info = storage.datasets.write_file(tenant, dataset.dataset_id, "train", records)
    assert info["lines"] == 3000 and info["path"] == f"datasets/{tenant}/{dataset.dataset_id}/train.jsonl"
    raw = storage.datasets.blobs.download_blob(f"{tenant}/{dataset.dataset_id}/train.jsonl").readall()
    assert hashlib.sha256(raw).hexdigest() == info["sha256"]
    back = list(storage.datasets.read_file(tenant, dataset.dataset_id, "train"))
    assert len(back) == 3000 and back[2999]["messages"][0]["content"] == "q2999 ü"
    with pytest.raises(DatasetNotFound):
        list(storage.datasets.read_file(tenant, dataset.dataset_id, "valid"))


def test_datasets_built_at_the_same_moment_never_share_a_version(storage, tenant):
    made, barrier = [], threading.Barrier(4)

    def build(n: int) -> None:
        barrier.wait()
        made.append(storage.datasets.create_next_version(Dataset(tenant=tenant, domain="coding", dataset_id=f"ds-{n}")))

    threads = [threading.Thread(target=build, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = sorted(storage.datasets.scan(tenant, domain="coding"), key=lambda d: d.version)
    assert [d.version for d in stored] == [1, 2, 3, 4] and len(made) == 4
    assert [d.parent_id for d in stored] == [None] + [d.dataset_id for d in stored[:-1]]  # one line of lineage
    assert len(storage.datasets.list(tenant).items) == 4  # the version claims are not datasets
    with pytest.raises(AlreadyExists):
        storage.datasets.create_next_version(Dataset(tenant=tenant, domain="coding", dataset_id="ds-0"))
    assert sorted(d.version for d in storage.datasets.scan(tenant)) == [1, 2, 3, 4]


def test_model_versions_list_by_domain(storage, tenant):
    for domain in ("coding", "coding", "legal"):
        storage.models.create(ModelVersion(tenant=tenant, domain=domain, base_model="gpt-4.1-mini"))
    assert len(storage.models.list(tenant, "coding").items) == 2
    assert len(storage.models.list(tenant).items) == 3


def test_a_route_starts_empty_and_two_concurrent_changes_cannot_both_win(storage, tenant):
    fresh = storage.routes.get(tenant, "coding")
    assert fresh.production_model is None and fresh.etag is None
    fresh.production_model = "m1"
    storage.routes.save(fresh)
    one, two = storage.routes.get(tenant, "coding"), storage.routes.get(tenant, "coding")
    one.canary_model, one.canary_percent = "m2", 10
    storage.routes.save(one)
    two.production_model = "m3"
    with pytest.raises(ConcurrentUpdate):
        storage.routes.save(two)
    final = storage.routes.get(tenant, "coding")
    assert (final.production_model, final.canary_model) == ("m1", "m2")
    stale_new = storage.routes.get(tenant, "legal")
    storage.routes.save(storage.routes.get(tenant, "legal"))
    with pytest.raises(ConcurrentUpdate):
        storage.routes.save(stale_new)
