"""PII and secrets in text: found by pattern, checked (Luhn, IBAN mod 97, IP parsing), redacted.

Kinds: email, phone, credit_card, iban, ssn, ip_address, api_key, jwt, private_key. Redaction puts a typed
placeholder (`[EMAIL]`, `[API_KEY]` …) where the value was; callers keep counts per kind, never the values.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from typing import Callable

KINDS = ("private_key", "jwt", "api_key", "email", "iban", "ssn", "credit_card", "phone", "ip_address")
PLACEHOLDERS = {kind: f"[{kind.upper()}]" for kind in KINDS}

# Python's `re` is fast only when a pattern starts with a literal or a character class, and one big alternation
# is tried at every position. So each family runs only when a cheap literal check says it may match, and
# numbers are first cut into short clusters that the number patterns then examine.
_SECRETS = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.|\n)*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)"  # PEM block
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWT
    r"|sk-(?:proj-|ant-|live_|test_)?[A-Za-z0-9_-]{20,}"  # OpenAI, Anthropic, Stripe style
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,}"  # GitHub tokens
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API keys
)
_SECRET_SCREEN = re.compile(r"-----BEGIN|eyJ|sk-|AKIA|ASIA|gh[pousr]_|github_pat_|xox[abposr]-|AIza")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_NONE: Counter[str] = Counter()  # returned (never changed) when a text holds nothing
# Character classes are spelled [0-9]: `\d` matches every Unicode digit and scans about three times slower.
# `[A-Z][A-Z]`, not `[A-Z]{2}`: a pattern opening with a single class lets `re` skip ahead in C (twice as fast).
_IBAN = re.compile(r"[A-Z][A-Z][0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?")
# One scan finds the places worth a closer look: runs of at least 7 digits and separators.
_CLUSTER = re.compile(r"[+(0-9][0-9 ().+-]{5,}[0-9]")
_NUMBERS = re.compile(
    r"(?P<ssn>[0-9]{3}-[0-9]{2}-[0-9]{4})"
    r"|(?P<ip_address>(?:[0-9]{1,3}\.){3}[0-9]{1,3})"
    r"|(?P<credit_card>[0-9](?:[ -]?[0-9]){12,18})"
    r"|(?P<phone>(?:\+[0-9]{1,3}[ .-]?)?(?:\([0-9]{1,4}\)[ .-]?)?[0-9]{2,4}(?:[ .-][0-9]{2,4}){1,3})"
)
_IPV6 = re.compile(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}")
# Addresses that name no one: loopback and "any", common in code and docs.
_HARMLESS_IPS = {"127.0.0.1", "0.0.0.0", "::1", "::"}

def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rotated = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rotated)
    return int(number) % 97 == 1


def _ssn_ok(text: str) -> bool:
    area, group, serial = text.split("-")
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


def _card_ok(text: str) -> bool:
    digits = re.sub(r"[ -]", "", text)
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _phone_ok(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    # A bare run of digit groups is a phone number only when it looks dialled: a +country code, an area code in
    # brackets, or 10+ digits; "2024-01-15" or "3.14 2.71" are not.
    return 7 <= digits <= 15 and (text.startswith(("+", "(")) or digits >= 10)


def _ip_ok(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return text not in _HARMLESS_IPS and any(ch.isdigit() for ch in text)


def _secret_kind(text: str) -> str:
    if text.startswith("-----BEGIN"):
        return "private_key"
    return "jwt" if text.startswith("eyJ") else "api_key"


def _bounded(text: str, start: int, end: int, inner: str = "") -> bool:
    """Nothing glued to either side: no word character, and no `inner` joining more digits (`1.2.3.4.5`)."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    if before.isalnum() or before == "_" or after.isalnum() or after == "_":
        return False
    joined_before = before in inner and start > 1 and text[start - 2].isalnum()
    joined_after = after in inner and end + 1 < len(text) and text[end + 1].isalnum()
    return not (joined_before or joined_after)


def spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every finding, in order, without overlaps."""
    found: list[tuple[int, int, str]] = []
    # Substring tests (`in` runs in C) first: only a text holding one of the literals pays for the screen regex.
    if ("sk-" in text or "eyJ" in text or "AKIA" in text or "ASIA" in text or "gh" in text or "xox" in text
            or "AIza" in text or "-----BEGIN" in text) and _SECRET_SCREEN.search(text):
        found += [(m.start(), m.end(), _secret_kind(m.group())) for m in _SECRETS.finditer(text)]
    if "@" in text:
        found += [(m.start(), m.end(), "email") for m in _EMAIL.finditer(text)]
    found += [(m.start(), m.end(), "iban") for m in _IBAN.finditer(text)
              if _bounded(text, m.start(), m.end()) and iban_ok(m.group())]
    for cluster in _CLUSTER.finditer(text):
        group = cluster.group()
        if len(group) < 13 and "-" not in group and "." not in group and " " not in group:
            continue  # every number kind needs a separator, or 13+ digits (a card): "(123456" is none of them
        base = cluster.start()
        for m in _NUMBERS.finditer(group):
            kind, start, end = m.lastgroup or "", base + m.start(), base + m.end()
            if _bounded(text, start, end, ".-") and _NUMBER_CHECKS[kind](m.group()):
                found.append((start, end, kind))
    if "::" in text or text.count(":") >= 7:  # an IPv6 address has "::" or seven colons
        found += [(m.start(), m.end(), "ip_address") for m in _IPV6.finditer(text)
                  if _bounded(text, m.start(), m.end(), ":") and _ip_ok(m.group())]
    found.sort(key=lambda span: (span[0], -span[1]))
    kept: list[tuple[int, int, str]] = []
    for span in found:
        if not kept or span[0] >= kept[-1][1]:  # the first (then longest) finding wins an overlap
            kept.append(span)
    return kept


def find(text: str) -> Counter[str]:
    """How many of each kind `text` holds (an empty Counter the caller must not change when none)."""
    found = spans(text)
    return Counter(kind for _, _, kind in found) if found else _NONE


def redact(text: str) -> tuple[str, Counter[str]]:
    """`text` with each finding replaced by its placeholder, and the counts per kind."""
    found = spans(text)
    if not found:
        return text, _NONE
    parts, last = [], 0
    for start, end, kind in found:
        parts += [text[last:start], PLACEHOLDERS[kind]]
        last = end
    parts.append(text[last:])
    return "".join(parts), Counter(kind for _, _, kind in found)


_NUMBER_CHECKS: dict[str, Callable[[str], bool]] = {
    "ssn": _ssn_ok, "credit_card": _card_ok, "phone": _phone_ok, "ip_address": _ip_ok,
}
