"""The local engine: durabletask's in-memory backend, a worker running `distill`, and a client for it.

The backend keeps orchestration state in memory only, so the job record in Table storage stays the source of
truth: on start, `resume_unfinished` schedules every unfinished job again, and the idempotent activities find
their earlier results (the upload, the provider job) instead of repeating them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from concurrent import futures
from typing import Any, Callable

import grpc
from durabletask import client as dt_client
from durabletask import worker as dt_worker
from durabletask.internal.orchestrator_service_pb2_grpc import add_TaskHubSidecarServiceServicer_to_server
from durabletask.testing import InMemoryOrchestrationBackend

from forge.workflow import canary_loop, orchestrator
from forge.workflow.flow import DurableTaskFlow

Activity = Callable[[dict[str, Any]], dict[str, Any]]
LOOPBACK = "127.0.0.1"
log = logging.getLogger("forge.workflow")


def free_port() -> int:
    # The in-memory backend reports "localhost:0" when given port 0, so a real port is picked here.
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _orchestrate(ctx: Any, raw: dict[str, Any]) -> Any:
    return orchestrator.distill(DurableTaskFlow(ctx), raw)


_orchestrate.__name__ = orchestrator.NAME  # durabletask registers functions by name


def _canary(ctx: Any, raw: dict[str, Any]) -> Any:
    return canary_loop.loop(DurableTaskFlow(ctx), raw)


_canary.__name__ = canary_loop.NAME


def sdk_logger() -> logging.Logger:
    """durabletask logs every orchestration step at INFO and a normal shutdown as a warning: Forge keeps its errors.

    Failures still surface, as the failed job's reason and its events; `forge.durabletask` can be turned up."""
    logger = logging.getLogger("forge.durabletask")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.ERROR)
    return logger


class LoopbackBackend:
    """durabletask's in-memory backend served on 127.0.0.1 only.

    Its own `start()` listens on every interface (`[::]:port`), and the engine has no authentication: anyone who
    reaches the port could start, signal or read runs. So the backend is only the servicer here, on a server bound
    to loopback; its `stop()` still runs, to wake the work-item streams it holds open.
    """

    def __init__(self, port: int):
        self.port = port
        self.service = InMemoryOrchestrationBackend(port=port)
        self.server: grpc.Server | None = None

    def start(self) -> str:
        # No SO_REUSEPORT (gRPC's default on Linux): another process must not be able to bind the same port.
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=10), options=[("grpc.so_reuseport", 0)])
        add_TaskHubSidecarServiceServicer_to_server(self.service, server)
        server.add_insecure_port(f"{LOOPBACK}:{self.port}")  # raises RuntimeError if the port is taken
        server.start()
        self.server = server
        return f"{LOOPBACK}:{self.port}"

    def stop(self) -> None:
        self.service.stop()
        if self.server is not None:
            self.server.stop(None).wait()
            self.server = None


class LocalEngine:
    """Backend + worker + client in this process; `with LocalEngine(activities) as engine:` stops them all."""

    def __init__(self, activities: dict[str, Activity], port: int | None = None):
        self.activities = activities
        self.port = port or free_port()
        self.address = f"{LOOPBACK}:{self.port}"
        self.backend: LoopbackBackend | None = None
        self.worker: dt_worker.TaskHubGrpcWorker | None = None
        self.client: dt_client.TaskHubGrpcClient | None = None

    def start(self) -> "LocalEngine":
        self.backend = LoopbackBackend(self.port)
        self.backend.start()
        self.worker = dt_worker.TaskHubGrpcWorker(host_address=self.address, logger=sdk_logger())
        self.worker.add_orchestrator(_orchestrate)
        self.worker.add_orchestrator(_canary)
        for name, fn in self.activities.items():
            self.worker.add_activity(_activity(name, fn))
        self.worker.start()
        self.client = dt_client.TaskHubGrpcClient(host_address=self.address, logger=sdk_logger())
        return self

    def stop(self) -> None:
        # Always stop all three, or pytest (and `forge worker`) hangs on their threads.
        for part, close in ((self.worker, "stop"), (self.client, "close"), (self.backend, "stop")):
            if part is not None:
                try:
                    getattr(part, close)()
                except Exception as exc:  # stopping must go on even if one part is already gone
                    log.debug("stopping %s: %s", type(part).__name__, exc)
        self.worker = self.client = self.backend = None

    def __enter__(self) -> "LocalEngine":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class EngineClient:
    """Start, signal and inspect `distill` instances on a running engine (this process's or `forge worker`'s)."""

    def __init__(self, client: dt_client.TaskHubGrpcClient):
        self.client = client

    @classmethod
    def connect(cls, address: str) -> "EngineClient":
        return cls(dt_client.TaskHubGrpcClient(host_address=address, logger=sdk_logger()))

    def start(self, job_input: dict[str, Any]) -> bool:
        """Schedule `distill` with instance id = job id; False if that instance already exists (a double fire)."""
        try:
            self.client.schedule_new_orchestration(orchestrator.NAME, input=job_input, instance_id=job_input["job_id"])
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
                return False
            raise
        return True

    def ensure_loop(self, loop_input: dict[str, str]) -> bool:
        """Start a domain's canary control loop unless it runs already; True when it was started now."""
        instance = canary_loop.instance_id(loop_input["tenant"], loop_input["domain"])
        if self.runtime(instance) == "running":
            return False
        try:
            self.client.schedule_new_orchestration(canary_loop.NAME, input=loop_input, instance_id=instance)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
                return False
            raise
        return True

    def raise_event(self, instance_id: str, name: str, data: Any = None) -> bool:
        """Deliver an event; False if no such instance runs here."""
        try:
            self.client.raise_orchestration_event(instance_id, name, data=data)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return False
            raise
        return True

    def state(self, instance_id: str) -> Any:
        return self.client.get_orchestration_state(instance_id)

    def runtime(self, instance_id: str) -> str | None:
        """running, completed, failed or terminated; None when this engine has no such instance."""
        state = self.state(instance_id)
        if state is None:
            return None
        name = state.runtime_status.name
        return {"COMPLETED": "completed", "FAILED": "failed", "TERMINATED": "terminated",
                "CANCELED": "terminated"}.get(name, "running")

    def terminate(self, instance_id: str, reason: str) -> None:
        self.client.terminate_orchestration(instance_id, output={"terminated": reason})

    def wait(self, instance_id: str, timeout_s: float) -> Any:
        return self.client.wait_for_orchestration_completion(instance_id, timeout=int(timeout_s))

    def close(self) -> None:
        self.client.close()


class LocalOrchestrations:
    """`services.runs.Orchestrations` over an EngineClient (its gRPC calls run in a worker thread)."""

    def __init__(self, client: EngineClient):
        self.client = client

    async def start(self, job_input: dict[str, Any]) -> bool:
        return await asyncio.to_thread(self.client.start, job_input)

    async def raise_event(self, instance_id: str, name: str, data: Any = None) -> bool:
        return await asyncio.to_thread(self.client.raise_event, instance_id, name, data)

    async def state(self, instance_id: str) -> str | None:
        return await asyncio.to_thread(self.client.runtime, instance_id)

    async def terminate(self, instance_id: str, reason: str) -> None:
        await asyncio.to_thread(self.client.terminate, instance_id, reason)


def _activity(name: str, fn: Activity) -> Callable[[Any, dict[str, Any]], dict[str, Any]]:
    def run(ctx: Any, payload: dict[str, Any]) -> dict[str, Any]:
        return fn(payload)

    run.__name__ = name
    return run
