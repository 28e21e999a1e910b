"""The `forge` command line, run in-process against the session's Azurite."""

import json

import pytest

from forge.cli import common
from tests.factories import chat_line


@pytest.fixture
def cli(forge_cli):
    return forge_cli  # tests/conftest.py: `forge …` in-process against the session's Azurite


def test_import_reports_each_bad_line_and_a_summary_by_reason(cli, tmp_path):
    path = tmp_path / "traces.jsonl"
    lines = [chat_line(i, score=95) for i in range(40)]
    lines[4], lines[30] = "{oops", '{"prompt": "only a prompt"}'
    path.write_text("\n".join(lines) + "\n")
    rejects = tmp_path / "rejects.jsonl"
    code, out, err = cli("traces", "import", str(path), "--rejects", str(rejects))
    assert code == 0
    assert "Imported 38 traces from 40 lines; rejected 2." in out
    assert "line 5: invalid_json" in err and "line 31: no_assistant_response" in err
    assert [json.loads(x)["line"] for x in rejects.read_text().splitlines()] == [5, 31]
    code, out, _ = cli("traces", "list", "--limit", "100", "--json")
    assert code == 0 and len(out.strip().splitlines()) == 38


def test_feedback_and_score_from_the_command_line(cli, tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text(chat_line() + "\n")
    cli("traces", "import", str(path))
    trace_id = json.loads(cli("traces", "list", "--json")[1].splitlines()[0])["id"]
    assert cli("traces", "feedback", trace_id, "approved")[0] == 0
    assert cli("traces", "score", trace_id, "77")[0] == 0
    shown = json.loads(cli("traces", "list", "--json")[1].splitlines()[0])
    assert (shown["feedback"], shown["score"]) == ("approved", 77)
    code, _, err = cli("traces", "feedback", trace_id, "meh")
    assert code == 1 and "approved' or 'rejected" in err


def test_a_missing_file_is_a_clear_error(cli, tmp_path):
    code, _, err = cli("traces", "import", str(tmp_path / "nope.jsonl"))
    assert code == 2 and "No file" in err


def test_keys_are_shown_once_and_listed_without_the_secret(cli):
    code, out, _ = cli("keys", "create", "--name", "laptop")
    key = out.splitlines()[0]
    assert code == 0 and key.startswith("fk.")
    code, listed, _ = cli("keys", "list")
    assert "laptop" in listed and key not in listed and key.split(".")[2] not in listed
    key_id = listed.split()[0]
    assert cli("keys", "revoke", key_id)[0] == 0
    assert "revoked" in cli("keys", "list")[1]


def test_the_active_domain_is_listed_switched_and_remembered(cli, tmp_path):
    code, out, _ = cli("domain")
    assert code == 0 and "* coding" in out and "legal" in out
    assert cli("domain", "use", "legal")[0] == 0
    assert "* legal" in cli("domain")[1]
    code, _, err = cli("domain", "use", "astrology")
    assert code == 1 and "Known domains" in err


def test_an_invalid_setting_stops_the_command_with_the_variable_named(cli, monkeypatch):
    monkeypatch.setenv("FORGE_MIN_SCORE", "abc")
    code, _, err = cli("jobs", "list")
    assert code == 1 and "FORGE_MIN_SCORE" in err


def test_jobs_list_and_show(cli, tenant):
    from tests.factories import make_job

    job = common.forge().storage.jobs.create(make_job(tenant, dataset_size=5))
    code, out, _ = cli("jobs", "list")
    assert code == 0 and job.job_id in out and "COLLECTING" in out
    assert json.loads(cli("jobs", "show", job.job_id)[1])["datasetSize"] == 5
    code, _, err = cli("jobs", "show", "01NOTAJOB")
    assert code == 1 and "forge jobs list" in err
