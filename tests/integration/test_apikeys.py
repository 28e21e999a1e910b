import pytest

from forge.domain.errors import InvalidInput


def test_a_key_is_stored_only_as_its_hash(storage, tenant):
    key, record = storage.keys.create(tenant, "ci")
    entity = storage.keys.table.client.get_entity(tenant, record.key_hash)
    assert all(key not in str(value) and key.split(".")[2] not in str(value) for value in entity.values())
    assert storage.keys.authenticate(key).tenant == tenant


def test_unknown_malformed_and_revoked_keys_do_not_authenticate(storage, tenant):
    key, record = storage.keys.create(tenant, "ci")
    assert storage.keys.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert storage.keys.authenticate("hello") is None
    assert storage.keys.authenticate(f"fk.{tenant}-nope.{key.split('.')[2]}") is None
    storage.keys.revoke(tenant, record.key_hash[:12])
    assert storage.keys.authenticate(key) is None


def test_a_key_for_an_invalid_tenant_or_scope_is_refused(storage):
    with pytest.raises(InvalidInput):
        storage.keys.create("Bad Tenant", "x")
    with pytest.raises(InvalidInput, match="Unknown scopes"):
        storage.keys.create("ok-tenant", "x", ["admin"])
