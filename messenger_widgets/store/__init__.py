"""Stores: SQLite locally (default), DynamoDB in the cloud; one interface in `base`."""

from __future__ import annotations

from ..config import Settings
from .base import Store


def open_store(settings: Settings) -> Store:
    """The store the settings name; imported lazily so each process loads only what it uses."""
    if settings.store == "dynamodb":
        from ..aws import make_clients
        from .dynamodb import DynamoStore  # type: ignore[import-not-found,unused-ignore]

        client = make_clients(settings).dynamodb(settings)
        store: Store = DynamoStore(client, settings.users_table, settings.messages_table)
        return store
    from .sqlite import SqliteStore

    return SqliteStore(settings.sqlite_path)


__all__ = ["Store", "open_store"]
