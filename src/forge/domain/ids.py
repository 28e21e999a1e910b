"""The ids Forge mints, as formats: an id from outside is checked against its format before it becomes a Table key
or a blob path, so `../../alice/x` is refused at the edge instead of reaching storage."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from forge.domain.errors import InvalidInput
from forge.domain.names import NAME_PATTERN, NAME_RULE

ULID = r"[0-7][0-9A-HJKMNP-TV-Z]{25}"  # `new_id()`: 26 Crockford base-32 characters, upper case
_ULID_RULE = "a ULID (26 characters, digits and upper-case letters, as Forge returns it)"


@dataclass(frozen=True)
class IdFormat:
    """One kind of id: `pattern` (unanchored) says what Forge mints, `rule` says it in words for error messages."""

    kind: str
    pattern: str
    rule: str
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", re.compile(self.pattern))

    @property
    def anchored(self) -> str:
        """The pattern for a whole value, as OpenAPI and JSON Schema write it."""
        return f"^(?:{self.pattern})$"

    def valid(self, value: object) -> bool:
        # fullmatch, not `^…$`: Python's `$` also matches before a trailing newline
        return isinstance(value, str) and self._compiled.fullmatch(value) is not None

    def check(self, value: str) -> str:
        """The value, or InvalidInput saying what the id should look like (the value itself is not echoed)."""
        if not self.valid(value):
            raise InvalidInput(f"That is not a {self.kind}: expected {self.rule}. "
                               "Copy the id from the list it came from.")
        return value


# services/runs.py nightly_id; services/drift.py: a drift alert's run, by the check's window
JOB_ID = f"{ULID}|nightly-{NAME_PATTERN}-{NAME_PATTERN}-[0-9]{{8}}|drift-{NAME_PATTERN}-{NAME_PATTERN}-[0-9]{{1,15}}"

JOB = IdFormat("job id", JOB_ID, f"{_ULID_RULE}, nightly-{{tenant}}-{{domain}}-{{yyyymmdd}} or "
                                 "drift-{tenant}-{domain}-{window start}")
# A job builds the dataset `ds-{job id}` (stages/curate.py dataset_id_for); every other dataset is a ULID.
DATASET = IdFormat("dataset id", f"{ULID}|ds-(?:{JOB_ID})", f"{_ULID_RULE}, or ds- followed by a job id")
MODEL = IdFormat("model version id", ULID, _ULID_RULE)
# `{domain}.{ULID}` (domain/traces.py new_trace_id): the id alone locates the trace's partition.
TRACE = IdFormat("trace id", rf"{NAME_PATTERN}\.{ULID}", "{domain}.{ULID}, as the trace import returned it")
DOMAIN = IdFormat("domain name", NAME_PATTERN, NAME_RULE)
TENANT = IdFormat("tenant name", NAME_PATTERN, NAME_RULE)
# `forge keys list` shows the first 12 hex digits of the key's sha256; revoke takes at least 8 of them.
KEY = IdFormat("key id", "[0-9a-f]{8,64}", "8 to 64 lower-case hex digits, the id `forge keys list` shows")
