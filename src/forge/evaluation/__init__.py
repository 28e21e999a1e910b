"""Evaluation machinery: benchmark files, the Python test sandbox, and running a model over tasks and traces."""
