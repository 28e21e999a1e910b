"""Tenant and domain names: they become parts of Table keys and blob paths, so they are kept to a safe alphabet."""

import re

NAME_PATTERN = r"[a-z0-9][a-z0-9-]{0,39}"  # unanchored, so id formats can be built from it (domain/ids.py)
_NAME = re.compile(NAME_PATTERN)
NAME_RULE = "1-40 characters: lower-case letters, digits and '-', starting with a letter or digit"


def valid_name(value: str) -> bool:
    return bool(_NAME.fullmatch(value))
