"""Concurrent writers on SQLite queue instead of failing: fifty threads registering at once
all succeed, with a lock timeout short enough that a starved writer would have failed
(SQLite's busy handler sleeps and retries; it is no queue)."""

from __future__ import annotations

import threading
from pathlib import Path

from bot.domain.registry import NewVersion, Registry
from storage.db import Database, DatabaseSettings

THREADS, EACH = 50, 20


def test_fifty_concurrent_writers_all_succeed_on_sqlite(tmp_path: Path) -> None:
    db = Database(DatabaseSettings(url=f"sqlite:///{tmp_path / 'm.db'}", lock_timeout_s=1.0, pool_size=THREADS))
    db.upgrade()
    registry = Registry(db)
    barrier = threading.Barrier(THREADS)
    failures: list[BaseException] = []

    def register(i: int) -> None:
        barrier.wait(timeout=60)
        for n in range(EACH):
            try:
                registry.register(NewVersion(model=f"m{i % 5}", artifact_uri=f"s3://m/{i}/{n}", actor="ci",
                                             metrics={"auc": 0.9}, tags={"n": str(n)}))
            except BaseException as exc:  # collected and asserted below
                failures.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    db.dispose()
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert sum(Registry(Database(DatabaseSettings(url=db.url))).list_models(limit=10).items[i].latest_version
               for i in range(5)) == THREADS * EACH
