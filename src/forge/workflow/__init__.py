"""Orchestration: the one pipeline (`orchestrator.distill`), its `Flow` adapters, and the local engine."""
