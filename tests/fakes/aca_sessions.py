"""A contract fake of an Azure Container Apps dynamic sessions pool (Python code interpreter), over real HTTP.

It checks what the real pool's data plane checks or documents — `POST /code/execute`, `api-version` and
`identifier` in the query, a bearer token, the body `{"properties": {"codeInputType": "inline", "executionType":
"synchronous", "code": …}}` — and answers as the pool does: `properties.status`, `stdout`, `stderr`, `result`,
`executionTimeInMilliseconds`. It really runs the code, in a subprocess of the test machine: only tests' own
programs reach it. `fail_next` answers the next calls with a status (429, 503, 403…) instead.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

API_VERSION = "2024-02-02-preview"
TOKEN = "fake-dynamicsessions-token"  # what the patched credential hands out


class SessionPool:
    def __init__(self) -> None:
        self.identifiers: list[str] = []  # one per execution, in order
        self.codes: list[str] = []
        self.fail_next: list[int] = []
        self.app = FastAPI()
        self.app.add_api_route("/code/execute", self.execute, methods=["POST"])

    async def execute(self, request: Request) -> JSONResponse:
        if request.query_params.get("api-version") != API_VERSION:
            return _error(400, "InvalidApiVersion", f"api-version must be {API_VERSION}")
        identifier = request.query_params.get("identifier", "")
        if not identifier:
            return _error(400, "MissingIdentifier", "identifier is required")
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return _error(401, "Unauthorized", "a bearer token for https://dynamicsessions.io is required")
        if self.fail_next:
            return _error(self.fail_next.pop(0), "Injected", "the test asked for this")
        body = await request.json()
        properties = body.get("properties") if isinstance(body, dict) else None
        if set(body) != {"properties"} or not isinstance(properties, dict) or \
                set(properties) != {"codeInputType", "executionType", "code"} or \
                properties["codeInputType"] != "inline" or properties["executionType"] != "synchronous" or \
                not isinstance(properties["code"], str):
            return _error(400, "InvalidRequest", f"unexpected body: {body!r:.200}")
        self.identifiers.append(identifier)
        self.codes.append(properties["code"])
        result = await asyncio.to_thread(_run, properties["code"])
        return JSONResponse({"$id": "1", "properties": {"$id": "2", **result}})


def _run(code: str) -> dict[str, Any]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return {"status": "Success" if proc.returncode == 0 else "Failure", "stdout": proc.stdout, "stderr": proc.stderr,
            "result": "", "executionTimeInMilliseconds": int((time.monotonic() - started) * 1000)}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
