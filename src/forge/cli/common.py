"""What every command shares: the wired Forge (built on first use) and the consoles."""

from __future__ import annotations

import functools

from rich.console import Console

from forge.bootstrap import Forge, bootstrap
from forge.config import Settings, load_settings

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@functools.lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings()


@functools.lru_cache(maxsize=1)
def forge() -> Forge:
    return bootstrap(settings())


def reset() -> None:
    """Forget the wired Forge (tests run many commands in one process under different environments)."""
    settings.cache_clear()
    forge.cache_clear()
