"""The API's version: a date, changed with every change a client can notice (CHANGELOG.md says what changed). It is
in the OpenAPI document's `info.version` and in a `Forge-Api-Version` header on every answer."""

API_VERSION = "2026-11-30"
VERSION_HEADER = "Forge-Api-Version"
