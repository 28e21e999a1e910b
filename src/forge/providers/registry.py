"""Which training provider a job uses: `FORGE_PROVIDER` by default, or the one the job names."""

from __future__ import annotations

import functools
from typing import Any, Callable

from forge.config import Provider
from forge.domain.errors import ConfigError
from forge.providers.training import TrainingProvider

Factory = Callable[[Any], TrainingProvider]
_factories: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    """Make a provider available by name (tests register fakes at the cloud boundary this way)."""
    _factories[name] = factory


def training_provider(forge: Any, name: str | None = None) -> TrainingProvider:
    """The provider called `name` (default: FORGE_PROVIDER), built over this Forge's settings and storage."""
    name = name or forge.settings.provider.value
    if name not in _factories:
        _load_builtin(name)
    if name not in _factories:
        known = sorted({p.value for p in Provider} | set(_factories))
        raise ConfigError(f"Unknown training provider '{name}'; use one of {', '.join(known)}.")
    return _factories[name](forge)


def _load_builtin(name: str) -> None:
    # Imported on first use: each provider pulls its own SDK (subprocess tools, azure-ai-ml, openai).
    if name == Provider.LOCAL.value:
        from forge.providers.local import LocalProvider

        register(name, LocalProvider.from_forge)
    elif name == Provider.AZUREML.value:
        from forge.providers.azureml import AzureMLProvider

        register(name, AzureMLProvider.from_forge)
    elif name in (Provider.AZURE_OPENAI.value, Provider.OPENAI.value):
        from forge.providers.hosted import HostedFineTuning

        register(name, functools.partial(HostedFineTuning.from_forge, provider=name))  # one class, two services
