"""`ContainerAppsSessionsRunner`: untrusted Python in an Azure Container Apps dynamic session (Hyper-V isolated).

Each run asks the session pool (FORGE_SANDBOX_POOL_ENDPOINT, a PythonLTS code-interpreter pool) for a new session
by a fresh identifier, with the app's identity (role "Azure ContainerApps Session Executor" on the pool). In the
session, a small program of ours runs the answer in a child interpreter under the same rlimits as the local jail,
kills its process group at the time limit, and prints one JSON line: the exit status and the capped output.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import httpx

from forge.evaluation.sandbox import LIMITS_SCRIPT, SandboxLimits, SandboxUnavailable, TestRun, limit_args, verdict

API_VERSION = "2024-02-02-preview"
SCOPE = "https://dynamicsessions.io/.default"
ATTEMPTS = 3  # a busy pool (429) or a blip (5xx, a dropped connection) is tried again
SESSION_START_S = 60.0  # allocating a session, on top of the run's own time limit
RETRY_STATUS = {408, 429, 500, 502, 503, 504}

# Runs in the session's kernel; its stdout is this one line, since the answer's output goes to a capped file.
_SESSION = r'''
import json, os, signal, subprocess, sys, tempfile
job = json.loads(JOB)
if os.geteuid() == 0:  # as in the local jail: a uid of its own, so that the process limit binds
    job["limits"][-1] = str(1_000_000_000 + int.from_bytes(os.urandom(3), "big"))
folder = tempfile.mkdtemp(prefix="forge-")
path = os.path.join(folder, "solution.py")
with open(path, "w", encoding="utf-8") as f:
    f.write(job["source"])
log = os.path.join(folder, "output.txt")
stopped = None
with open(log, "wb") as out:
    proc = subprocess.Popen([sys.executable, "-I", "-S", "-B", "-X", "utf8", "-c", job["script"], path, *job["limits"]],
                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=folder,
                            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, start_new_session=True)
    try:
        proc.wait(job["time_s"])
    except subprocess.TimeoutExpired:
        stopped = "time"
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
with open(log, "rb") as f:
    output = f.read(job["cap"] + 1)
print(json.dumps({"status": proc.returncode, "stopped": stopped, "output": output.decode("utf-8", "replace")}))
'''


class ContainerAppsSessionsRunner:
    retry_after_s = 1.0  # doubled on each further try

    def __init__(self, endpoint: str, *, credential: Any = None, timeout_s: float = SESSION_START_S) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._credential = credential
        self._token: Any = None
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=10.0))
        self._timeout_s = timeout_s

    def check(self) -> None:
        """A token for the pool's audience; the pool itself answers on the first run."""
        self._bearer()

    def run(self, source: str, limits: SandboxLimits) -> TestRun:
        job = {"source": source, "script": LIMITS_SCRIPT, "limits": limit_args(limits), "time_s": limits.time_s + 1,
               "cap": limits.output_kb << 10}
        code = f"JOB = {json.dumps(job)!r}\n{_SESSION}"
        properties = self._execute(code, timeout_s=limits.time_s + self._timeout_s)
        stdout = str(properties.get("stdout") or "").strip().splitlines()
        try:
            outcome = json.loads(stdout[-1])
            status, output = int(outcome["status"]), str(outcome["output"]).encode("utf-8")
        except (IndexError, ValueError, KeyError, TypeError):
            raise SandboxUnavailable(f"The code session did not run Forge's program (status "
                                     f"{properties.get('status')!r}: {str(properties.get('stderr'))[-300:]}); "
                                     "check that the pool is a PythonLTS code-interpreter pool.") from None
        stopped = None
        if outcome.get("stopped") == "time":
            stopped = f"stopped after {limits.time_s:g}s"
        elif status != 0 and len(output) >= limits.output_kb << 10:
            stopped = f"printed more than {limits.output_kb} KiB"
        return verdict(status, output, limits, stopped=stopped)

    def _execute(self, code: str, *, timeout_s: float) -> dict[str, Any]:
        # A new identifier is a new session: nothing one answer leaves behind is seen by the next.
        params = {"api-version": API_VERSION, "identifier": f"forge-{uuid.uuid4().hex}"}
        body = {"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": code}}
        problem = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(self.retry_after_s * 2 ** (attempt - 1))
            try:
                response = self._http.post(f"{self.endpoint}/code/execute", params=params, json=body,
                                           headers={"Authorization": f"Bearer {self._bearer()}"}, timeout=timeout_s)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in (401, 403):
                raise SandboxUnavailable(
                    f"The code session pool refused Forge's identity (HTTP {response.status_code}). Give the app's "
                    "managed identity the role Azure ContainerApps Session Executor on the pool (infra does this "
                    "when enableCodeSessions is true), or check FORGE_SANDBOX_POOL_ENDPOINT.")
            if response.status_code in RETRY_STATUS:
                problem = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise SandboxUnavailable(f"The code session pool answered HTTP {response.status_code} "
                                         f"({response.text[:300]}); check FORGE_SANDBOX_POOL_ENDPOINT.")
            properties = response.json().get("properties")
            if not isinstance(properties, dict):
                raise SandboxUnavailable("The code session pool answered without `properties`; check that "
                                         "FORGE_SANDBOX_POOL_ENDPOINT is a pool's management endpoint.")
            return properties
        raise SandboxUnavailable(f"The code session pool at {self.endpoint} did not answer ({problem}) after "
                                 f"{ATTEMPTS} tries; no verdict was recorded. Evaluate again later.")

    def _bearer(self) -> str:
        with self._lock:
            if self._token is None or self._token.expires_on < time.time() + 300:
                if self._credential is None:
                    from azure.identity import DefaultAzureCredential  # the app's managed identity in Azure

                    self._credential = DefaultAzureCredential()
                try:
                    self._token = self._credential.get_token(SCOPE)
                except Exception as exc:  # azure-identity raises several types; all mean "no token"
                    raise SandboxUnavailable(f"No token for the code session pool ({exc}); in Azure the app's "
                                             "managed identity provides it, elsewhere `az login`.") from exc
            return self._token.token
