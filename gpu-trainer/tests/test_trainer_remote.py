"""Inputs from https/SAS URLs and outputs to a Blob container, against a Blob-like server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from forge_trainer.run import train
from forge_trainer.tiny import synthetic_records, write_jsonl

SAS = "sv=2023-11-03&sr=c&sp=rcw&sig=SECRET-SIGNATURE"


class BlobLike(BaseHTTPRequestHandler):
    """Get Blob and Put Blob as Azure Storage speaks them, checking what Put Blob requires."""

    blobs: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802
        path, query = urlsplit(self.path).path, urlsplit(self.path).query
        body = self.blobs.get(path)
        self.send_response(200 if body is not None and "sig=" in query else 404)
        self.end_headers()
        self.wfile.write(body or b"")

    def do_PUT(self):  # noqa: N802
        split = urlsplit(self.path)
        ok = self.headers.get("x-ms-blob-type") == "BlockBlob" and "sig=" in split.query
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if ok:
            self.blobs[split.path] = body
        self.send_response(201 if ok else 400)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def blob_server():
    BlobLike.blobs = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), BlobLike)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", BlobLike.blobs
    server.shutdown()
    thread.join()


def test_a_run_reads_sas_urls_and_uploads_its_outputs_without_leaking_the_signature(make_config, tmp_path,
                                                                                       blob_server):
    url, blobs = blob_server
    source = write_jsonl(tmp_path / "src.jsonl", synthetic_records(20, seed=4))
    blobs["/datasets/t1/d1/train.jsonl"] = source.read_bytes()
    config = make_config("train.epochs=1", f"data.train={url}/datasets/t1/d1/train.jsonl?{SAS}", "data.valid=null",
                         f"output.upload_url={url}/models/t1/job1?{SAS}")
    assert train(config) == 0
    out = Path(config.output.dir)
    assert (out / "inputs" / "train.jsonl").read_bytes() == source.read_bytes()
    uploaded = {name.removeprefix("/models/t1/job1/") for name in blobs if name.startswith("/models/")}
    assert {"status.json", "metrics.jsonl", "summary.json", "adapter/adapter_model.safetensors",
            "adapter/adapter_config.json"} <= uploaded
    assert json.loads(blobs["/models/t1/job1/status.json"])["state"] == "succeeded"
    assert blobs["/models/t1/job1/adapter/adapter_model.safetensors"] == (out / "adapter" /
                                                                         "adapter_model.safetensors").read_bytes()
    for name in ("status.json", "summary.json"):
        assert "SECRET" not in (out / name).read_text()


def test_an_input_url_that_cannot_be_read_fails_the_run_without_its_signature(make_config, blob_server):
    url, _ = blob_server
    config = make_config(f"data.train={url}/datasets/none.jsonl?{SAS}", "data.valid=null")
    assert train(config) == 1
    status = json.loads((Path(config.output.dir) / "status.json").read_text())
    assert "could not download" in status["error"] and "SECRET" not in status["error"]
