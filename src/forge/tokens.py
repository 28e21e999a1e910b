"""Token counts with tiktoken, offline: the `.tiktoken` rank files are rebuilt from the npm `tiktoken` package.

Python `tiktoken` downloads its encodings on first use, which machines without internet cannot do. The npm package
(installed by `make setup`) ships the same ranks in another layout; they are rewritten here in tiktoken's format,
checked against the sha256 tiktoken itself expects, and placed where tiktoken's cache looks for them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from forge.domain.errors import ForgeError

BLOB_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
# The sha256 tiktoken checks each file against (tiktoken_ext/openai_public.py).
EXPECTED_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
DEFAULT_ENCODING = "o200k_base"


class TokenizerUnavailable(ForgeError):
    status = 503
    title = "Tokenizer unavailable"


def cache_file(cache_dir: Path, name: str) -> Path:
    """Where tiktoken looks for an encoding: its cache names files by the sha1 of the download URL."""
    return cache_dir / hashlib.sha1(BLOB_URL.format(name=name).encode()).hexdigest()


def find_npm_encoders(node_modules: Path | None = None) -> Path | None:
    """`node_modules/tiktoken/encoders`: the configured node_modules, else the nearest above the cwd or this file."""
    starts = [node_modules.parent] if node_modules else []
    starts += [Path.cwd(), Path(__file__).resolve()]
    for start in starts:
        for base in (start, *start.parents):
            candidate = base / "node_modules" / "tiktoken" / "encoders"
            if (candidate / f"{DEFAULT_ENCODING}.json").is_file():
                return candidate
    return None


def rebuild_ranks(npm_json: Path) -> bytes:
    """The exact `.tiktoken` bytes for one npm encoder file (`"! <rank> <b64> <b64> …"`: ranks count up)."""
    words = json.loads(npm_json.read_text(encoding="utf-8"))["bpe_ranks"].split(" ")
    lines: list[str] = []
    rank = 0
    i = 0
    while i < len(words):
        if words[i] == "!":  # a marker: the next word is the rank the following tokens start from
            rank = int(words[i + 1])
            i += 2
            continue
        lines.append(f"{words[i]} {rank}\n")
        rank += 1
        i += 1
    return "".join(lines).encode()


def ensure_ranks(cache_dir: Path, node_modules: Path | None = None, names: Sequence[str] = tuple(EXPECTED_SHA256)) -> Path:
    """Write the checked rank files into `cache_dir` if they are missing; returns `cache_dir`."""
    encoders: Path | None = None
    for name in names:
        target = cache_file(cache_dir, name)
        if target.is_file() and _sha256(target.read_bytes()) == EXPECTED_SHA256[name]:
            continue
        encoders = encoders or find_npm_encoders(node_modules)
        if encoders is None:
            raise TokenizerUnavailable(
                "tiktoken's ranks are missing (no node_modules/tiktoken found). Run `make setup` in the Forge "
                "checkout (npm installs them), or set FORGE_NODE_MODULES to the node_modules that has tiktoken."
            )
        data = rebuild_ranks(encoders / f"{name}.json")
        if _sha256(data) != EXPECTED_SHA256[name]:
            raise TokenizerUnavailable(
                f"The {name} ranks in {encoders} do not match tiktoken's checksum; reinstall them with `make setup`."
            )
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)  # atomic: a concurrent reader never sees half a file
    return cache_dir


_loaded: dict[str, Any] = {}


def _load(name: str, cache_dir: str, node_modules: str | None) -> Any:
    import tiktoken

    if name in _loaded:  # once per process: later calls reuse it whatever home they name
        return _loaded[name]
    try:
        ensure_ranks(Path(cache_dir), Path(node_modules) if node_modules else None, names=(name,))
    except TokenizerUnavailable as missing:
        # No npm package (an Azure deployment has no node_modules): tiktoken may still fetch the file itself,
        # sha256-checked, where the network allows it; offline, the error says to run `make setup`.
        os.environ["TIKTOKEN_CACHE_DIR"] = cache_dir
        try:
            _loaded[name] = tiktoken.get_encoding(name)
        except Exception:
            raise missing from None
        return _loaded[name]
    # tiktoken reads its cache directory from the environment only; set it before the first load.
    os.environ["TIKTOKEN_CACHE_DIR"] = cache_dir
    _loaded[name] = tiktoken.get_encoding(name)
    return _loaded[name]


def encoding(name: str = DEFAULT_ENCODING, *, home: Path | None = None, node_modules: Path | None = None) -> Any:
    """A tiktoken Encoding (`o200k_base` or `cl100k_base`), loaded once per process from the npm ranks."""
    if name not in EXPECTED_SHA256:
        raise TokenizerUnavailable(f"Unknown encoding '{name}'; use one of {', '.join(EXPECTED_SHA256)}.")
    base = home if home is not None else Path.home() / ".forge"
    return _load(name, str(base / "tiktoken"), str(node_modules) if node_modules else None)


def encoding_name_for_model(model: str) -> str:
    """`cl100k_base` for the gpt-4 / gpt-3.5 generation, `o200k_base` for everything newer."""
    bare = model.removeprefix("ft:")
    if bare.startswith(("gpt-3.5", "gpt-35")) or (bare.startswith("gpt-4") and not bare.startswith(("gpt-4o", "gpt-4.1", "gpt-4.5"))):
        return "cl100k_base"
    return "o200k_base"


def counter_for_model(model: str, *, home: Path | None = None, node_modules: Path | None = None) -> Callable[[str], int]:
    """`count(text) -> tokens` in the encoding of `model`, for counting message after message."""
    encoding_ = encoding(encoding_name_for_model(model), home=home, node_modules=node_modules)
    core = encoding_._core_bpe  # the Rust core, called directly: this runs once per message

    def count(text: str) -> int:
        try:
            return len(core.encode_ordinary(text))
        except UnicodeEncodeError:  # lone surrogates (JSON allows "\ud800"): tiktoken's wrapper repairs them
            return len(encoding_.encode_ordinary(text))

    return count


def count_tokens(text: str, name: str = DEFAULT_ENCODING, *, home: Path | None = None) -> int:
    """Tokens in `text`; special-token text such as `<|endoftext|>` is counted as plain text, never refused."""
    return len(encoding(name, home=home).encode_ordinary(text))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
