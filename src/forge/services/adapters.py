"""Students on the LoRA server follow the route: an adapter is loaded before a route names it, and unloaded a drain
period after the route stops naming it (calls already sent to it finish first)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Iterable

from forge.domain.errors import ForgeError, ModelNotFound
from forge.domain.models import ModelVersion, Route
from forge.providers.lora_server import LoRAServer, Unservable
from forge.storage import Storage

log = logging.getLogger("forge.lora")
_retiring: list[threading.Thread] = []


def serving(route: Route) -> set[str]:
    """The versions a route sends calls to."""
    return {v for v in (route.production_model, route.canary_model) if v}


def load(lora: LoRAServer | None, models: Iterable[ModelVersion]) -> list[str]:
    """Load each model's adapter on the LoRA server (idempotent); AdapterRefused, with the server's words, stops it.

    A model this server cannot serve at all (no GGUF for its base, say) is left to the in-process fallback; the
    returned notes say so."""
    notes = []
    if lora is None:
        return notes
    for model in models:
        if not model.adapter_uri:
            continue
        try:
            endpoint = lora.ensure_loaded(model)
            log.info("adapter %s loaded on the %s server", endpoint.name, lora.kind)
        except Unservable as exc:
            notes.append(f"{model.version_id} answers in-process with transformers: {exc}")
    return notes


def retire(lora: LoRAServer | None, storage: Storage, route: Route, version_ids: Iterable[str],
           drain_s: float) -> list[str]:
    """Unload these versions' adapters after `drain_s`, unless a route names them again by then; notes for the user.

    The unload runs in a thread of this process that the process waits for before it exits, so a CLI rollback
    returns at once and unloads `drain_s` later."""
    notes: list[str] = []
    if lora is None:
        return notes
    for version_id in version_ids:
        try:
            model = storage.models.get(route.tenant, route.domain, version_id)
        except ModelNotFound:
            continue
        if not model.adapter_uri:
            continue
        thread = threading.Thread(target=_unload_later, args=(lora, storage, model, drain_s),
                                  name=f"forge-unload-{version_id}")
        thread.start()
        _retiring.append(thread)
        notes.append(f"{version_id}'s adapter unloads from the {lora.kind} LoRA server after a {drain_s:g} s drain.")
    return notes


def release(lora: LoRAServer | None, storage: Storage, model: ModelVersion) -> None:
    """Unload a student no route names (one evaluation loaded and that did not go live); failures only logged."""
    if lora is None or not model.adapter_uri:
        return
    try:
        if model.version_id not in serving(storage.routes.get(model.tenant, model.domain)):
            lora.unload(model)
    except (ForgeError, OSError) as exc:
        log.warning("could not unload %s's adapter: %s", model.version_id, exc)


def wait_for_unloads(timeout_s: float | None = None) -> None:
    """Block until the scheduled unloads are done (tests, and callers that want the server settled)."""
    for thread in list(_retiring):
        thread.join(timeout_s)
        if not thread.is_alive():
            _retiring.remove(thread)


def _unload_later(lora: LoRAServer, storage: Storage, model: ModelVersion, drain_s: float) -> None:
    time.sleep(drain_s)
    try:
        route = storage.routes.get(model.tenant, model.domain)
        if model.version_id in serving(route):
            return  # promoted again meanwhile: it serves, keep it
        if lora.unload(model):
            log.info("adapter of %s unloaded after a %g s drain", model.version_id, drain_s)
    except (ForgeError, OSError) as exc:  # the server is down or gone: nothing left to unload there
        log.warning("could not unload %s's adapter: %s", model.version_id, exc)
