"""Inputs from https/Blob SAS URLs and outputs to a Blob container, over plain HTTP (or a managed identity)."""

from __future__ import annotations

import shutil
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterable

BLOB_API_VERSION = "2023-11-03"


def is_url(value: str) -> bool:
    return value.startswith(("https://", "http://"))


def fetch(url: str, dest: Path) -> Path:
    """Stream `url` to `dest` (through a temp file); the SAS query, if any, authorises the read."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    request = urllib.request.Request(url, headers={"x-ms-version": BLOB_API_VERSION})
    try:
        with urllib.request.urlopen(request, timeout=60) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except OSError as exc:  # URLError and HTTPError are OSErrors
        raise OSError(f"could not download {redact(url)}: {exc}; check the URL and that its SAS has not expired")
    tmp.replace(dest)
    return dest


def redact(url: str) -> str:
    """The URL without its query, so a SAS signature never reaches a log or status.json."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class BlobUploader:
    """Uploads run files under a Blob container URL (`https://acct.blob.core.windows.net/container/prefix?sas`).

    With a SAS in the URL each file is one `Put Blob` over HTTP; without one, azure-identity's
    DefaultAzureCredential (the compute's managed identity) signs the requests through azure-storage-blob.
    """

    def __init__(self, url: str, root: Path):
        parts = urllib.parse.urlsplit(url)
        self.base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        self.query = parts.query
        self.root = root
        self._container = None

    def upload(self, paths: Iterable[Path]) -> None:
        for path in paths:
            if path.is_dir():
                self.upload(p for p in sorted(path.rglob("*")) if p.is_file())
            elif path.is_file():
                self._put(path, path.relative_to(self.root).as_posix())

    def _put(self, path: Path, name: str) -> None:
        if self.query or not self._has_identity():
            url = f"{self.base}/{urllib.parse.quote(name)}" + (f"?{self.query}" if self.query else "")
            headers = {"x-ms-blob-type": "BlockBlob", "x-ms-version": BLOB_API_VERSION,
                       "Content-Length": str(path.stat().st_size)}
            with open(path, "rb") as body:
                request = urllib.request.Request(url, data=body, method="PUT", headers=headers)
                try:
                    urllib.request.urlopen(request, timeout=300).close()
                except OSError as exc:
                    raise OSError(f"could not upload {name} to {self.base}: {exc}") from None
            return
        with open(path, "rb") as body:
            self._container.upload_blob(self._prefix + name, body, overwrite=True)

    def _has_identity(self) -> bool:
        if self._container is not None:
            return True
        try:
            from azure.identity import DefaultAzureCredential
            from azure.storage.blob import ContainerClient
        except ImportError:
            raise OSError("uploading without a SAS needs `pip install forge-trainer[azure]` (managed identity)")
        parts = urllib.parse.urlsplit(self.base)
        container, _, prefix = parts.path.lstrip("/").partition("/")
        account = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        self._prefix = f"{prefix}/" if prefix else ""
        self._container = ContainerClient(account, container, credential=DefaultAzureCredential())
        return True
