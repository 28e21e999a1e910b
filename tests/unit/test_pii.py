"""PII and secrets: each kind is found and redacted with its placeholder; look-alikes are left alone."""

import pytest

from forge.domain import pii

FOUND = [
    ("write to jane.doe@example.co.uk today", "email", "[EMAIL]"),
    ("call +1 415-555-0132 or", "phone", "[PHONE]"),
    ("call (415) 555-0132 now", "phone", "[PHONE]"),
    ("card 4111 1111 1111 1111 expires", "credit_card", "[CREDIT_CARD]"),
    ("card 5555-5555-5555-4444.", "credit_card", "[CREDIT_CARD]"),
    ("pay to DE89 3704 0044 0532 0130 00 please", "iban", "[IBAN]"),
    ("pay to GB82WEST12345698765432 please", "iban", "[IBAN]"),
    ("ssn 123-45-6789 on file", "ssn", "[SSN]"),
    ("from 10.20.30.40 at", "ip_address", "[IP_ADDRESS]"),
    ("host 2001:db8::8a2e:370:7334 up", "ip_address", "[IP_ADDRESS]"),
    ("OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz0123", "api_key", "[API_KEY]"),
    ("aws AKIAIOSFODNN7EXAMPLE key", "api_key", "[API_KEY]"),
    ("token ghp_" + "A1b2" * 9 + " here", "api_key", "[API_KEY]"),
    ("bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlF", "jwt", "[JWT]"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----", "private_key",
     "[PRIVATE_KEY]"),
]


@pytest.mark.parametrize("text, kind, placeholder", FOUND)
def test_each_kind_is_found_and_replaced_by_its_typed_placeholder(text, kind, placeholder):
    redacted, counts = pii.redact(text)
    assert counts == {kind: 1}
    assert placeholder in redacted
    assert pii.find(redacted) == {}


@pytest.mark.parametrize("text", [
    "card 4111 1111 1111 1112 fails the Luhn check",
    "IBAN DE89 3704 0044 0532 0130 01 fails mod 97",
    "on 2024-01-15 version 1.2.3.4.5 pi 3.14159 range(10, 20) port 8080 at 12:30:45",
    "std::vector<int> and a::b and localhost 127.0.0.1 and ::1",
    "ssn-like 000-12-3456 and 666-12-3456 are never issued",
    "for i in range(1000000): total += i",
])
def test_look_alikes_are_not_reported(text):
    assert pii.find(text) == {}
    assert pii.redact(text)[0] == text


def test_counts_say_how_many_of_each_kind_and_never_the_values():
    text = "a@b.io, c@d.io and 4111111111111111"
    redacted, counts = pii.redact(text)
    assert counts == {"email": 2, "credit_card": 1}
    assert redacted == "[EMAIL], [EMAIL] and [CREDIT_CARD]"


def test_luhn_and_iban_checks():
    assert pii.luhn_ok("4111111111111111") and not pii.luhn_ok("4111111111111112")
    assert pii.iban_ok("GB82 WEST 1234 5698 7654 32") and not pii.iban_ok("GB83 WEST 1234 5698 7654 32")
