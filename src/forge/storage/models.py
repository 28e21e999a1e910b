"""Model versions (PartitionKey `{tenant}|{domain}`, RowKey version id) and routes (PartitionKey tenant, RowKey domain)."""

from __future__ import annotations

from forge.domain.errors import AlreadyExists, ConcurrentUpdate, ModelNotFound
from forge.domain.models import ModelVersion, Route
from forge.storage.account import StorageAccount
from forge.storage.tables import Page, RecordTable, prefix_filter, quote


class ModelRepository:
    def __init__(self, account: StorageAccount):
        self.table = RecordTable(
            account.tables.get_table_client("models"), ModelVersion, lambda m: (f"{m.tenant}|{m.domain}", m.version_id)
        )

    def create(self, model: ModelVersion) -> ModelVersion:
        return self.table.create(model)

    def save(self, model: ModelVersion) -> ModelVersion:
        return self.table.replace(model)

    def delete(self, model: ModelVersion) -> None:
        """Remove a version read earlier (ConcurrentUpdate if it changed since); its files are not touched."""
        self.table.delete(model)

    def get(self, tenant: str, domain: str, version_id: str) -> ModelVersion:
        model = self.table.get(f"{tenant}|{domain}", version_id)
        if model is None:
            raise ModelNotFound(f"No model version '{version_id}' in {domain}; list models to find its id.")
        return model

    def find(self, tenant: str, version_id: str) -> ModelVersion:
        """A version by id alone: one query over the tenant's model partitions (a tenant has tens of versions)."""
        query = prefix_filter("PartitionKey", f"{tenant}|") + " and RowKey eq @rk"
        found = next(self.table.scan(query, rk=version_id), None)
        if found is None:
            raise ModelNotFound(f"No model version '{version_id}' for this tenant; `forge models list` shows them.")
        return found

    def list(
        self, tenant: str, domain: str | None = None, *, limit: int = 50, continuation: str | None = None
    ) -> Page[ModelVersion]:
        query = f"PartitionKey eq {quote(f'{tenant}|{domain}')}" if domain else prefix_filter("PartitionKey", f"{tenant}|")
        return self.table.page(query, limit, continuation)


class RouteRepository:
    def __init__(self, account: StorageAccount):
        self.table = RecordTable(account.tables.get_table_client("routes"), Route, lambda r: (r.tenant, r.domain))

    def get(self, tenant: str, domain: str) -> Route:
        """The domain's route; a fresh, unsaved one (no ETag) when none was stored yet."""
        return self.table.get(tenant, domain) or Route(tenant=tenant, domain=domain)

    def save(self, route: Route) -> Route:
        """Create or replace under the ETag it was read with; ConcurrentUpdate if someone changed it meanwhile."""
        try:
            return self.table.replace(route)
        except AlreadyExists:
            raise ConcurrentUpdate(
                f"The route for {route.domain} was created by someone else meanwhile; read it again and retry."
            ) from None

    def list(self, tenant: str, *, limit: int = 50, continuation: str | None = None) -> Page[Route]:
        return self.table.page(f"PartitionKey eq {quote(tenant)}", limit, continuation)
