"""What curation and cost estimates read from the settings: the price table in force and the trace grader."""

from __future__ import annotations

from forge.config import Settings
from forge.domain.cost import DEFAULT_PRICES, PriceTable, parse_price_table
from forge.domain.domains import DomainConfig
from forge.domain.errors import ConfigError
from forge.providers.grader import Grader


def price_table(settings: Settings) -> PriceTable:
    """FORGE_PRICE_TABLE's table (TOML or JSON), or the built-in one dated in `forge.domain.cost`."""
    path = settings.price_table
    if path is None:
        return DEFAULT_PRICES
    if not path.is_file():
        raise ConfigError(f"FORGE_PRICE_TABLE={path} does not exist; point it at a TOML or JSON price table.")
    return parse_price_table(path.read_text(encoding="utf-8"), str(path))


def grader_for(settings: Settings, domain: DomainConfig) -> Grader | None:
    """A grader for unscored traces when FORGE_GRADER_MODEL is set (at the grader's endpoint, else the teacher's)."""
    base_url = settings.grader_base_url or settings.teacher_base_url
    if not settings.grader_model or not base_url:
        return None
    from forge.providers.openai_compat import OpenAICompatClient

    client = OpenAICompatClient(
        base_url, model=settings.grader_model, name=f"grader {settings.grader_model}",
        api_key=settings.grader_api_key or settings.teacher_api_key,
        timeout_s=settings.inference_timeout_s, concurrency=settings.inference_concurrency,
    )
    return Grader(client, domain)
