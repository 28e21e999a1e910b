"""Bad input: exit non-zero, the reason in status.json, and no adapter presented as a result."""

from __future__ import annotations

import json

import pytest

from forge_trainer.cli import main

GOOD = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]})
MASKED = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x", "weight": 0}]})


@pytest.mark.parametrize("lines, reason", [
    ([], "train file train.jsonl is empty"),
    ([GOOD, '{"messages": [', GOOD], "train line 2: not valid JSON"),
    ([GOOD, MASKED], "train line 2: no assistant message with weight 1, so every token is masked"),
    ([GOOD, json.dumps({"prompt": "p"})], "train line 2: expected an object with a non-empty 'messages' list"),
], ids=["empty file", "malformed line", "every token masked", "not chat format"])
def test_a_bad_training_file_fails_with_its_reason_and_no_adapter(tmp_path, tiny_model, capsys, lines, reason):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(line + "\n" for line in lines))
    out = tmp_path / "out"
    code = main(["train", f"model.name_or_path={tiny_model}", f"data.train={train}", f"output.dir={out}"])
    status = json.loads((out / "status.json").read_text())
    assert code == 1 and status["state"] == "failed" and reason in status["error"]
    assert reason in capsys.readouterr().err
    assert not (out / "adapter").exists()


def test_a_base_model_path_that_does_not_exist_fails_with_a_remedy(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text(GOOD + "\n")
    out = tmp_path / "out"
    code = main(["train", f"model.name_or_path={tmp_path / 'no-such-model'}", f"data.train={train}",
                 f"output.dir={out}"])
    status = json.loads((out / "status.json").read_text())
    assert code == 1 and "does not exist" in status["error"] and "tiny-model" in status["error"]
    assert not (out / "adapter").exists()


def test_a_missing_training_file_fails_naming_it(tmp_path, tiny_model):
    out = tmp_path / "out"
    code = main(["train", f"model.name_or_path={tiny_model}", f"data.train={tmp_path / 'nope.jsonl'}",
                 f"output.dir={out}"])
    assert code == 1 and "nope.jsonl does not exist" in json.loads((out / "status.json").read_text())["error"]


def test_an_invalid_config_exits_2_before_writing_anything(tmp_path, capsys):
    code = main(["train", "model.name_or_path=m", "data.train=t.jsonl", "lora.r=0", f"output.dir={tmp_path / 'o'}"])
    assert code == 2 and "lora.r" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_fresh_run_into_a_folder_holding_a_run_is_refused_and_the_run_is_kept(tmp_path, tiny_model, capsys):
    out = tmp_path / "out"
    (out / "adapter").mkdir(parents=True)
    (out / "status.json").write_text('{"state": "succeeded"}')
    code = main(["train", f"model.name_or_path={tiny_model}", "data.train=t.jsonl", f"output.dir={out}"])
    assert code == 2 and "--resume" in capsys.readouterr().err
    assert json.loads((out / "status.json").read_text()) == {"state": "succeeded"}
