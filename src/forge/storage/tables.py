"""Table plumbing shared by the repositories: record ↔ entity, paging with opaque tokens, ETag-guarded writes."""

from __future__ import annotations

import base64
import binascii
import json
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


def encode_token(token: Any) -> str | None:
    if not token:
        return None
    raw = json.dumps(token, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None) -> Any:
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput("The continuation token is not valid; list again without it to start over.") from None
    if not isinstance(value, dict):
        raise InvalidInput("The continuation token is not valid; list again without it to start over.")
    return value


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

    def page(
        self, query: str, limit: int, continuation: str | None, *, decode: Callable[[Any], R] | None = None, **params: Any
    ) -> Page[R]:
        """One page of a query, and the opaque token that fetches the next (None on the last page)."""
        check_limit(limit)
        decode = decode or (lambda entity: from_entity(self.model, entity))
        pager = self.client.query_entities(query, parameters=params or None, results_per_page=limit).by_page(
            continuation_token=decode_token(continuation)
        )
        items = [decode(e) for e in next(pager, [])]
        return Page(items, encode_token(pager.continuation_token))

    def scan(self, query: str, **params: Any) -> Iterator[R]:
        for entity in self.client.query_entities(query, parameters=params or None):
            yield from_entity(self.model, entity)
