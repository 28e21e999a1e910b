"""Offline token counts: tiktoken's rank files rebuilt from the npm package, checked, and used by tiktoken."""

import hashlib

import pytest

from forge import tokens


def test_rank_files_are_rebuilt_byte_for_byte_and_named_as_tiktokens_cache_expects(tmp_path):
    tokens.ensure_ranks(tmp_path)
    for name, digest in tokens.EXPECTED_SHA256.items():
        path = tokens.cache_file(tmp_path, name)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    url = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
    assert tokens.cache_file(tmp_path, "o200k_base").name == hashlib.sha1(url.encode()).hexdigest()


def test_a_corrupted_cache_file_is_rebuilt(tmp_path):
    target = tokens.cache_file(tmp_path, "cl100k_base")
    tokens.ensure_ranks(tmp_path, names=("cl100k_base",))
    target.write_bytes(b"garbage")
    tokens.ensure_ranks(tmp_path, names=("cl100k_base",))
    assert hashlib.sha256(target.read_bytes()).hexdigest() == tokens.EXPECTED_SHA256["cl100k_base"]


def test_missing_ranks_say_to_run_make_setup(tmp_path, monkeypatch):
    monkeypatch.setattr(tokens, "find_npm_encoders", lambda node_modules=None: None)
    with pytest.raises(tokens.TokenizerUnavailable, match="make setup"):
        tokens.ensure_ranks(tmp_path / "empty")


def test_counts_match_known_encodings(tmp_path):
    o200k = tokens.encoding("o200k_base", home=tmp_path)
    cl100k = tokens.encoding("cl100k_base", home=tmp_path)
    assert cl100k.encode("hello world") == [15339, 1917]
    assert o200k.decode(o200k.encode("Grüße, 世界!")) == "Grüße, 世界!"
    assert tokens.count_tokens("<|endoftext|>", "cl100k_base") > 1  # counted as text, never refused
    assert tokens.encoding_name_for_model("gpt-4.1-mini-2025-04-14") == "o200k_base"
    assert tokens.encoding_name_for_model("gpt-3.5-turbo-0125") == "cl100k_base"


def test_a_models_counter_counts_in_its_encoding_and_survives_lone_surrogates(tmp_path):
    count = tokens.counter_for_model("gpt-3.5-turbo-0125", home=tmp_path)
    assert count("hello world") == 2
    assert count("broken \ud800 text") > 0


def test_without_npm_ranks_and_without_a_network_the_error_says_to_run_make_setup(tmp_path, monkeypatch):
    import tiktoken

    def offline(name):  # tiktoken's own download: the blob host cannot be reached from here
        raise ConnectionError("no route to host")

    monkeypatch.setattr(tokens, "find_npm_encoders", lambda node_modules=None: None)
    monkeypatch.setattr(tokens, "_loaded", {})
    monkeypatch.setattr(tiktoken, "get_encoding", offline)
    with pytest.raises(tokens.TokenizerUnavailable, match="make setup"):
        tokens.encoding("o200k_base", home=tmp_path)
