"""Activities, one module per verb: gather, curate, upload, train, poll, cancel_training, evaluate, promote, notify.

Each module names its activity (`NAME`), the payload it takes (`Request`, a pydantic model) and `run(forge,
request)`, which calls one service and returns small JSON. Each is idempotent by job id. Permanent failures come
back as {"error": reason}; transient ones raise (the engine retries). `stages()` finds them all: adding a module here
is adding an activity, on durabletask and on Durable Functions alike.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel


@dataclass(frozen=True)
class Stage:
    name: str
    request: type[BaseModel]
    run: Callable[[Any, Any], Any]


def stages() -> dict[str, Stage]:
    """Every stage module in this package, by activity name."""
    found: dict[str, Stage] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if module.NAME in found:
            raise RuntimeError(f"two stages are named {module.NAME!r}")
        found[module.NAME] = Stage(module.NAME, module.Request, module.run)
    return found
