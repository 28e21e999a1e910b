"""Which training provider a job uses: `FORGE_PROVIDER` by default, or the one the job names.

The built-in providers are made on demand from this Forge's settings and storage; extra ones (tests' fakes at the
cloud boundary) are passed to `bootstrap(training_providers=…)` and live on that Forge only — nothing here is a
module-level registry anyone mutates."""

from __future__ import annotations

import functools
from typing import Any, Callable

from forge.config import Provider
from forge.domain.errors import ConfigError
from forge.providers.training import TrainingProvider

Factory = Callable[[Any], TrainingProvider]


def training_provider(forge: Any, name: str | None = None) -> TrainingProvider:
    """The provider called `name` (default: FORGE_PROVIDER), built over this Forge's settings and storage."""
    name = name or forge.settings.provider.value
    factory = (getattr(forge, "training_providers", None) or {}).get(name) or builtin(name)
    if factory is None:
        known = sorted({p.value for p in Provider} | set(getattr(forge, "training_providers", None) or {}))
        raise ConfigError(f"Unknown training provider '{name}'; use one of {', '.join(known)}.")
    return factory(forge)


def builtin(name: str) -> Factory | None:
    """The factory of a built-in provider; imported on first use, since each pulls its own SDK."""
    if name == Provider.LOCAL.value:
        from forge.providers.local import LocalProvider

        return LocalProvider.from_forge
    if name == Provider.AZUREML.value:
        from forge.providers.azureml import AzureMLProvider

        return AzureMLProvider.from_forge
    if name in (Provider.AZURE_OPENAI.value, Provider.OPENAI.value):
        from forge.providers.hosted import HostedFineTuning

        return functools.partial(HostedFineTuning.from_forge, provider=name)  # one class, two services
    return None
