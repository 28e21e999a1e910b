"""`forge export` and `POST /api/v1/models/{id}/export` on a tiny student whose tokenizer llama.cpp's converter takes:
the GGUF export loads in llama.cpp (llama-cpp-python) and answers greedily as transformers + peft do; merged weights
load alone; the Modelfile carries the domain's prompt; bad input is refused before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from forge.domain.errors import AlreadyExists, InvalidInput
from forge.domain.models import ModelVersion
from forge.providers import gguf
from forge.services import exports
from forge.services.exports import InsufficientStorage, NotExportable, export_model
from tests.factories import make_model_version

PROMPTS = ["What colour is the river?", "Write a function that returns a list.", "Say hello to the user."]
MAX_TOKENS = 12


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> tuple[Path, Path]:
    """A random tiny Llama with a SentencePiece tokenizer, and a random (not no-op) LoRA adapter on all its layers."""
    import torch
    from forge_trainer import tiny
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("student")
    base = tiny.build(root / "base", seed=0, tokenizer_kind="sentencepiece")
    torch.manual_seed(3)
    model = AutoModelForCausalLM.from_pretrained(base)
    adapter = root / "adapter"
    lora = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(adapter)
    AutoTokenizer.from_pretrained(base).save_pretrained(adapter)
    return base, adapter


@pytest.fixture
def version(forge, tenant, student) -> ModelVersion:
    base, adapter = student
    return forge.storage.models.create(make_model_version(tenant, domain="demo", provider_model_id=None,
                                                          base_model=str(base), adapter_uri=str(adapter)))


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": text}]


def transformers_answers(base: Path, adapter: Path) -> list[list[int]]:
    """Greedy token ids of base + adapter with transformers and peft, as Forge's in-process student runs it."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter).eval()
    answers = []
    for text in PROMPTS:
        prompt = tokenizer(tokenizer.apply_chat_template(chat(text), tokenize=False, add_generation_prompt=True),
                           add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            out = model.generate(torch.tensor([prompt]), max_new_tokens=MAX_TOKENS, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        answer = out[0][len(prompt):].tolist()
        answers.append(answer[: answer.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in answer else answer)
    return answers


def llama_cpp_answers(model: Path, lora: Path | None = None) -> list[list[int]]:
    """Greedy token ids from llama.cpp itself (llama-cpp-python's Llama), prompted with the GGUF's own template."""
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llm = Llama(model_path=str(model), lora_path=str(lora) if lora else None, n_ctx=256, n_threads=1, verbose=False,
                seed=0)
    template = llm.metadata["tokenizer.chat_template"]
    formatter = Jinja2ChatFormatter(template, eos_token="<|im_end|>", bos_token="<s>")
    answers = []
    for text in PROMPTS:
        prompt = llm.tokenize(formatter(messages=chat(text)).prompt.encode(), add_bos=False, special=True)
        tokens = []
        for token in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
            if llm.token_eos() == token or len(tokens) == MAX_TOKENS:
                break
            tokens.append(token)
        answers.append(tokens)
    llm.close()
    return answers


def test_the_gguf_export_loads_in_llama_cpp_and_answers_greedily_as_transformers_and_peft(forge, tenant, version,
                                                                                       student, tmp_path):
    base, adapter = student
    done = export_model(forge, tenant, version.version_id, "gguf", quant="f32", out=tmp_path / "gguf")
    names = {f["name"] for f in done.files}
    merged = tmp_path / "gguf" / next(n for n in names if n.endswith("-f32.gguf") and "adapter" not in n)
    lora = tmp_path / "gguf" / next(n for n in names if "-adapter-" in n)
    expected = [answer[:MAX_TOKENS] for answer in transformers_answers(base, adapter)]
    assert llama_cpp_answers(merged) == expected
    base_gguf = gguf.convert_model(base, tmp_path / "base.gguf", outtype="f32")
    assert llama_cpp_answers(base_gguf, lora) == expected  # the adapter alone, on its base
    assert "--enable-lora" in done.vllm and f"--lora-modules '{{\"name\": \"demo-{version.version_id.lower()}" in done.vllm
    manifest = json.loads((tmp_path / "gguf" / "export.json").read_text())
    assert [f["name"] for f in manifest["files"]] == sorted(names) and all(len(f["sha256"]) == 64 for f in done.files)


def test_a_q4_k_m_export_goes_through_llama_cpps_quantizer_and_still_loads(forge, tenant, version, tmp_path):
    done = export_model(forge, tenant, version.version_id, "gguf", quant="q4_k_m", out=tmp_path / "q4")
    merged = tmp_path / "q4" / next(f["name"] for f in done.files if f["name"].endswith("-q4_k_m.gguf"))
    assert gguf.metadata(merged)["general.file_type"] == gguf.QUANTIZER_TYPES["q4_k_m"]
    assert len(llama_cpp_answers(merged)) == len(PROMPTS)


def test_merged_weights_load_alone_and_answer_as_base_plus_adapter(forge, tenant, version, student, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    export_model(forge, tenant, version.version_id, "merged", out=tmp_path / "merged")
    folder = tmp_path / "merged" / "merged"
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(folder)
    prompt = tokenizer(tokenizer.apply_chat_template(chat(PROMPTS[0]), tokenize=False, add_generation_prompt=True),
                       add_special_tokens=False)["input_ids"]
    out = model.generate(torch.tensor([prompt]), max_new_tokens=MAX_TOKENS, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)[0][len(prompt):].tolist()
    assert out == transformers_answers(*student)[0][:MAX_TOKENS]


def test_the_ollama_modelfile_carries_the_domains_system_prompt_template_and_evaluation_sampling(
        forge, tenant, version, tmp_path):
    done = export_model(forge, tenant, version.version_id, "ollama", quant="q8_0", out=tmp_path / "ollama")
    modelfile = (tmp_path / "ollama" / "Modelfile").read_text()
    gguf_name = next(f["name"] for f in done.files if f["name"].endswith(".gguf"))
    assert f"FROM ./{gguf_name}" in modelfile and "<|im_start|>" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert f'SYSTEM """{forge.domains["demo"].system_prompt}"""' in modelfile
    assert "PARAMETER temperature 0" in modelfile and "ollama create" in done.commands["ollama"]


def test_the_peft_export_is_the_adapter_and_exporting_the_same_format_again_returns_it(forge, tenant, version,
                                                                                     student):
    first = export_model(forge, tenant, version.version_id, "peft")
    assert first.folder == forge.settings.home / "exports" / tenant / version.version_id / "peft"
    assert (first.folder / "adapter" / "adapter_model.safetensors").read_bytes() == \
        (student[1] / "adapter_model.safetensors").read_bytes()
    again = export_model(forge, tenant, version.version_id, "peft")
    assert again.files == first.files and again.folder == first.folder


def test_bad_exports_are_refused_before_anything_is_written(forge, tenant, version, tmp_path, monkeypatch):
    untrained = forge.storage.models.create(make_model_version(tenant, provider_model_id=None, base_model="/x"))
    hosted = forge.storage.models.create(make_model_version(tenant))
    with pytest.raises(NotExportable, match="training has not finished"):
        export_model(forge, tenant, untrained.version_id, "peft", out=tmp_path / "a")
    with pytest.raises(NotExportable, match="hosted by its provider"):
        export_model(forge, tenant, hosted.version_id, "gguf", out=tmp_path / "b")
    with pytest.raises(InvalidInput, match="Unknown export format 'onnx'"):
        export_model(forge, tenant, version.version_id, "onnx", out=tmp_path / "c")
    with pytest.raises(InvalidInput, match="Unknown quantisation 'q2'"):
        export_model(forge, tenant, version.version_id, "gguf", quant="q2", out=tmp_path / "d")
    with pytest.raises(InvalidInput, match="--quant applies to the gguf and ollama formats"):
        export_model(forge, tenant, version.version_id, "merged", quant="q8_0", out=tmp_path / "e")
    (tmp_path / "f").mkdir()
    with pytest.raises(AlreadyExists, match="already exists"):
        export_model(forge, tenant, version.version_id, "peft", out=tmp_path / "f")
    monkeypatch.setattr(exports.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 << 30, 10 << 30, 1 << 20))
    with pytest.raises(InsufficientStorage, match=r"needs about \d+ MiB and .* has 1 MiB free"):
        export_model(forge, tenant, version.version_id, "merged", out=tmp_path / "g")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # nothing else was written


def test_a_failed_export_leaves_nothing_under_its_name(forge, tenant, student, tmp_path):
    base, adapter = student
    broken = tmp_path / "broken-base"
    shutil.copytree(base, broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    model = forge.storage.models.create(make_model_version(tenant, domain="demo", provider_model_id=None,
                                                           base_model=str(broken), adapter_uri=str(adapter)))
    with pytest.raises(Exception):
        export_model(forge, tenant, model.version_id, "merged", out=tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken-base"]


def test_the_api_exports_once_serves_only_the_listed_files_and_hides_server_paths(keyed_api, forge, tenant, version):
    created = keyed_api.post(f"/api/v1/models/{version.version_id}/export", json={"format": "peft"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert str(forge.settings.home) not in json.dumps(body)
    file = next(f for f in body["files"] if f["name"] == "adapter/adapter_config.json")
    download = keyed_api.get(file["url"])
    assert download.status_code == 200 and json.loads(download.content)["r"] == 8
    assert keyed_api.get(f"/api/v1/models/{version.version_id}/exports/peft/export.json").status_code == 404
    assert keyed_api.get(f"/api/v1/models/{version.version_id}/exports/peft/../../secret").status_code == 404
    assert keyed_api.post(f"/api/v1/models/{version.version_id}/export", json={"format": "onnx"}).status_code == 422
    assert keyed_api.post(f"/api/v1/models/{version.version_id}/export",
                          json={"format": "peft", "path": "/etc"}).status_code == 422
