"""Wiring shared by every front end: open the database (upgrading it) and build the services."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Settings
from bot.domain.registry import Registry
from storage.db import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    registry: Registry

    def close(self) -> None:
        self.db.dispose()


def open_services(settings: Settings, *, upgrade: bool = True) -> Services:
    db = Database(settings.database)
    if upgrade:
        db.upgrade()
    return Services(settings=settings, db=db, registry=Registry(db))
