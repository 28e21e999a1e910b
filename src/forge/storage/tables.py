"""Table plumbing shared by the repositories: record ↔ entity, paging with opaque tokens, ETag-guarded writes."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from forge.domain.errors import AlreadyExists, ConcurrentUpdate, InvalidInput
from forge.domain.models import Record

R = TypeVar("R", bound=Record)
T = TypeVar("T")

JSON_SUFFIX = "__json"  # a property holding a JSON-encoded dict or list
MAX_PAGE = 1000


@dataclass
class Page(Generic[T]):
    items: list[T] = field(default_factory=list)
    continuation: str | None = None


def to_entity(record: Record, partition: str, row: str, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": partition, "RowKey": row}
    for name, value in record.model_dump(mode="json", exclude=set(skip)).items():
        if value is None:
            continue
        if isinstance(value, (dict, list)):
            entity[name + JSON_SUFFIX] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        else:
            entity[name] = value
    return entity


def from_entity(model: type[R], entity: Any, **extra: Any) -> R:
    data: dict[str, Any] = {}
    for key, value in entity.items():
        if key in ("PartitionKey", "RowKey", "Timestamp"):
            continue
        if key.endswith(JSON_SUFFIX):
            data[key[: -len(JSON_SUFFIX)]] = json.loads(value)
        else:
            data[key] = value
    data.update(extra)
    record = model.model_validate(data)
    metadata = getattr(entity, "metadata", None) or {}
    record.etag = metadata.get("etag")
    return record


# A continuation is a keyset cursor: where the previous page ended, as the hex of its key parts. Every string of this
# form is a valid cursor (the next page starts after that position), so a client can never hold a well-formed token
# the server refuses; anything else is refused with what to do.
CURSOR_PATTERN = r"^(?:[0-9a-f]{2}){0,1024}$"  # empty: the first page, as when absent
_CURSOR = re.compile(CURSOR_PATTERN)
_SEPARATOR = "\x1f"
BAD_CURSOR = ("The continuation token is not valid: pass the `continuation` of the previous page as it was given, "
              "or list again without it to start over.")


def encode_cursor(*parts: str) -> str:
    """The opaque token of a position: where a page ended."""
    return _SEPARATOR.join(parts).encode("utf-8").hex()


def decode_cursor(token: str | None, parts: int = 2) -> tuple[str, ...] | None:
    """The position a token names (`parts` strings), None without one; InvalidInput when it is not a token."""
    if not token:
        return None
    if not _CURSOR.fullmatch(token):
        raise InvalidInput(BAD_CURSOR)
    text = bytes.fromhex(token).decode("utf-8", errors="replace")
    # Table keys hold no control characters, so none is a position: dropped, the rest is still an ordered bound.
    text = "".join(c for c in text if c == _SEPARATOR or not (c < " " or "\x7f" <= c <= "\x9f"))
    found = text.split(_SEPARATOR)[:parts]
    return tuple(found + [""] * (parts - len(found)))


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be from 1 to {MAX_PAGE} (got {limit}).")
    return limit


def quote(value: str) -> str:
    """An OData string literal."""
    return "'" + value.replace("'", "''") + "'"


def prefix_filter(key: str, prefix: str) -> str:
    """Entities whose `key` starts with `prefix` ('~' sorts after every character our keys use)."""
    return f"{key} ge {quote(prefix)} and {key} lt {quote(prefix + '~')}"


class RecordTable(Generic[R]):
    """One Table holding one kind of record, keyed by `keys(record) -> (PartitionKey, RowKey)`."""

    def __init__(self, client: TableClient, model: type[R], keys: Callable[[R], tuple[str, str]]):
        self.client = client
        self.model = model
        self.keys = keys

    def create(self, record: R) -> R:
        """Insert; AlreadyExists when the keys are taken. Returns the record with its new ETag."""
        pk, rk = self.keys(record)
        try:
            meta = self.client.create_entity(to_entity(record, pk, rk))
        except ResourceExistsError:
            raise AlreadyExists(f"{self.model.__name__} {pk}/{rk} already exists.") from None
        return record.model_copy(update={"etag": meta.get("etag")})

    def get(self, partition: str, row: str) -> R | None:
        try:
            return from_entity(self.model, self.client.get_entity(partition, row))
        except ResourceNotFoundError:
            return None

    def replace(self, record: R) -> R:
        """Write back a record read earlier; ConcurrentUpdate if anyone wrote it since (a lost update is an error)."""
        if record.etag is None:
            return self.create(record)
        pk, rk = self.keys(record)
        try:
            meta = self.client.update_entity(
                to_entity(record, pk, rk),
                mode=UpdateMode.REPLACE,
                etag=record.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise ConcurrentUpdate(
                f"{self.model.__name__} {pk}/{rk} was changed by someone else since it was read; "
                "read it again and retry the change."
            ) from None
        return record.model_copy(update={"etag": meta.get("etag")})

    def delete(self, record: R) -> None:
        """Delete a record read earlier; ConcurrentUpdate if anyone wrote it since (it is read again and re-decided)."""
        pk, rk = self.keys(record)
        try:
            self.client.delete_entity(pk, rk, etag=record.etag,
                                      match_condition=MatchConditions.IfNotModified if record.etag else None)
        except ResourceModifiedError:
            raise ConcurrentUpdate(f"{self.model.__name__} {pk}/{rk} was changed by someone else since it was read; "
                                   "read it again and retry.") from None

    def page(
        self, query: str, limit: int, continuation: str | None, *, decode: Callable[[Any], R] | None = None, **params: Any
    ) -> Page[R]:
        """One page of a query, and the cursor of the next (None on the last page).

        Keyset paging: the next page is the rows after the last one shown, in the Table's (PartitionKey, RowKey)
        order, so rows added meanwhile never shift a page and any cursor is a valid starting point."""
        check_limit(limit)
        decode = decode or (lambda entity: from_entity(self.model, entity))
        after = decode_cursor(continuation)
        if after is not None:
            pk, rk = quote(after[0]), quote(after[1])
            query = f"({query}) and (PartitionKey gt {pk} or (PartitionKey eq {pk} and RowKey gt {rk}))"
        rows = self.client.query_entities(query, parameters=params or None, results_per_page=min(limit + 1, MAX_PAGE))
        entities = list(itertools.islice(rows, limit + 1))
        more = len(entities) > limit
        entities = entities[:limit]
        token = encode_cursor(entities[-1]["PartitionKey"], entities[-1]["RowKey"]) if more else None
        return Page([decode(e) for e in entities], token)

    def scan(self, query: str, **params: Any) -> Iterator[R]:
        for entity in self.client.query_entities(query, parameters=params or None):
            yield from_entity(self.model, entity)
