"""Cost estimates as people ask for them: `forge cost` on a file or a stored dataset, and the API, on Azurite."""

from __future__ import annotations

import json

import httpx
import pytest

from forge.api.app import create_app
from forge.api.server import serving
from forge.bootstrap import bootstrap
from forge.domain.models import Dataset

# A hand count in o200k_base, as OpenAI counts chat examples: 3 tokens priming each example, 3 framing each message.
#   "You are terse." 4, "What is 2 + 2?" 8, "4" 1        → 3 + (4+3) + (8+3) + (1+3) = 25
#   "Name a primary colour." 5, "Red" 1                 → 3 + (5+3) + (1+3)         = 15
#   "Say hi." 3, "Hi!" 2                                → 3 + (3+3) + (2+3)         = 14
EXAMPLES = [
    {"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2 + 2?"},
                  {"role": "assistant", "content": "4"}]},
    {"messages": [{"role": "user", "content": "Name a primary colour."}, {"role": "assistant", "content": "Red"}]},
    {"messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi!"}]},
]
PER_EPOCH = 25 + 15 + 14
AUTO_EPOCHS = 25  # 3 examples: OpenAI raises epochs until examples × epochs reaches 100, at most 25


@pytest.fixture
def small_file(tmp_path):
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in EXAMPLES), encoding="utf-8")
    return path


@pytest.fixture
def dataset(storage, tenant) -> str:
    record = storage.datasets.create(Dataset(tenant=tenant, domain="coding"))
    storage.datasets.write_file(tenant, record.dataset_id, "train", EXAMPLES)
    storage.datasets.write_file(tenant, record.dataset_id, "valid", EXAMPLES[:1])  # never billed
    return record.dataset_id


def test_forge_cost_on_a_file_prints_the_hand_counted_tokens_and_cost(forge_cli, small_file):
    code, out, err = forge_cli("cost", "--file", str(small_file), "--model", "gpt-4.1-2025-04-14", "--epochs", "4")
    assert code == 0, err
    assert f"3 examples, {PER_EPOCH} tokens per epoch" in out
    assert f"Billed tokens: {PER_EPOCH * 4}" in out  # 216
    assert "Price: 25 USD per 1M training tokens (prices as of 2025-06-01)" in out
    assert "Estimated cost: 0.0054 USD" in out  # 216 × 25 / 1e6


def test_forge_cost_on_a_stored_dataset_bills_its_training_file_with_auto_epochs(forge_cli, dataset):
    code, out, err = forge_cli("cost", "--dataset", dataset, "--model", "gpt-4.1-nano-2025-04-14", "--json")
    assert code == 0, err
    estimate = json.loads(out)
    assert (estimate["examples"], estimate["dataset_tokens"]) == (3, PER_EPOCH)
    assert (estimate["epochs"], estimate["epochs_auto"]) == (AUTO_EPOCHS, True)
    assert estimate["billed_tokens"] == PER_EPOCH * AUTO_EPOCHS  # 1,350
    assert estimate["cost"] == 0.002  # 1,350 × 1.5 / 1e6 = 0.002025, to four places


def test_forge_cost_refuses_a_broken_file_naming_its_line_and_a_model_without_a_price_gets_no_cost(forge_cli,
                                                                                                   small_file,
                                                                                                   tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(EXAMPLES[0]) + "\n" + '{"messages": [{"role": "user"}]}\n', encoding="utf-8")
    code, _, err = forge_cli("cost", "--file", str(broken))
    assert code == 1 and "line 2" in err and "forge datasets validate" in err
    code, out, _ = forge_cli("cost", "--file", str(small_file), "--model", "my-own-model")
    assert code == 0 and "no price for my-own-model" in out and f"Billed tokens: {PER_EPOCH * AUTO_EPOCHS:,}" in out
    code, _, err = forge_cli("cost", "--file", str(small_file), "--dataset", "x")
    assert code == 2 and "either --dataset ID or --file F" in err


def test_the_api_estimates_a_stored_dataset_or_inline_examples_for_the_keys_tenant(settings, storage, tenant,
                                                                                    dataset):
    forge = bootstrap(settings, storage=storage)
    key = forge.storage.keys.create(tenant, "cost")[0]
    stranger = forge.storage.keys.create(f"{tenant}x", "other tenant")[0]
    url_path = "/api/v1/forge/jobs/estimate-cost"
    with serving(create_app(forge)) as url, httpx.Client(base_url=url) as api:
        stored = api.post(url_path, json={"datasetId": dataset, "epochs": 2}, headers={"X-API-Key": key})
        inline = api.post(url_path, json={"examples": EXAMPLES, "model": "gpt-4.1-2025-04-14"},
                          headers={"X-API-Key": key})
        hidden = api.post(url_path, json={"datasetId": dataset}, headers={"X-API-Key": stranger})
        both = api.post(url_path, json={"datasetId": dataset, "examples": EXAMPLES}, headers={"X-API-Key": key})
        bad = api.post(url_path, json={"examples": [{"messages": "nope"}]}, headers={"X-API-Key": key})
    assert stored.status_code == 200, stored.text
    body = stored.json()
    assert (body["model"], body["billedTokens"], body["epochsAuto"]) == (settings.student_base_model, PER_EPOCH * 2,
                                                                         False)
    assert body["cost"] == round(PER_EPOCH * 2 * 5.0 / 1e6, 4) and body["pricesAsOf"] == "2025-06-01"
    assert inline.json()["billedTokens"] == PER_EPOCH * AUTO_EPOCHS and inline.json()["pricePer1M"] == 25.0
    assert hidden.status_code == 404
    assert both.status_code == 422 and "either datasetId" in both.json()["detail"]
    assert bad.status_code == 422 and "examples[0]" in bad.json()["detail"]
