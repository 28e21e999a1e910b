"""Export a LoRA student to run it elsewhere: the PEFT adapter as is, merged safetensors, GGUF (merged and adapter
only, through llama.cpp's converter), or an Ollama model; every export also says how vLLM serves the adapter.

The export is written under a temporary name beside its folder and renamed when complete, so a folder with the
final name is always a whole export. Free space is checked first, against an estimate from the model's own files.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from forge.bootstrap import Forge
from forge.domain.errors import AlreadyExists, ForgeError, InvalidInput, NotFound
from forge.domain.models import ModelVersion
from forge.providers import gguf
from forge.providers.inference import InferenceError
from forge.providers.local_model import local_path
from forge.providers.lora_server import adapter_name
from forge.services.domains import domain_for
from forge.services.models import get_model

VLLM_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's --max-lora-rank choices
EVAL_MAX_TOKENS = 1024  # what evaluation lets a student write; the Modelfile's num_predict


class ExportFormat(str, Enum):
    PEFT = "peft"
    MERGED = "merged"
    GGUF = "gguf"
    OLLAMA = "ollama"


class NotExportable(ForgeError):
    """The model has no weights Forge can export (training unfinished, or a hosted model)."""

    status = 409
    title = "Model cannot be exported"


class ExportNotFound(NotFound):
    title = "Export not found"


class InsufficientStorage(ForgeError):
    status = 507
    title = "Not enough disk space"


@dataclass
class Export:
    model: str
    format: str
    quant: str | None
    folder: Path
    files: list[dict[str, Any]] = field(default_factory=list)
    vllm: str = ""
    commands: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.format + (f"-{self.quant}" if self.quant else "")

    def public(self) -> dict[str, Any]:
        return {"model": self.model, "format": self.format, "quant": self.quant, "files": self.files,
                "vllm": self.vllm, "commands": self.commands, "folder": str(self.folder)}

    def for_tenant(self) -> dict[str, Any]:
        """What an API caller sees: the files (by name, to download) and how to serve them; no server paths."""
        here = str(self.folder)
        return {"model": self.model, "format": self.format, "quant": self.quant, "export": self.label,
                "files": self.files, "vllm": self.vllm.replace(here, "."),
                "commands": {k: v.replace(here, ".") for k, v in self.commands.items()}}


def export_model(forge: Forge, tenant: str, version_id: str, fmt: str, *, quant: str | None = None,
                 out: Path | None = None) -> Export:
    """Write the export to `out` (default `$FORGE_HOME/exports/{tenant}/{version}/{format}[-{quant}]`)."""
    try:
        kind = ExportFormat(fmt)
    except ValueError:
        raise InvalidInput(f"Unknown export format '{fmt}'; choose one of "
                           f"{', '.join(f.value for f in ExportFormat)}.") from None
    if kind in (ExportFormat.GGUF, ExportFormat.OLLAMA):
        quant = quant or "f16"
        if quant not in gguf.QUANTS:
            raise InvalidInput(f"Unknown quantisation '{quant}'; choose one of {', '.join(gguf.QUANTS)}.")
    elif quant:
        raise InvalidInput(f"--quant applies to the gguf and ollama formats, not to {kind.value}.")
    model = get_model(forge.storage, tenant, version_id)
    folder = out or _default_folder(forge, tenant, model.version_id, kind.value + (f"-{quant}" if quant else ""))
    if out is None and (done := _read(folder)) is not None:
        return done  # exported before: the same files
    if folder.exists():
        raise AlreadyExists(f"{folder} already exists; delete it or export to another --out.")
    adapter, base = _sources(forge, model, kind)
    _check_space(folder, _needed(kind, adapter, base, quant))
    temp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.partial")
    temp.mkdir(parents=True)
    try:
        config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
        export = Export(model.version_id, kind.value, quant, folder, vllm=_vllm_line(model, config, folder, kind))
        if kind == ExportFormat.PEFT:
            shutil.copytree(adapter, temp / "adapter")
        elif kind == ExportFormat.MERGED:
            _merge(base, adapter, temp / "merged")  # type: ignore[arg-type]
        else:
            _gguf(forge, tenant, model, base, adapter, temp, kind, quant or "f16", export)  # type: ignore[arg-type]
        export.files = _manifest(temp)
        (temp / "export.json").write_text(json.dumps(export.public(), indent=2), encoding="utf-8")
        temp.rename(folder)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return export


def find_export(forge: Forge, tenant: str, version_id: str, label: str) -> Export | None:
    """A finished export of the tenant's model (`label` as `gguf-q8_0`), or None."""
    model = get_model(forge.storage, tenant, version_id)  # another tenant's model is as unknown as a missing one
    return _read(_default_folder(forge, tenant, model.version_id, label))


def export_file(forge: Forge, tenant: str, version_id: str, label: str, name: str) -> Path:
    """One file of a finished export, by its name in the export's manifest (nothing else is ever served)."""
    done = find_export(forge, tenant, version_id, label)
    if done is None:
        raise ExportNotFound(f"{version_id} has no '{label}' export; POST /api/v1/models/{version_id}/export first.")
    if name not in {f["name"] for f in done.files}:
        raise ExportNotFound(f"The '{label}' export of {version_id} has no file '{name}'; its files are "
                             f"{', '.join(f['name'] for f in done.files)}.")
    return done.folder / name


def _default_folder(forge: Forge, tenant: str, version_id: str, label: str) -> Path:
    return forge.settings.home / "exports" / tenant / version_id / label


def _read(folder: Path) -> Export | None:
    try:
        data = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Export(data["model"], data["format"], data.get("quant"), folder, data.get("files", []),
                  data.get("vllm", ""), data.get("commands", {}))


def _sources(forge: Forge, model: ModelVersion, kind: ExportFormat) -> tuple[Path, Path | None]:
    """The adapter folder, and the base folder the formats other than peft need; NotExportable says why not."""
    if not model.adapter_uri:
        if model.provider_model_id:
            raise NotExportable(f"{model.version_id} is hosted by its provider as {model.provider_model_id}; its "
                                "weights cannot be downloaded, so there is nothing to export.")
        raise NotExportable(f"{model.version_id} has no adapter: its training has not finished. Export it once its "
                            "job has completed.")
    try:
        adapter = local_path(model.adapter_uri)
    except InferenceError:
        adapter = _download(forge, model)
    if not (adapter / "adapter_config.json").is_file() or not any(adapter.glob("adapter_model.*")):
        raise NotExportable(f"The adapter of {model.version_id} is incomplete (no adapter_config.json or weights): "
                            "its training has not finished, or its run folder was removed.")
    if kind == ExportFormat.PEFT:
        return adapter, None
    try:
        base = local_path(model.base_model)
    except InferenceError:
        base = Path("/nonexistent")
    if not (base / "config.json").is_file():
        raise NotExportable(f"The base model {model.base_model} is not a model folder on this machine; the "
                            f"{kind.value} format needs its weights. Export --format peft instead.")
    return adapter, base


def _download(forge: Forge, model: ModelVersion) -> Path:
    """An adapter in Forge's own `models` container (the azureml provider's), copied to this machine once."""
    models = forge.storage.account.blobs.get_container_client("models")
    prefix = f"{models.url.rstrip('/')}/"
    uri = (model.adapter_uri or "").split("?", 1)[0]
    if not uri.startswith(prefix):
        raise NotExportable(f"{model.version_id}'s adapter is at {uri}, outside Forge's storage; copy the folder to "
                            "this machine and export from it.")
    folder = forge.settings.home / "exports" / ".adapters" / model.version_id
    if (folder / "adapter_config.json").is_file():
        return folder
    temp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        name = uri[len(prefix):].rstrip("/") + "/"
        for blob in models.list_blobs(name_starts_with=name):
            target = temp / blob.name[len(name):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(models.download_blob(blob.name).readall())
        if not (temp / "adapter_config.json").is_file():
            raise NotExportable(f"No adapter under {uri}: its training has not finished, or its files were removed.")
        temp.rename(folder)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return folder


def _needed(kind: ExportFormat, adapter: Path, base: Path | None, quant: str | None) -> int:
    """Bytes the export needs at its peak: the outputs and the temporary files made on the way."""
    adapter_bytes = _size(adapter)
    if kind == ExportFormat.PEFT or base is None:
        return adapter_bytes
    weights = sum(f.stat().st_size for f in base.glob("*.safetensors")) or _size(base)
    merged = weights  # saved in the base's own dtype
    if kind == ExportFormat.MERGED:
        return merged + adapter_bytes
    per_weight = {"f32": 1.0, "f16": 0.5, "q8_0": 0.27, "q4_k_m": 0.16}[quant or "f16"]  # of a float32 checkpoint
    scale = per_weight * (4 / 2 if _half(base) else 1)
    gguf_bytes = int(weights * scale) + int(weights * 0.5 if quant == "q4_k_m" else 0)  # k-quants go through f16
    return merged + gguf_bytes + 2 * adapter_bytes


def _check_space(folder: Path, needed: int) -> None:
    probe = folder.parent
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    margin = needed // 10 + (16 << 20)
    if free < needed + margin:
        raise InsufficientStorage(f"This export needs about {_mb(needed + margin)} and {probe} has {_mb(free)} free; "
                                  "free some space or export to another disk with --out.")


def _merge(base: Path, adapter: Path, out: Path) -> None:
    """The adapter folded into the base (safetensors), with the tokenizer it was trained with."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer_dir = adapter if (adapter / "tokenizer_config.json").is_file() else base
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True, torch_dtype="auto")
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    merged = PeftModel.from_pretrained(model, adapter, is_trainable=False).merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    if (base / "tokenizer.model").is_file():  # a SentencePiece model: what llama.cpp's converter reads first
        shutil.copy2(base / "tokenizer.model", out / "tokenizer.model")
    _keep_converter_keys(base / "tokenizer_config.json", out / "tokenizer_config.json")


def _keep_converter_keys(source: Path, target: Path) -> None:
    """transformers 5 saves a tokenizer without its specials' table and BOS/EOS flags; llama.cpp's converter reads
    them (without the table ChatML tokens would be text to llama.cpp), so the base's are kept where the save has none."""
    try:
        base, saved = (json.loads(p.read_text(encoding="utf-8")) for p in (source, target))
    except (OSError, ValueError):
        return
    kept = {k: base[k] for k in ("added_tokens_decoder", "add_bos_token", "add_eos_token") if k in base and k not in saved}
    if kept:
        target.write_text(json.dumps({**saved, **kept}, indent=2), encoding="utf-8")


def _gguf(forge: Forge, tenant: str, model: ModelVersion, base: Path, adapter: Path, temp: Path,
          kind: ExportFormat, quant: str, export: Export) -> None:
    scratch = temp / ".merged"
    _merge(base, adapter, scratch)
    stem = adapter_name(model)
    merged = gguf.convert_model(scratch, temp / f"{stem}-{quant}.gguf", outtype=quant,
                                scripts=forge.settings.llama_cpp_scripts)
    shutil.rmtree(scratch)
    if kind == ExportFormat.OLLAMA:
        (temp / "Modelfile").write_text(_modelfile(forge, tenant, model, adapter, merged.name), encoding="utf-8")
        export.commands = {"ollama": f"ollama create {stem} -f {export.folder / 'Modelfile'} && ollama run {stem}"}
        return
    lora_type = "f32" if quant == "f32" else "f16"
    lora = gguf.convert_adapter(adapter, base, temp / f"{stem}-adapter-{lora_type}.gguf", outtype=lora_type,
                                scripts=forge.settings.llama_cpp_scripts)
    export.commands = {
        "llama.cpp (merged)": f"llama-server -m {export.folder / merged.name}",
        "llama.cpp (adapter on its base)": f"llama-server -m BASE.gguf --lora {export.folder / lora.name}  "
                                           f"# BASE.gguf: convert_hf_to_gguf.py {base}",
    }


def _modelfile(forge: Forge, tenant: str, model: ModelVersion, adapter: Path, gguf_name: str) -> str:
    """Ollama's Modelfile: the merged GGUF, the domain's system prompt, and the settings evaluation used (greedy)."""
    try:
        system = domain_for(forge, tenant, model.domain).system_prompt
    except NotFound:  # the domain was deleted since: the student still exports, without a system prompt
        system = ""
    lines = [f"# {model.version_id} of domain {model.domain} (tenant {tenant}), exported by Forge",
             f"FROM ./{gguf_name}"]
    template = _chat_template(adapter)
    if "<|im_start|>" in template:  # ChatML, as the trainer renders it; other templates Ollama reads from the GGUF
        lines.append('TEMPLATE """{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}'
                     '{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}'
                     '<|im_start|>assistant\n"""')
        lines.append('PARAMETER stop "<|im_end|>"')
    if system:
        lines.append(f'SYSTEM """{system.replace(chr(34) * 3, "")}"""')
    lines += ["PARAMETER temperature 0", "PARAMETER top_p 1", f"PARAMETER num_predict {EVAL_MAX_TOKENS}"]
    return "\n".join(lines) + "\n"


def _chat_template(adapter: Path) -> str:
    for name in ("chat_template.jinja", "tokenizer_config.json"):
        path = adapter / name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            return text if name.endswith(".jinja") else str(json.loads(text).get("chat_template") or "")
    return ""


def _vllm_line(model: ModelVersion, config: dict[str, Any], folder: Path, kind: ExportFormat) -> str:
    """How vLLM serves this adapter on its base: the exact `vllm serve` line with --lora-modules."""
    rank = int(config.get("r") or 16)
    max_rank = next((r for r in VLLM_RANKS if r >= rank), rank)
    path = folder / "adapter" if kind == ExportFormat.PEFT else local_path(model.adapter_uri or "")
    module = json.dumps({"name": adapter_name(model), "path": str(path), "base_model_name": model.base_model})
    return f"vllm serve {model.base_model} --enable-lora --max-lora-rank {max_rank} --lora-modules '{module}'"


def _manifest(folder: Path) -> list[dict[str, Any]]:
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        files.append({"name": str(path.relative_to(folder)), "bytes": path.stat().st_size,
                      "sha256": digest.hexdigest()})
    return files


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _half(base: Path) -> bool:
    try:
        dtype = json.loads((base / "config.json").read_text(encoding="utf-8")).get("torch_dtype") or ""
    except (OSError, ValueError):
        return False
    return str(dtype) in ("float16", "bfloat16")


def _mb(size: int) -> str:
    return f"{size / (1 << 30):.1f} GiB" if size >= 1 << 30 else f"{size / (1 << 20):.0f} MiB"
