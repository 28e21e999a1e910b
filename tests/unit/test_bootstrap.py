from azure.core.credentials import AccessToken

from forge.bootstrap import connect
from forge.config import load_settings
from forge.storage.azurite import AzuriteInstance


class StaticCredential:
    """Stands in for DefaultAzureCredential: no cloud is reachable from the tests."""

    def get_token(self, *scopes, **kwargs):
        return AccessToken("token", 4_102_444_800)


def test_account_urls_select_identity_based_storage_and_no_azurite(monkeypatch):
    monkeypatch.setattr("azure.identity.DefaultAzureCredential", StaticCredential)
    settings = load_settings(
        storage_table_url="https://acct.table.core.windows.net", storage_blob_url="https://acct.blob.core.windows.net"
    )
    assert not settings.uses_managed_azurite
    storage, azurite = connect(settings)
    assert azurite is None
    assert storage.tables.url.startswith("https://acct.table.core.windows.net")
    assert storage.blobs.url.startswith("https://acct.blob.core.windows.net")
    assert isinstance(storage.tables.credential, StaticCredential)


def test_a_connection_string_wins_over_everything():
    emulator = AzuriteInstance(pid=0, blob_port=10000, queue_port=10001, table_port=10002)
    settings = load_settings(storage_connection=emulator.connection_string,
                             storage_table_url="https://x.table.core.windows.net", storage_blob_url="https://x.blob")
    storage, started = connect(settings)
    assert started is None and ":10002/" in storage.tables.url
