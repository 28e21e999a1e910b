import pytest

from forge.domain.errors import InvalidInput
from forge.domain.models import DistillationJob, JobStatus
from forge.storage.tables import decode_token, encode_token, from_entity, to_entity


def test_a_record_survives_the_trip_through_a_table_entity():
    job = DistillationJob(tenant="acme", domain="coding", eval_metrics={"score": 91.5, "gates": ["min_score"]})
    job.advance(JobStatus.CURATING)
    entity = to_entity(job, "acme", job.job_id)
    assert entity["PartitionKey"] == "acme" and isinstance(entity["eval_metrics__json"], str)
    assert "error" not in entity  # None values are not stored
    assert from_entity(DistillationJob, entity) == job


def test_continuation_tokens_are_opaque_and_a_forged_one_is_refused():
    token = {"PartitionKey": "a|b", "RowKey": "c"}
    assert decode_token(encode_token(token)) == token
    assert encode_token(None) is None and decode_token(None) is None
    with pytest.raises(InvalidInput, match="start over"):
        decode_token("%%%not-base64")
    with pytest.raises(InvalidInput):
        decode_token(encode_token([1, 2]))
