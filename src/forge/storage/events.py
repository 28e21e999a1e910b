"""Job events (PartitionKey job id, RowKey zero-padded sequence): what happened during a run, in order."""

from __future__ import annotations

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode

from forge.domain.errors import ConcurrentUpdate
from forge.domain.models import JobEvent
from forge.storage.account import StorageAccount
from forge.storage.tables import Page, RecordTable, quote, to_entity

COUNTER = "~counter"  # sorts after every zero-padded sequence number
SEQ_WIDTH = 10
MAX_PER_APPEND = 99  # a transaction holds 100 operations: the events plus the counter
RETRIES = 20


def seq_key(seq: int) -> str:
    return f"{seq:0{SEQ_WIDTH}d}"


class JobEventRepository:
    def __init__(self, account: StorageAccount):
        self.table = RecordTable(
            account.tables.get_table_client("jobevents"), JobEvent, lambda e: (e.job_id, seq_key(e.seq))
        )

    def append(self, job_id: str, *events: JobEvent) -> list[JobEvent]:
        """Number the events after the last one and store them; concurrent writers never share a number."""
        stored: list[JobEvent] = []
        for start in range(0, len(events), MAX_PER_APPEND):
            stored += self._append_chunk(job_id, list(events[start : start + MAX_PER_APPEND]))
        return stored

    def list(self, job_id: str, *, after: int = 0, limit: int = 200, continuation: str | None = None) -> Page[JobEvent]:
        query = f"PartitionKey eq {quote(job_id)} and RowKey gt {quote(seq_key(after))} and RowKey lt {quote(COUNTER)}"
        return self.table.page(query, limit, continuation)

    def _append_chunk(self, job_id: str, events: list[JobEvent]) -> list[JobEvent]:
        client = self.table.client
        for _ in range(RETRIES):
            # The counter row and the events commit in one transaction, guarded by the counter's ETag.
            try:
                counter = client.get_entity(job_id, COUNTER)
                last, etag = int(counter["last"]), counter.metadata["etag"]
            except ResourceNotFoundError:
                last, etag = 0, None
            numbered = [e.model_copy(update={"job_id": job_id, "seq": last + i + 1}) for i, e in enumerate(events)]
            new_counter = {"PartitionKey": job_id, "RowKey": COUNTER, "last": last + len(events)}
            counter_op = (
                ("create", new_counter)
                if etag is None
                else ("update", new_counter, {"mode": UpdateMode.REPLACE, "etag": etag,
                                              "match_condition": MatchConditions.IfNotModified})
            )
            ops = [counter_op] + [("create", to_entity(e, job_id, seq_key(e.seq))) for e in numbered]
            try:
                client.submit_transaction(ops)
                return numbered
            except TableTransactionError:
                continue  # another writer took these numbers; read the counter again
        raise ConcurrentUpdate(f"Could not append events to job {job_id}: too many concurrent writers; retry.")
