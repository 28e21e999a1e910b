"""The dashboard's files: one HTML page, its stylesheet and ES modules, served by Forge itself (no CDN, no build)."""

from pathlib import Path

STATIC = Path(__file__).parent / "static"
