"""The datasets API over real HTTP: upload (JSONL, CSV, JSON array), import from traces, show, validate, delete."""

import csv
import io


from forge.domain.models import new_id
from tests.factories import varied_lines, varied_record


def test_an_uploaded_jsonl_file_becomes_a_dataset_that_can_be_shown_validated_and_deleted(api, auth):
    body = "\n".join(varied_lines(14, score=None)) + "\n{broken\n"  # uploads need no score
    created = api.post("/api/v1/datasets", params={"domain": "coding", "valid_share": 0.2}, content=body,
                       headers={**auth, "content-type": "application/x-ndjson"})
    assert created.status_code == 201, created.text
    result = created.json()
    assert result["train"] + result["valid"] == 14 and result["dropped"] == {"invalid_json": 1}
    shown = api.get(f"/api/v1/datasets/{result['datasetId']}", headers=auth).json()
    assert shown["source"] == "upload:jsonl" and shown["stats"]["counts"]["kept"] == 14
    assert len(shown["preview"]) == 3 and shown["preview"][0]["messages"][0]["role"] == "system"
    dataset_id = shown["datasetId"]
    checked = api.post(f"/api/v1/datasets/{dataset_id}/validate", headers=auth).json()
    assert checked["valid"] is True and checked["files"]["train"]["examples"] == result["train"]
    assert [d["datasetId"] for d in api.get("/api/v1/datasets", headers=auth).json()["items"]] == [dataset_id]
    assert api.delete(f"/api/v1/datasets/{dataset_id}", headers=auth).json()["deletedAt"]
    assert api.get("/api/v1/datasets", headers=auth).json()["items"] == []
    assert api.get(f"/api/v1/datasets/{dataset_id}", headers=auth).status_code == 404
    everything = api.get("/api/v1/datasets", params={"include_deleted": True}, headers=auth).json()["items"]
    assert [d["datasetId"] for d in everything] == [dataset_id]


def test_csv_and_json_array_uploads_are_read_by_their_columns_and_records(api, auth):
    rows = [varied_record(i)["messages"] for i in range(12)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["prompt", "response"])
    writer.writeheader()
    writer.writerows({"prompt": m[0]["content"], "response": m[1]["content"]} for m in rows)
    from_csv = api.post("/api/v1/datasets", params={"format": "csv", "valid_share": 0}, content=buffer.getvalue(),
                        headers=auth)
    assert from_csv.status_code == 201 and from_csv.json()["train"] == 12
    array = [varied_record(i + 100) for i in range(11)] + [{"prompt": "only a prompt"}]
    from_json = api.post("/api/v1/datasets", params={"valid_share": 0}, json=array, headers=auth)
    assert from_json.status_code == 201 and from_json.json()["train"] == 11
    assert from_json.json()["dropped"] == {"no_assistant_response": 1}
    assert from_json.json()["version"] == 2 and from_json.json()["parentId"] == from_csv.json()["datasetId"]


def test_too_small_or_unlabelled_uploads_are_422_problems_that_say_what_to_do(api, auth):
    small = api.post("/api/v1/datasets", params={"format": "jsonl"}, content="\n".join(varied_lines(3)),
                     headers=auth)
    assert small.status_code == 422 and "7 more are needed" in small.json()["detail"]
    assert small.headers["content-type"] == "application/problem+json"
    unlabelled = api.post("/api/v1/datasets", content="x", headers={**auth, "content-type": "text/plain"})
    assert unlabelled.status_code == 422 and "format=jsonl" in unlabelled.json()["detail"]


def test_import_from_traces_runs_the_curate_stage_once_per_job(api, auth):
    ingest = api.post("/api/v1/traces", json={"traces": [varied_record(i) for i in range(12)]}, headers=auth)
    assert ingest.status_code == 201
    body = {"domain": "coding", "validShare": 0, "jobId": new_id()}
    first = api.post("/api/v1/datasets/import-from-traces", json=body, headers=auth)
    assert first.status_code == 201 and first.json()["train"] == 12
    again = api.post("/api/v1/datasets/import-from-traces", json=body, headers=auth).json()
    assert again["reused"] and again["datasetId"] == first.json()["datasetId"]


def test_another_tenants_dataset_is_a_404(api, auth, forge, tenant):
    other = {"X-API-Key": forge.storage.keys.create(tenant + "-b", "other")[0]}
    created = api.post("/api/v1/datasets", params={"format": "jsonl"}, content="\n".join(varied_lines(12)),
                       headers=auth).json()
    for method, path in [("GET", ""), ("POST", "/validate"), ("DELETE", "")]:
        response = api.request(method, f"/api/v1/datasets/{created['datasetId']}{path}", headers=other)
        assert response.status_code == 404, path
