"""A contract fake of OpenAI's and Azure OpenAI's files and fine-tuning API (plus chat completions), over real HTTP.

The real `openai` SDK talks to it: `OpenAI(base_url=f"{url}/v1", api_key=API_KEY)`, or
`AzureOpenAI(azure_endpoint=url, api_version=…, api_key=AZURE_KEY)` (paths under /openai; `api-version` required).
As time passes (`step_s` a phase), a job moves validating_files → queued → running → succeeded, validating its
training file as OpenAI does and writing events (loss metrics) and epoch checkpoints. Lists are newest first with
`after` cursors, as OpenAI's are. `fail(...)` injects 429 (with Retry-After), 5xx, 4xx or slow answers;
`outage(seconds)` makes the files and fine-tuning API answer 500 and 429 in turn for a while (training goes on).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from typing import Any, Callable, Iterator

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import JSONResponse, Response

from forge.api.server import serving

API_KEY = "sk-fake-openai"
AZURE_KEY = "fake-azure-key"
ORG = "org-forge-fake"
MIN_EXAMPLES = 10  # OpenAI refuses training files with fewer examples


@dataclass
class Fault:
    method: str
    path: str  # after the /v1 or /openai prefix, e.g. "/fine_tuning/jobs"
    status: int
    times: int
    message: str
    retry_after: str | None = None
    after_commit: bool = False  # do the work, then answer the error (a lost response: the retry must not repeat it)
    delay_s: float = 0.0  # answer this late (longer than the client's timeout: a timeout)


@contextmanager
def running(**options: Any) -> Iterator["FakeOpenAI"]:
    """A FakeOpenAI served on 127.0.0.1 for the block; its base URL is `.url`."""
    server = FakeOpenAI(**options)
    with serving(server.app) as url:
        server.url = url
        yield server


class FakeOpenAI:
    def __init__(self, *, step_s: float = 0.05, steps: int = 6, process_s: float = 0.05):
        self.step_s, self.steps, self.process_s = step_s, steps, process_s
        self.url = ""
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.faults: list[Fault] = []
        self.down_until = 0.0  # monotonic time an outage ends
        self.refused = 0  # calls answered with an outage's error
        self.frozen = False  # True: jobs stay where they are until it is False again (then catch up)
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self.app = FastAPI()
        self.app.middleware("http")(self._gate)
        for prefix in ("/v1", "/openai"):
            r = APIRouter(prefix=prefix)
            r.add_api_route("/files", self.upload_file, methods=["POST"])
            r.add_api_route("/files", self.list_files, methods=["GET"])
            r.add_api_route("/files/{file_id}", self.get_file, methods=["GET"])
            r.add_api_route("/fine_tuning/jobs", self.create_job, methods=["POST"])
            r.add_api_route("/fine_tuning/jobs", self.list_jobs, methods=["GET"])
            r.add_api_route("/fine_tuning/jobs/{job_id}", self.get_job, methods=["GET"])
            r.add_api_route("/fine_tuning/jobs/{job_id}/cancel", self.cancel_job, methods=["POST"])
            r.add_api_route("/fine_tuning/jobs/{job_id}/events", self.list_events, methods=["GET"])
            r.add_api_route("/fine_tuning/jobs/{job_id}/checkpoints", self.list_checkpoints, methods=["GET"])
            r.add_api_route("/chat/completions", self.chat, methods=["POST"])
            self.app.include_router(r)

    # --- what tests use ---------------------------------------------------------------------------------

    def fail(self, method: str, path: str, status: int, *, times: int = 1, message: str = "injected failure",
             retry_after: str | None = None, after_commit: bool = False, delay_s: float = 0.0) -> None:
        """The next `times` calls of `method path` answer `status` (or only arrive late, when `delay_s`)."""
        with self.lock:
            self.faults.append(Fault(method, path, status, times, message, retry_after, after_commit, delay_s))

    def outage(self, seconds: float, retry_after: str = "0.05") -> None:
        """For `seconds` from now, every files and fine-tuning call answers 500 or 429 (with Retry-After) in turn."""
        with self.lock:
            self.down_until = time.monotonic() + seconds
        self.outage_retry_after = retry_after

    def calls(self, method: str, path: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p == path)

    # --- auth, recording, injected faults ---------------------------------------------------------------

    async def _gate(self, request: Request, call_next: Callable) -> Response:
        path = request.url.path
        prefix = "/openai" if path.startswith("/openai") else "/v1"
        rest = path[len(prefix):]
        if prefix == "/v1" and request.headers.get("authorization") != f"Bearer {API_KEY}":
            return _error(401, "Incorrect API key provided.", "invalid_api_key", kind="invalid_request_error")
        if prefix == "/openai":
            if request.headers.get("api-key") != AZURE_KEY:
                return _error(401, "Access denied due to invalid subscription key or wrong API endpoint.", "401")
            if not request.query_params.get("api-version"):
                return _error(404, "Resource not found", "404")
        with self.lock:
            self.requests.append((request.method, rest))
            fault = next((f for f in self.faults if f.method == request.method and f.path == rest and f.times), None)
            if fault:
                fault.times -= 1
            down = time.monotonic() < self.down_until and not rest.startswith("/chat")
            if down:
                self.refused += 1
                status = (500, 429)[self.refused % 2]
        if down:
            return _error(status, "The service is temporarily unavailable.", str(status),
                          headers={"retry-after": self.outage_retry_after})
        if fault and fault.delay_s:
            await asyncio.sleep(fault.delay_s)
            return await call_next(request)
        if fault and fault.after_commit:
            await call_next(request)
        if fault:
            headers = {"retry-after": fault.retry_after} if fault.retry_after else None
            return _error(fault.status, fault.message, str(fault.status), headers=headers)
        return await call_next(request)

    # --- files ------------------------------------------------------------------------------------------

    async def upload_file(self, request: Request) -> Response:
        fields = _multipart(await request.body(), request.headers.get("content-type", ""))
        if "file" not in fields or fields.get("purpose", (None, b""))[1] != b"fine-tune":
            return _error(400, "Send a file with purpose 'fine-tune'.", "invalid_request", param="purpose")
        filename, content = fields["file"]
        file_id = f"file-{next(self._ids):06d}"
        broken = next((i for i, line in enumerate(content.splitlines(), 1) if line.strip() and not _json(line)), None)
        self.contents[file_id] = content
        self.files[file_id] = {
            "id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
            "filename": filename or "upload.jsonl", "purpose": "fine-tune", "status": "uploaded",
            "status_details": f"Invalid file format: line {broken} is not JSON." if broken else None,
            "_t0": time.monotonic(),
        }
        return JSONResponse(self._file(file_id))

    async def list_files(self, request: Request) -> Response:
        purpose = request.query_params.get("purpose")
        items = [self._file(i) for i in reversed(self.files) if not purpose or self.files[i]["purpose"] == purpose]
        return _page(items, request)

    async def get_file(self, file_id: str) -> Response:
        if file_id not in self.files:
            return _error(404, f"No such File object: {file_id}", "file_not_found")
        return JSONResponse(self._file(file_id))

    def _file(self, file_id: str) -> dict[str, Any]:
        f = self.files[file_id]
        if f["status"] == "uploaded" and time.monotonic() - f["_t0"] >= self.process_s:
            f["status"] = "error" if f["status_details"] else "processed"
        return {k: v for k, v in f.items() if not k.startswith("_")}

    # --- fine-tuning jobs -------------------------------------------------------------------------------

    async def create_job(self, request: Request) -> Response:
        body = json.loads(await request.body())
        if not body.get("model"):
            return _error(400, "Missing required parameter: 'model'.", "missing_required_parameter", param="model")
        for param in ("training_file", "validation_file"):
            file_id = body.get(param)
            if file_id is None and param == "validation_file":
                continue
            if file_id not in self.files:
                return _error(400, f"invalid {param}: {file_id}", "invalid_file_id", param=param)
            if self._file(file_id)["status"] != "processed":
                return _error(400, f"File {file_id} is still being processed and is not ready to be used for "
                                   "fine-tuning. Please try again later.", "file_not_ready", param=param)
        if len(body.get("suffix") or "") > 64:
            return _error(400, "suffix must be at most 64 characters", "invalid_suffix", param="suffix")
        hyper = ((body.get("method") or {}).get("supervised") or {}).get("hyperparameters") \
            or body.get("hyperparameters") or {}
        job_id = f"ftjob-{next(self._ids):06d}"
        self.jobs[job_id] = {
            "id": job_id, "object": "fine_tuning.job", "created_at": int(time.time()), "error": None,
            "fine_tuned_model": None, "finished_at": None, "model": body["model"], "organization_id": ORG,
            "result_files": [], "seed": body.get("seed") or 0, "status": "validating_files", "trained_tokens": None,
            "training_file": body["training_file"], "validation_file": body.get("validation_file"),
            "estimated_finish": None, "integrations": None, "metadata": body.get("metadata"),
            "suffix": body.get("suffix"), "method": body.get("method") or {"type": "supervised"},
            "hyperparameters": {"n_epochs": hyper.get("n_epochs", "auto"), "batch_size": hyper.get("batch_size", "auto"),
                                "learning_rate_multiplier": hyper.get("learning_rate_multiplier", "auto")},
            "_t0": time.monotonic(), "_done": 0, "_events": [], "_checkpoints": [],
        }
        self._event(self.jobs[job_id], f"Validating training file: {body['training_file']}")
        return JSONResponse(self._job(job_id))

    async def list_jobs(self, request: Request) -> Response:
        wanted = {k[len("metadata["):-1]: v for k, v in request.query_params.items()
                  if k.startswith("metadata[") and k.endswith("]")}
        items = [self._job(i) for i in reversed(self.jobs)
                 if all((self.jobs[i]["metadata"] or {}).get(k) == v for k, v in wanted.items())]
        return _page(items, request)

    async def get_job(self, job_id: str) -> Response:
        if job_id not in self.jobs:
            return _error(404, f"Could not find fine-tune: {job_id}", "fine_tune_not_found")
        return JSONResponse(self._job(job_id))

    async def cancel_job(self, job_id: str) -> Response:
        if job_id not in self.jobs:
            return _error(404, f"Could not find fine-tune: {job_id}", "fine_tune_not_found")
        job = self.jobs[job_id]
        self._advance(job)
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return _error(400, f"Job has already completed: {job_id}", "invalid_request")
        job.update(status="cancelled", finished_at=int(time.time()))
        self._event(job, "Fine-tuning job cancelled")
        return JSONResponse(self._job(job_id))

    async def list_events(self, job_id: str, request: Request) -> Response:
        if job_id not in self.jobs:
            return _error(404, f"Could not find fine-tune: {job_id}", "fine_tune_not_found")
        self._advance(self.jobs[job_id])
        return _page(list(reversed(self.jobs[job_id]["_events"])), request, default_limit=20)

    async def list_checkpoints(self, job_id: str, request: Request) -> Response:
        if job_id not in self.jobs:
            return _error(404, f"Could not find fine-tune: {job_id}", "fine_tune_not_found")
        self._advance(self.jobs[job_id])
        return _page(list(reversed(self.jobs[job_id]["_checkpoints"])), request, default_limit=10)

    def _job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        self._advance(job)
        return {k: v for k, v in job.items() if not k.startswith("_") and k != "suffix"}

    def _advance(self, job: dict[str, Any]) -> None:
        """Play the job's timeline up to now: one phase per `step_s`."""
        if job["status"] in ("failed", "cancelled") or self.frozen:
            return
        now_step = int((time.monotonic() - job["_t0"]) / self.step_s)
        timeline = self._timeline(job)
        while job["_done"] < len(timeline) and job["_done"] <= now_step and job["status"] not in ("failed",):
            timeline[job["_done"]](job)
            job["_done"] += 1

    def _timeline(self, job: dict[str, Any]) -> list[Callable[[dict[str, Any]], None]]:
        epochs = job["hyperparameters"]["n_epochs"]
        epochs = epochs if isinstance(epochs, int) else 2
        per_epoch = max(1, self.steps // epochs)
        return [lambda j: None, self._validate, lambda j: self._set(j, "running", "Fine-tuning job started"),
                *[(lambda j, s=s: self._step(j, s, per_epoch)) for s in range(1, self.steps + 1)], self._succeed]

    def _validate(self, job: dict[str, Any]) -> None:
        problem = _training_file_problem(self.contents[job["training_file"]])
        if problem:
            job.update(status="failed", finished_at=int(time.time()),
                       error={"code": "invalid_training_file", "param": "training_file", "message": problem})
            self._event(job, problem, level="error")
            return
        self._set(job, "queued", "Files validated, moving job to queued state")

    def _step(self, job: dict[str, Any], step: int, per_epoch: int) -> None:
        loss = round(2.0 / (1 + 0.5 * step), 4)
        data = {"step": step, "train_loss": loss, "train_mean_token_accuracy": round(1 - loss / 3, 4),
                "total_steps": self.steps}
        if step % 2 == 0:
            data["valid_loss"] = round(loss * 1.1, 4)
        self._event(job, f"Step {step}/{self.steps}: training loss={loss}", type="metrics", data=data)
        if step % per_epoch == 0:
            n = len(job["_checkpoints"]) + 1
            job["_checkpoints"].append({
                "id": f"ftckpt-{job['id'][-6:]}-{n}", "object": "fine_tuning.job.checkpoint",
                "created_at": int(time.time()), "fine_tuning_job_id": job["id"], "step_number": step,
                "fine_tuned_model_checkpoint": f"{self._model_name(job)}:ckpt-step-{step}",
                "metrics": {"step": step, "train_loss": loss, "valid_loss": round(loss * 1.1, 4)},
            })

    def _succeed(self, job: dict[str, Any]) -> None:
        epochs = job["hyperparameters"]["n_epochs"]
        tokens = sum(len(line.split()) for line in self.contents[job["training_file"]].splitlines())
        job.update(status="succeeded", finished_at=int(time.time()), fine_tuned_model=self._model_name(job),
                   trained_tokens=tokens * (epochs if isinstance(epochs, int) else 2))
        self._event(job, f"New fine-tuned model created: {job['fine_tuned_model']}")
        self._event(job, "The job has successfully completed")

    def _model_name(self, job: dict[str, Any]) -> str:
        return f"ft:{job['model']}:forge-fake:{job['suffix'] or ''}:{job['id'][-6:]}"

    def _set(self, job: dict[str, Any], status: str, message: str) -> None:
        job["status"] = status
        self._event(job, message)

    def _event(self, job: dict[str, Any], message: str, *, level: str = "info", type: str = "message",
               data: dict[str, Any] | None = None) -> None:
        job["_events"].append({"object": "fine_tuning.job.event", "id": f"ftevent-{next(self._ids):06d}",
                               "created_at": int(time.time()), "level": level, "message": message,
                               "data": data or {}, "type": type})

    # --- chat completions (serving a fine-tuned model) --------------------------------------------------

    async def chat(self, request: Request) -> Response:
        body = json.loads(await request.body())
        users = [m.get("content") for m in body.get("messages", []) if m.get("role") == "user"]
        text = f"{body.get('model')}: {users[-1] if users else ''}"
        return JSONResponse({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": len(text.split()), "total_tokens": 5 + len(text.split())},
        })


def _training_file_problem(content: bytes) -> str | None:
    """What OpenAI's file validation says of a training file, or None when it trains."""
    examples = 0
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        record = _json(line)
        messages = record.get("messages") if isinstance(record, dict) else None
        if not isinstance(messages, list) or not any(isinstance(m, dict) and m.get("role") == "assistant"
                                                     for m in messages):
            return (f"The job failed due to an invalid training file. Invalid file format. Line {number}, "
                    "key \"messages\": each example needs a list of messages with an assistant message.")
        examples += 1
    if examples < MIN_EXAMPLES:
        return f"Training file has {examples} example(s), but must have at least {MIN_EXAMPLES} examples"
    return None


def _json(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


def _multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """name → (filename, bytes) of a multipart/form-data body."""
    message = BytesParser(policy=policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


def _page(items: list[dict[str, Any]], request: Request, default_limit: int = 10_000) -> Response:
    after = request.query_params.get("after")
    limit = int(request.query_params.get("limit") or default_limit)
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    return JSONResponse({"object": "list", "data": items[:limit], "has_more": len(items) > limit})


def _error(status: int, message: str, code: str, *, param: str | None = None, kind: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    kind = kind or ("server_error" if status >= 500 else "rate_limit_exceeded" if status == 429
                    else "invalid_request_error")
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status, headers=headers)
