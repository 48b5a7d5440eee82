"""Concurrent pointer moves serialise in the database: no lost update, no gap in the audit chain."""

from __future__ import annotations

import itertools
import threading

from bot.domain.errors import Conflict
from bot.domain.registry import NewVersion, Registry
from storage.db import Database

THREADS = 20


def test_twenty_concurrent_promotes_leave_one_unbroken_chain(db: Database) -> None:
    registry = Registry(db)
    for i in range(THREADS):
        registry.register(NewVersion(model="churn", artifact_uri=f"s3://b/{i + 1}", actor="ci"))
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def promote(version: int) -> None:
        barrier.wait(timeout=30)
        try:
            registry.promote("churn", str(version), "production", actor=f"user{version}")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(v,)) for v in range(1, THREADS + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []

    history = registry.history("churn", "production", limit=100)
    assert len(history) == THREADS
    assert [e.revision for e in history] == list(range(1, THREADS + 1))
    assert history[0].from_version is None
    for before, after in itertools.pairwise(history):
        assert after.from_version == before.to_version
    assert sorted(e.to_version for e in history) == list(range(1, THREADS + 1))
    state = registry.environment_state("churn", "production")
    assert state.stable == history[-1].to_version
    assert state.previous == history[-1].from_version
    assert state.revision == THREADS


def test_concurrent_registers_hand_out_distinct_numbers(db: Database) -> None:
    registry = Registry(db)
    barrier = threading.Barrier(10)
    numbers: list[int] = []
    lock = threading.Lock()

    def register() -> None:
        barrier.wait(timeout=30)
        version = registry.register(NewVersion(model="fresh", artifact_uri="s3://x", actor="ci"))
        with lock:
            numbers.append(version.version)

    threads = [threading.Thread(target=register) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(numbers) == list(range(1, 11))


def test_same_version_promoted_twice_concurrently_moves_once(db: Database) -> None:
    registry = Registry(db)
    registry.register(NewVersion(model="churn", artifact_uri="s3://x", actor="ci"))
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def promote() -> None:
        barrier.wait(timeout=30)
        try:
            registry.promote("churn", "1", "production", actor="a")
            result = "moved"
        except Conflict:
            result = "conflict"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=promote) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["conflict"] * 7 + ["moved"]
    assert len(registry.history("churn", "production")) == 1
