"""Forge: distil a strong teacher model's traffic into a cheaper student, automatically."""

__version__ = "0.1.0"
