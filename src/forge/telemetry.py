"""OpenTelemetry to Application Insights when configured, with the job id on every span and log line of a run."""

from __future__ import annotations

import contextvars
import logging
from contextlib import contextmanager
from typing import Any, Iterator

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor

from forge.config import Settings

JOB_ATTRIBUTE = "forge.job_id"
_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("forge_job_id", default=None)
_configured = False


def current_job_id() -> str | None:
    return _job_id.get()


@contextmanager
def job_scope(job_id: str, name: str = "forge.job") -> Iterator[Any]:
    """Everything inside — spans, log lines, the threads' work it awaits — is tagged with `job_id`."""
    token = _job_id.set(job_id)
    try:
        with trace.get_tracer("forge").start_as_current_span(name) as span:
            yield span
    finally:
        _job_id.reset(token)


class JobIdSpanProcessor(SpanProcessor):
    """Stamps each span started inside a job scope with the job id, so a run's spans can be queried together."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        job_id = _job_id.get()
        if job_id is not None:
            span.set_attribute(JOB_ATTRIBUTE, job_id)


def install_log_filter() -> None:
    """Give every log record a `job_id` attribute (exported by Azure Monitor as a custom dimension)."""
    # A record factory, not a logger filter: filters on "forge" never see records of its child loggers.
    previous = logging.getLogRecordFactory()
    if getattr(previous, "forge_job_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.job_id = _job_id.get()
        return record

    factory.forge_job_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def configure_telemetry(settings: Settings) -> bool:
    """Send traces and logs to Application Insights if its connection string is set; True if configured."""
    global _configured
    install_log_filter()
    if settings.applicationinsights_connection_string is None or _configured:
        return _configured
    from azure.monitor.opentelemetry import configure_azure_monitor  # the `azure` extra; present in Azure

    options: dict[str, Any] = {
        "connection_string": settings.applicationinsights_connection_string.get_secret_value(),
        "logger_name": "forge",
        "span_processors": [JobIdSpanProcessor()],
    }
    if settings.applicationinsights_authentication_string:
        # Local auth is off on the Application Insights resource: sign in with the app's managed identity.
        from azure.identity import DefaultAzureCredential

        options["credential"] = DefaultAzureCredential()
    configure_azure_monitor(**options)
    _configured = True
    return True
