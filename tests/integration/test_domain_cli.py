"""`forge domain` as a user runs it, in-process against the session's Azurite: create from a file or a template,
edit, export, history, disable, delete, benchmark tasks; every bad input a clear error and nothing saved."""

import json

import pytest

from forge.domain.models import Route
from tests import support_task
from tests.factories import make_model_version


@pytest.fixture
def cli(forge_cli):
    return forge_cli


def listed_names(cli):
    return [line.lstrip("* ").split()[0] for line in cli("domain", "list")[1].splitlines() if line.strip()]


@pytest.fixture
def task_file(tmp_path):
    path = tmp_path / "task.toml"
    path.write_text(support_task.DOMAIN_FILE)
    return path


def test_a_domain_from_a_file_is_listed_shown_edited_and_its_history_kept(cli, task_file):
    code, out, err = cli("domain", "create", "support", "--file", str(task_file))
    assert code == 0 and "created domain support v1 (file)" in out, err
    listed = [line.lstrip("* ").split() for line in cli("domain", "list")[1].splitlines()]
    assert ["support", "v1", "classification"] in [row[:3] for row in listed], listed
    assert ["coding", "template"] in [row[:2] for row in listed]
    shown = json.loads(cli("domain", "show", "support")[1])
    assert (shown["version"], shown["config"]["task"]["labels"]) == (1, ["billing", "shipping", "account"])
    code, out, _ = cli("domain", "edit", "support", "--set", "gates.min_score=70", "--set", "task.case_sensitive=true",
                       "--set", "description=Tickets to teams")
    assert code == 0 and "domain support is at v2" in out
    assert "gates.min_score: 60.0 → 70.0" in out and "task.case_sensitive: false → true" in out
    history = cli("domain", "history", "support")[1]
    assert "v1" in history and "v2" in history and "file" in history and "edit" in history and "cli" in history


def test_an_export_creates_the_same_domain_under_another_name(cli, task_file, tmp_path):
    cli("domain", "create", "support", "--file", str(task_file))
    exported = tmp_path / "exported.toml"
    assert cli("domain", "export", "support", "--out", str(exported))[0] == 0
    text = exported.read_text().replace('name = "support"\n', "").replace('model_prefix = "forge-support"\n', "")
    exported.write_text(text)
    assert cli("domain", "create", "support-two", "--file", str(exported))[0] == 0
    one, two = (json.loads(cli("domain", "show", n)[1])["config"] for n in ("support", "support-two"))
    assert {**two, "name": "support", "model_prefix": "forge-support"} == one
    as_json = json.loads(cli("domain", "export", "support", "--json")[1])
    assert as_json["task"]["type"] == "classification"


@pytest.mark.parametrize("text,named", [
    ("[gates]\nmin_scor = 3", "gates: unknown key 'min_scor'; allowed:"),
    ("[gates]\nmin_score = 'high'", "gates.min_score: Input should be a valid number"),
    ("[scoring]\nstructure = 0.5", "scoring: scoring weights must add up to 1"),
    ("[task]\ntype = 'classification'\nparse = '(team'", "task.parse: regex '(team' does not compile"),
    ("description = 'x'\npii_policy = = 1", "is not valid TOML"),
])
def test_a_bad_file_is_refused_naming_the_field_and_nothing_is_saved(cli, tmp_path, text, named):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    code, _, err = cli("domain", "create", "support", "--file", str(bad))
    assert code == 1 and named in err and str(bad) in err
    assert "support" not in listed_names(cli)


def test_an_edit_that_breaks_a_rule_changes_nothing(cli, task_file):
    cli("domain", "create", "support", "--file", str(task_file))
    code, _, err = cli("domain", "edit", "support", "--set", "gates.min_score=300")
    assert code == 1 and "gates.min_score: Input should be less than or equal to 100" in err
    code, _, err = cli("domain", "edit", "support", "--set", "gates.bogus=1")
    assert code == 1 and "unknown key 'bogus'" in err
    assert json.loads(cli("domain", "show", "support")[1])["version"] == 1


def test_a_template_is_copied_with_its_tasks_and_stays_read_only(cli):
    code, out, _ = cli("domain", "create", "mylegal", "--from", "legal")
    assert code == 0 and "(template:legal)" in out
    assert json.loads(cli("domain", "show", "mylegal")[1])["benchmark"]["tasks"] >= 15
    code, _, err = cli("domain", "disable", "legal")
    assert code == 1 and "packaged template, which is read-only" in err and "forge domain create legal --from legal" in err


def test_deleting_a_serving_domain_needs_force_and_says_what_it_stops(cli, task_file, tenant):
    from forge.cli import common

    cli("domain", "create", "support", "--file", str(task_file))
    storage = common.forge().storage
    student = storage.models.create(make_model_version(tenant, "support", stage="production"))
    storage.routes.save(Route(tenant=tenant, domain="support", production_model=student.version_id))
    code, _, err = cli("domain", "delete", "support")
    assert code == 1 and f"student {student.version_id} in production" in err and "--force" in err
    assert "forge:support on the router" in err
    code, out, _ = cli("domain", "delete", "support", "--force")
    assert code == 0 and "deleted domain support" in out
    assert "support" not in listed_names(cli)


def test_a_disabled_domain_refuses_imports_and_runs_until_enabled(cli, task_file, tmp_path):
    cli("domain", "create", "support", "--file", str(task_file))
    traffic = tmp_path / "t.jsonl"
    traffic.write_bytes(support_task.lines(3))
    assert "disabled" in cli("domain", "disable", "support")[1]
    code, _, err = cli("traces", "import", str(traffic), "--domain", "support")
    assert code == 1 and "is disabled" in err and "forge domain enable support" in err
    code, _, err = cli("run", "--domain", "support")
    assert code == 1 and "is disabled" in err
    cli("domain", "enable", "support")
    assert "Imported 3 traces" in cli("traces", "import", str(traffic), "--domain", "support")[1]


def test_benchmark_tasks_are_checked_line_by_line_then_stored_as_a_new_version(cli, task_file, tmp_path):
    cli("domain", "create", "support", "--file", str(task_file))
    tasks = tmp_path / "tasks.jsonl"
    good = {"id": "t1", "category": "billing", "prompt": "refund please", "gold_answer": "team: billing",
            "format": "text", "checks": {"regex": ["team:\\s*billing"]}}
    tasks.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "t2", "format": "poem"}) + "\n")
    code, _, err = cli("domain", "benchmark", "support", str(tasks))
    assert code == 1 and "benchmark line 2 is not a valid task (format: Input should be" in err
    assert json.loads(cli("domain", "show", "support")[1])["version"] == 1
    tasks.write_text(json.dumps(good) + "\n")
    code, out, _ = cli("domain", "benchmark", "support", str(tasks))
    assert code == 0 and "support v2: 1 benchmark tasks" in out
    code, out, _ = cli("domain", "benchmark", "support", "--remove")
    assert code == 0 and "it evaluates on its eval set" in out


def test_an_unknown_domain_says_how_to_create_one(cli, tmp_path):
    code, _, err = cli("domain", "show", "support")
    assert code == 1 and "No domain 'support'" in err and "forge domain create support --from TEMPLATE" in err
    code, _, err = cli("domain", "create", "support")
    assert code == 1 and "--from TEMPLATE" in err and "--file task.toml" in err
