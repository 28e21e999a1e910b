"""`forge datasets` as a user runs it, in-process against the session's Azurite."""

import json

from tests.factories import varied_lines


def test_build_from_a_file_stores_a_dataset_and_writes_the_four_files_locally(forge_cli, tmp_path):
    source = tmp_path / "traces.jsonl"
    source.write_text("\n".join(varied_lines(30) + ["{oops", varied_lines(1)[0]]) + "\n")
    out = tmp_path / "out"
    code, printed, err = forge_cli("datasets", "build", "--domain", "coding", "--from-file", str(source),
                                   "--out", str(out), "--valid-share", "0.2")
    assert code == 0, err
    assert "version 1" in printed and "invalid_json: 1" in printed and "duplicate: 1" in printed
    assert "Training would bill" in printed and "warning: Only" in err
    assert sorted(p.name for p in out.iterdir()) == ["rejects.jsonl", "stats.json", "train.jsonl", "valid.jsonl"]
    dataset_id = printed.split()[1]
    code, listed, _ = forge_cli("datasets", "list")
    assert code == 0 and dataset_id in listed and "v1" in listed
    code, shown, _ = forge_cli("datasets", "show", dataset_id)
    assert code == 0 and json.loads(shown)["stats"]["dropped"] == {"invalid_json": 1, "duplicate": 1}
    code, _, _ = forge_cli("datasets", "validate", str(out / "train.jsonl"))
    assert code == 0


def test_validate_prints_each_problem_with_its_line_and_exits_1(forge_cli, tmp_path):
    lines = [json.dumps({"messages": json.loads(x)["messages"]}) for x in varied_lines(11)]
    lines[2] = '{"messages": [{"role": "user", "content": "q"}]}'
    lines[5] = "{broken"
    lines[7] = '{"messages": [{"role": "robot", "content": "q"}, {"role": "assistant", "content": "a", "x": 1}]}'
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code, printed, _ = forge_cli("datasets", "validate", str(path))
    assert code == 1
    assert "line 3: example_missing_assistant_message" in printed
    assert "line 6: invalid_json" in printed
    assert "line 8: message_unrecognized_key" in printed and "line 8: unrecognized_role" in printed
    assert "file: too_few_examples" in printed and "2 more are needed" in printed
    assert "INVALID" in printed


def test_building_from_too_few_traces_is_one_clear_error(forge_cli, tmp_path):
    source = tmp_path / "few.jsonl"
    source.write_text("\n".join(varied_lines(4)) + "\n")
    code, _, err = forge_cli("datasets", "build", "--from-file", str(source), "--valid-share", "0")
    assert code == 1 and "6 more are needed" in err
    code, _, err = forge_cli("datasets", "build", "--from-file", str(tmp_path / "missing.jsonl"))
    assert code == 1 and "No file" in err
