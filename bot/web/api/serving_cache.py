"""The serving states this process has read, kept until the serving feed says they changed,
and the watches waiting for them to change.

A serving layer reads one state over and over and it changes a few times a day, so the
answer is rendered once per revision (JSON bytes and ETag) and served from memory. An
entry is dropped when the feed (storage/serving_feed.py) reports a newer revision for its
key; a read that started before such a report and finished after it is not kept (`_known`).
Concurrent misses on one key share a single database read, so a thousand watches woken by
one promotion cost one query.

Everything here runs on the server's event loop; the feed's thread hands changes over with
`call_soon_threadsafe`. A held watch is a future and a timer: no thread, no CPU. When its
state moves, the new state is read once and handed to every watch on it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bot.domain.entities import EnvironmentState
from bot.domain.errors import Unavailable
from bot.observability import SERVING_WATCHES
from storage.serving_feed import Change, ServingFeed

Key = tuple[str, str]  # (model name key, environment)
REVISION_HEADER = "X-Modelbot-Revision"
MAX_RELOADS = 3


@dataclass(frozen=True)
class Entry:
    """One serving state, rendered: what every reader of this revision gets."""

    key: Key
    revision: int
    body: bytes
    etag: str

    @classmethod
    def of(cls, state: EnvironmentState) -> Entry:
        body = JSONResponse(state.to_dict()).body
        digest = hashlib.blake2b(body, digest_size=8).hexdigest()
        return cls((state.model.lower(), state.environment), state.revision, bytes(body),
                   f'"{state.revision}-{digest}"')

    @functools.cached_property
    def headers(self) -> dict[str, str]:
        """What every answer of this state carries, 200 or 304."""
        return {"ETag": self.etag, REVISION_HEADER: str(self.revision), "Cache-Control": "no-cache"}


def request_key(model: str, environment: str) -> Key:
    """The key a request asks for. States are kept under their canonical spelling, so an
    unusual spelling (`Production`) misses and goes to the database, which normalises it."""
    return model.lower(), environment


class ServingCache:
    """Per API app. `load(model, environment)` is the domain's read (blocking: it runs in
    the thread pool)."""

    def __init__(self, load: Callable[[str, str], EnvironmentState], feed: Callable[[], ServingFeed]) -> None:
        self._load = load
        self._feed = feed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._entries: dict[Key, Entry] = {}
        self._known: dict[Key, int] = {}  # the newest revision the feed reported per key
        self._loading: dict[Key, asyncio.Future[Entry]] = {}
        self._waiters: dict[Key, set[asyncio.Future[object]]] = {}  # held watches by key
        self._wakes: set[asyncio.Future[None]] = set()
        self._valid: set[Key] = set()  # request keys read successfully: they exist
        self._subscribed: asyncio.Future[None] | None = None
        self._epoch = 0  # bumped when the feed may have missed changes: reads begun before are suspect

    # ---- reads ------------------------------------------------------------------------------

    def knows(self, model: str, environment: str) -> bool:
        """True when this spelling of (model, environment) has been read successfully before,
        so a read of it will not be refused (the fast path's test, without I/O)."""
        return request_key(model, environment) in self._valid

    async def get(self, model: str, environment: str) -> Entry:
        """The current entry; reads the database on a miss (domain errors propagate)."""
        await self._bind()
        key = request_key(model, environment)
        entry = self._entries.get(key)
        if entry is not None and self._fresh(entry):
            return entry
        loading = self._loading.get(key)
        if loading is None:
            loading = self._loading[key] = asyncio.ensure_future(self._read(model, environment))
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        # shielded: a client that hangs up must not cancel the read the others wait for
        entry = await asyncio.shield(loading)
        self._valid.add(key)
        return entry

    async def watch(self, entry: Entry, model: str, environment: str, deadline: float) -> Entry:
        """Hold until the state differs from `entry` or the loop's clock passes `deadline`;
        then the current entry (the same one when nothing changed)."""
        with SERVING_WATCHES.track_inprogress():
            return await self._watch(entry, model, environment, deadline)

    async def _watch(self, entry: Entry, model: str, environment: str, deadline: float) -> Entry:
        loop = asyncio.get_running_loop()
        while True:
            if not self._fresh(entry):  # it moved between the read and this wait
                current = await self.get(model, environment)
                if current.revision != entry.revision:
                    return current
            remaining = deadline - loop.time()
            if remaining <= 0:
                return entry
            woken: asyncio.Future[object] = loop.create_future()
            waiters = self._waiters.setdefault(entry.key, set())
            waiters.add(woken)
            timer = loop.call_later(remaining, _settle, woken, _TIMED_OUT)
            try:
                result = await woken
            finally:
                timer.cancel()
                waiters.discard(woken)
            if result is _TIMED_OUT:
                return entry
            current = result if isinstance(result, Entry) else await self.get(model, environment)
            if current.revision != entry.revision:
                return current

    # ---- writes in this process ------------------------------------------------------------

    async def fence(self) -> None:
        """After a write through this process: wait until the feed has delivered it, so the
        next read here sees it. Free when nothing is cached."""
        if not self._entries or self._loop is None:
            return
        if not await run_in_threadpool(self._feed().sync):
            self._apply(None)  # the feed could not tell: forget everything rather than serve stale
        # the feed queued its changes with call_soon_threadsafe before sync() returned, and the
        # loop runs callbacks in order, so they have been applied by the time this resumes

    # ---- internals ---------------------------------------------------------------------------

    def _fresh(self, entry: Entry) -> bool:
        return entry.revision >= self._known.get(entry.key, -1)

    async def _read(self, model: str, environment: str) -> Entry:
        for _ in range(MAX_RELOADS):
            epoch = self._epoch
            entry = Entry.of(await run_in_threadpool(self._load, model, environment))
            if self._fresh(entry) and epoch == self._epoch:
                self._entries[entry.key] = entry
                return entry
        return entry  # the state moves faster than it can be read: answer, but do not keep it

    async def _bind(self) -> None:
        """Attach to the running loop, and subscribe to the feed before anything is read
        (a read that came first could miss a change made before the subscription)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._entries.clear()
            self._known.clear()
            self._loop = loop
            if self._subscribed is None:
                self._subscribed = asyncio.ensure_future(run_in_threadpool(self._feed().subscribe, self._on_feed))
        subscribed = self._subscribed
        assert subscribed is not None
        if not subscribed.done():
            await asyncio.shield(subscribed)
        if subscribed.exception() is not None:  # the database did not answer: try again next time
            self._subscribed, self._loop = None, None
            raise Unavailable("Cannot reach the database to follow serving states; try again in a moment.") \
                from subscribed.exception()

    def _on_feed(self, changes: list[Change] | None) -> None:
        """The feed's thread: hand over to the loop (RuntimeError once the loop has closed)."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._apply, changes)

    def _apply(self, changes: list[Change] | None) -> None:
        if changes is None:
            self._epoch += 1
            self._entries.clear()
            self._known.clear()
            moved = list(self._waiters)
        else:
            moved = []
            for change in changes:
                key = (change.model_key, change.environment)
                if change.revision > self._known.get(key, -1):
                    self._known[key] = change.revision
                entry = self._entries.get(key)
                if entry is not None and entry.revision < change.revision:
                    del self._entries[key]
                if key in self._waiters:
                    moved.append(key)
        for key in moved:
            task = asyncio.ensure_future(self._wake(key))
            self._wakes.add(task)  # a reference, so the task is not collected before it runs
            task.add_done_callback(self._wakes.discard)

    async def _wake(self, key: Key) -> None:
        """Read the new state once and hand it to every watch held on `key`."""
        waiters = self._waiters.pop(key, None)
        if not waiters:
            return
        try:
            entry: object = await self.get(*key)
        except Exception:  # each watch reads again itself, and answers the error
            entry = None
        for woken in waiters:
            _settle(woken, entry)


_TIMED_OUT = object()


def _settle(future: asyncio.Future[object], result: object) -> None:
    if not future.done():
        future.set_result(result)
