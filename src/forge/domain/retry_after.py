"""How long an HTTP answer asks to be left alone: Azure's `retry-after-ms`, or `Retry-After` as seconds or an HTTP
date. One reading for every client Forge has (the providers' and the SDK's). Pure."""

from __future__ import annotations

import email.utils
import time
from typing import Mapping


def seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, never negative; None when the answer names no wait, or one that cannot be read."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
