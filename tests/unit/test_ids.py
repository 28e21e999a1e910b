"""The id formats accept every id Forge mints and refuse anything that could step outside a blob folder."""

from datetime import datetime, timezone

import pytest

from forge.domain import ids
from forge.domain.errors import InvalidInput
from forge.domain.models import new_id
from forge.domain.traces import derived_trace_id, new_trace_id
from forge.services.runs import nightly_id
from forge.services.curation import dataset_id_for
from forge.storage.apikeys import hash_key
from forge.storage.datasets import folder

MOMENT = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)
NIGHTLY = nightly_id("acme-corp", "coding", MOMENT)


def test_every_id_forge_mints_matches_its_format():
    assert ids.JOB.valid(new_id()) and ids.JOB.valid(NIGHTLY)
    assert ids.DATASET.valid(new_id()) and ids.DATASET.valid(dataset_id_for(new_id()))
    assert ids.DATASET.valid(dataset_id_for(NIGHTLY))
    assert ids.MODEL.valid(new_id())
    assert ids.TRACE.valid(new_trace_id("coding", MOMENT))
    assert ids.TRACE.valid(derived_trace_id("coding", MOMENT, "acme", "at", "ab" * 32 + ":17"))
    assert ids.TRACE.valid(derived_trace_id("coding", MOMENT, "acme", "id", "../../alice/x"))  # no path survives
    assert ids.KEY.valid(hash_key("fk.acme.secret")[:12]) and ids.KEY.valid(hash_key("fk.acme.secret"))
    assert ids.DOMAIN.valid("coding") and ids.TENANT.valid("acme-corp")


@pytest.mark.parametrize("fmt", [ids.JOB, ids.DATASET, ids.MODEL, ids.TRACE, ids.DOMAIN, ids.TENANT, ids.KEY])
@pytest.mark.parametrize("bad", ["", "../../alice/x", "..", "a/b", "a\\b", "coding.", "x" * 300, "%2e%2e",
                                 new_id() + "\n", f" {new_id()}", new_id().lower() + "/"])
def test_path_characters_and_near_misses_are_refused(fmt, bad):
    assert not fmt.valid(bad)


def test_near_misses_of_each_kind_are_refused():
    assert not ids.JOB.valid(dataset_id_for(new_id()))  # a dataset id is not a job id
    assert not ids.MODEL.valid(NIGHTLY) and not ids.MODEL.valid(new_id().lower())
    assert not ids.TRACE.valid(new_id()) and not ids.TRACE.valid(f"Coding.{new_id()}")
    assert not ids.KEY.valid("abc") and not ids.KEY.valid("ABCDEF0123")


def test_a_dataset_folder_is_never_built_from_an_id_of_the_wrong_format():
    dataset = new_id()
    assert folder("acme", dataset) == f"acme/{dataset}"
    with pytest.raises(InvalidInput, match="not a dataset id"):
        folder("acme", "ds-../../alice/x")
    with pytest.raises(InvalidInput, match="not a tenant name"):
        folder("../alice", dataset)
