"""Pure core: models, rules and formats. Nothing here does I/O or imports Forge's outer rings."""
