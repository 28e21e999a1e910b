import re

import pytest

from forge.domain.errors import InvalidInput
from forge.domain.models import DistillationJob, JobStatus
from forge.storage.tables import CURSOR_PATTERN, decode_cursor, encode_cursor, from_entity, to_entity


def test_a_record_survives_the_trip_through_a_table_entity():
    job = DistillationJob(tenant="acme", domain="coding", eval_metrics={"score": 91.5, "gates": ["min_score"]})
    job.advance(JobStatus.CURATING)
    entity = to_entity(job, "acme", job.job_id)
    assert entity["PartitionKey"] == "acme" and isinstance(entity["eval_metrics__json"], str)
    assert "error" not in entity  # None values are not stored
    assert from_entity(DistillationJob, entity) == job


def test_a_continuation_token_names_where_the_page_ended_and_any_well_formed_one_is_a_position():
    token = encode_cursor("a|b", "c")
    assert decode_cursor(token) == ("a|b", "c") and re.fullmatch(CURSOR_PATTERN, token)
    assert decode_cursor(None) is None
    assert decode_cursor("00ff") == ("\ufffd", "")  # a well-formed token is always some position, never a 4xx
    for forged in ("%%%not-hex", "abc", "ZZ", "eyJhIjo1fQ"):
        with pytest.raises(InvalidInput, match="start over"):
            decode_cursor(forged)


