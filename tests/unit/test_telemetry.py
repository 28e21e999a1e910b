import logging
import sys
import types

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import forge.telemetry as telemetry
from forge.config import load_settings


def test_spans_inside_a_job_scope_carry_the_job_id_and_spans_outside_do_not():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(telemetry.JobIdSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with telemetry.job_scope("01JOB"):
        with tracer.start_as_current_span("curate"):
            with tracer.start_as_current_span("write-blob"):
                pass
    with tracer.start_as_current_span("unrelated"):
        pass
    tags = {span.name: span.attributes.get(telemetry.JOB_ATTRIBUTE) for span in exporter.get_finished_spans()}
    assert tags == {"write-blob": "01JOB", "curate": "01JOB", "unrelated": None}


def test_log_lines_inside_a_job_scope_carry_the_job_id(caplog):
    telemetry.install_log_filter()
    log = logging.getLogger("forge.stages.curate")
    with caplog.at_level(logging.INFO, logger="forge"):
        with telemetry.job_scope("01JOB"):
            log.info("kept %d", 5)
        log.info("after")
    assert [(r.getMessage(), r.job_id) for r in caplog.records] == [("kept 5", "01JOB"), ("after", None)]


def test_azure_monitor_is_configured_only_with_a_connection_string(monkeypatch):
    calls = []
    fake = types.ModuleType("azure.monitor.opentelemetry")
    fake.configure_azure_monitor = lambda **options: calls.append(options)
    monkeypatch.setitem(sys.modules, "azure.monitor.opentelemetry", fake)
    monkeypatch.setattr(telemetry, "_configured", False)
    assert telemetry.configure_telemetry(load_settings()) is False and calls == []
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=00000000-0000-0000-0000-000000000000")
    assert telemetry.configure_telemetry(load_settings()) is True
    (options,) = calls
    assert options["logger_name"] == "forge"
    assert any(isinstance(p, telemetry.JobIdSpanProcessor) for p in options["span_processors"])
    assert "InstrumentationKey" not in repr(load_settings())
