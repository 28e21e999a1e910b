"""GGUF through llama.cpp's own tools: its converter scripts (from the llama-cpp-python sdist that `make setup`
unpacks) for models and LoRA adapters, and its quantizer (in the llama-cpp-python build) for k-quants.

Each tool runs as a subprocess with Forge's Python and writes to a temporary name that is renamed into place, so a
file with the final name is always complete.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from forge.domain.errors import ConfigError, ForgeError

CONVERTER = "convert_hf_to_gguf.py"
LORA_CONVERTER = "convert_lora_to_gguf.py"
# What each tool writes directly; the rest go through f16 and llama.cpp's quantizer.
CONVERTER_TYPES = ("f32", "f16", "bf16", "q8_0")
QUANTIZER_TYPES = {"q4_k_m": 15, "q5_k_m": 17, "q6_k": 18}  # llama_ftype values (llama.h)
QUANTS = ("f16", "q8_0", "q4_k_m", "f32")  # f32: exact (a small student answers as with transformers), largest
TIMEOUT_S = 3600


class GGUFRefused(ForgeError):
    """llama.cpp's converter will not take this model or adapter; the message says why and what to do."""

    status = 422
    title = "Model cannot be converted to GGUF"


def scripts_dir(configured: Path | None = None) -> Path:
    """Where the converter scripts are: FORGE_LLAMA_CPP_SCRIPTS, else `llama.cpp/` in Forge's venv (make setup)."""
    folder = configured or Path(sys.prefix) / "llama.cpp"
    if not (folder / CONVERTER).is_file() or not (folder / LORA_CONVERTER).is_file():
        raise ConfigError(
            f"llama.cpp's converter scripts are not in {folder}; run `make setup` (it unpacks them from the "
            "llama-cpp-python sdist) or set FORGE_LLAMA_CPP_SCRIPTS to a llama.cpp checkout."
        )
    return folder


def available(configured: Path | None = None) -> str | None:
    """None when llama.cpp can convert and serve here; else what is missing, as a sentence."""
    try:
        scripts_dir(configured)
    except ConfigError as exc:
        return str(exc)
    try:
        import llama_cpp  # noqa: F401  (the build: the quantizer and the embedded LoRA server)
    except (ImportError, OSError) as exc:  # OSError: a build whose shared library does not load
        return f"llama-cpp-python is not installed ({type(exc).__name__}: {exc}); run `make setup`."
    return None


def convert_model(model_dir: Path, out: Path, *, outtype: str = "f16", scripts: Path | None = None) -> Path:
    """A Hugging Face model folder as one GGUF file, `outtype` one of f32, f16, bf16, q8_0, q4_k_m, …"""
    if outtype in QUANTIZER_TYPES:
        half = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.f16")
        try:
            convert_model(model_dir, half, outtype="f16", scripts=scripts)
            return quantize(half, out, outtype)
        finally:
            half.unlink(missing_ok=True)
    _check_type(outtype)
    args = [str(model_dir), "--outtype", outtype]
    return _run(scripts_dir(scripts) / CONVERTER, args, out, what=f"the model in {model_dir.name}")


def convert_adapter(adapter_dir: Path, base_dir: Path, out: Path, *, outtype: str = "f16",
                    scripts: Path | None = None) -> Path:
    """A PEFT LoRA adapter folder as a GGUF adapter for `base_dir` (llama.cpp's `--lora`, Ollama's ADAPTER)."""
    _check_type(outtype)
    args = [str(adapter_dir), "--base", str(base_dir), "--outtype", outtype]
    return _run(scripts_dir(scripts) / LORA_CONVERTER, args, out, what=f"the adapter in {adapter_dir.name}")


def quantize(source: Path, out: Path, kind: str) -> Path:
    """llama.cpp's own quantizer (llama_model_quantize, from the llama-cpp-python build) on a GGUF file."""
    if kind not in QUANTIZER_TYPES:
        raise GGUFRefused(f"Unknown quantisation '{kind}'; choose one of {', '.join(QUANTS)}.")
    code = ("import sys, llama_cpp as c\n"
            "p = c.llama_model_quantize_default_params(); p.ftype = int(sys.argv[3]); p.nthread = 0\n"
            "sys.exit(c.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), p))\n")
    temp = _temp(out)
    try:
        done = subprocess.run([sys.executable, "-c", code, str(source), str(temp), str(QUANTIZER_TYPES[kind])],
                              capture_output=True, text=True, timeout=TIMEOUT_S, env=_env())
        if done.returncode != 0 or not temp.is_file():
            raise GGUFRefused(f"llama.cpp could not quantize {source.name} to {kind}: {_tail(done.stderr)}")
        temp.replace(out)
    finally:
        temp.unlink(missing_ok=True)
    return out


def metadata(path: Path) -> dict[str, object]:
    """A GGUF file's scalar metadata (architecture, tokenizer flags, file type), read with llama.cpp's gguf-py."""
    code = ("import json, sys\nsys.path.insert(0, sys.argv[2])\nfrom gguf import GGUFReader\n"
            "r = GGUFReader(sys.argv[1]); out = {}\n"
            "for k, f in r.fields.items():\n"
            "    try: v = f.contents()\n"
            "    except Exception: continue\n"
            "    if isinstance(v, (str, int, float, bool)): out[k] = v\n"
            "print(json.dumps(out))\n")
    done = subprocess.run([sys.executable, "-c", code, str(path), str(scripts_dir() / "gguf-py")],
                          capture_output=True, text=True, timeout=300, env=_env())
    if done.returncode != 0:
        raise GGUFRefused(f"{path.name} is not a readable GGUF file: {_tail(done.stderr)}")
    return json.loads(done.stdout)


def _run(script: Path, args: list[str], out: Path, *, what: str) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp(out)
    try:
        done = subprocess.run([sys.executable, str(script), *args, "--outfile", str(temp)], capture_output=True,
                              text=True, timeout=TIMEOUT_S, env=_env())
        if done.returncode != 0 or not temp.is_file():
            raise GGUFRefused(_why(done.stderr, what))
        temp.replace(out)
    except subprocess.TimeoutExpired:
        raise GGUFRefused(f"llama.cpp's converter did not finish {what} within {TIMEOUT_S} s.") from None
    finally:
        temp.unlink(missing_ok=True)
    return out


def _why(stderr: str, what: str) -> str:
    tail = _tail(stderr)
    if "pre-tokenizer" in tail or "chkhsh" in tail:
        return (f"llama.cpp's converter refused {what}: its tokenizer's pre-tokenizer is not one llama.cpp knows "
                f"({tail}). Use a base model llama.cpp supports; a tiny test model needs "
                "`forge-trainer tiny-model --tokenizer sentencepiece`.")
    if "not supported" in tail.lower() or "NotImplementedError" in tail:
        return f"llama.cpp's converter does not support {what}: {tail}"
    return f"llama.cpp's converter failed on {what}: {tail}"


def _check_type(outtype: str) -> None:
    if outtype not in CONVERTER_TYPES:
        raise GGUFRefused(f"Unknown GGUF type '{outtype}'; choose one of {', '.join(QUANTS)} (or f32).")


def _temp(out: Path) -> Path:
    return out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.partial")


def _env() -> dict[str, str]:
    # Nothing is downloaded: every model and tokenizer the converters read is a local folder.
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}


def _tail(text: str, lines: int = 6) -> str:
    kept = [line for line in (text or "").strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[-800:] or "no output"
