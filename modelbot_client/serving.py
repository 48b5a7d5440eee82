"""Follow what modelbot says one model should serve in one environment, from a model server.

`ServingState` keeps a watch open on `GET /api/v1/models/{model}/environments/{env}` in a
background thread (`?revision=N&wait=30s`: the server answers when the revision moves or
the wait ends) and swaps in each new state as it arrives. Connection errors, restarts of
the modelbot server and 5xx answers are retried with exponential backoff (full jitter,
0.5 s doubling to 30 s; `Retry-After` honoured); the last good state keeps serving
meanwhile. `choose(key)` picks the stable or canary artifact for a request key (see
`modelbot_client.split`). Standard library only, so it fits any model server.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from modelbot_client.split import on_canary, salt_for

log = logging.getLogger("modelbot_client")

BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 30.0
MAX_WAIT_S = 60.0  # the server's limit on ?wait=


class NotServing(LookupError):
    """Nothing to choose from: no state received yet, or the environment serves no version."""


@dataclass(frozen=True)
class Choice:
    side: Literal["stable", "canary"]
    version: int
    artifact_uri: str


@dataclass(frozen=True)
class Snapshot:
    """One serving state as the API returned it."""

    model: str
    environment: str
    stable: int | None
    stable_artifact_uri: str | None
    previous: int | None
    previous_artifact_uri: str | None
    canary: int | None
    canary_artifact_uri: str | None
    canary_weight: int
    revision: int
    updated_at: str | None
    etag: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any], etag: str | None = None) -> Snapshot:
        fields = {k: data.get(k) for k in cls.__dataclass_fields__ if k != "etag"}
        return cls(**fields, etag=etag)

    def choose(self, key: str | bytes) -> Choice:
        """The canary for keys that hash below its weight, the stable version for the rest."""
        if self.stable is None or self.stable_artifact_uri is None:
            raise NotServing(f"{self.model} serves nothing in {self.environment} (revision {self.revision}).")
        if (self.canary is not None and self.canary_artifact_uri is not None
                and on_canary(key, self.canary_weight, salt_for(self.model, self.environment, self.canary))):
            return Choice("canary", self.canary, self.canary_artifact_uri)
        return Choice("stable", self.stable, self.stable_artifact_uri)


class _Retry(Exception):
    def __init__(self, message: str, after: float | None = None) -> None:
        super().__init__(message)
        self.after = after


class ServingState:
    """A background watch on one (model, environment).

    `url` is the modelbot server (`http://modelbot:3000`); `token` an API token with the
    `read` scope. `on_change(snapshot)` runs in the watch thread after each change.
    """

    def __init__(self, url: str, token: str, model: str, environment: str, *, wait_s: float = 30.0,
                 timeout_s: float = 10.0, on_change: Callable[[Snapshot], None] | None = None,
                 start: bool = True) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL like http://modelbot:3000")
        if not 0 < wait_s <= MAX_WAIT_S:
            raise ValueError(f"wait_s={wait_s!r}: the server holds a watch for at most {MAX_WAIT_S:g} s")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._path = (f"{parts.path.rstrip('/')}/api/v1/models/{quote(model, safe='')}"
                      f"/environments/{quote(environment, safe='')}")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.model, self.environment = model, environment
        self._wait_s, self._timeout_s, self._on_change = wait_s, timeout_s, on_change
        self._snapshot: Snapshot | None = None
        self._error: str | None = None
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._conn: http.client.HTTPConnection | None = None
        self._thread = threading.Thread(target=self._run, name=f"modelbot-watch-{model}-{environment}", daemon=True)
        if start:
            self.start()

    # ---- what a model server uses ------------------------------------------------------------

    def start(self) -> ServingState:
        self._thread.start()
        return self

    @property
    def current(self) -> Snapshot | None:
        return self._snapshot

    @property
    def last_error(self) -> str | None:
        """Why the last request failed, None once one succeeded."""
        return self._error

    def wait_ready(self, timeout_s: float = 30.0) -> Snapshot:
        """The first state; TimeoutError (with the last error) if none arrives in time."""
        with self._ready:
            if not self._ready.wait_for(lambda: self._snapshot is not None, timeout_s):
                raise TimeoutError(f"no serving state for {self.model} in {self.environment} after {timeout_s:g} s"
                                   + (f": {self._error}" if self._error else ""))
        assert self._snapshot is not None
        return self._snapshot

    def wait_for(self, predicate: Callable[[Snapshot], bool], timeout_s: float) -> Snapshot:
        """Block until the current state satisfies `predicate` (TimeoutError otherwise)."""
        with self._ready:
            if not self._ready.wait_for(lambda: self._snapshot is not None and predicate(self._snapshot), timeout_s):
                raise TimeoutError(f"{self.model} in {self.environment}: no matching state after {timeout_s:g} s "
                                   f"(current revision {getattr(self._snapshot, 'revision', None)}"
                                   + (f", last error: {self._error})" if self._error else ")"))
        assert self._snapshot is not None
        return self._snapshot

    def choose(self, key: str | bytes) -> Choice:
        snapshot = self._snapshot
        if snapshot is None:
            raise NotServing(f"no serving state for {self.model} in {self.environment} yet"
                             + (f" ({self._error})" if self._error else "") + ": call wait_ready() at start-up.")
        return snapshot.choose(key)

    def close(self) -> None:
        """Stop watching; interrupts a held request."""
        self._stop.set()
        conn = self._conn
        if conn is not None and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def __enter__(self) -> ServingState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the watch thread -------------------------------------------------------------------

    def _run(self) -> None:
        delay = BACKOFF_MIN_S
        while not self._stop.is_set():
            try:
                changed = self._fetch()
            except Exception as exc:
                if self._stop.is_set():
                    break
                message = str(exc) or type(exc).__name__
                if self._error is None:
                    log.warning("modelbot watch of %s/%s failed: %s; retrying with backoff",
                                self.model, self.environment, message)
                self._error = message
                self._disconnect()
                after = exc.after if isinstance(exc, _Retry) and exc.after is not None else None
                self._stop.wait(after if after is not None else random.uniform(0, delay))
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            if self._error is not None:
                log.info("modelbot watch of %s/%s recovered", self.model, self.environment)
            self._error, delay = None, BACKOFF_MIN_S
            if changed is not None:
                self._publish(changed)
        self._disconnect()

    def _fetch(self) -> Snapshot | None:
        """One (held) request: the new snapshot, or None when nothing changed."""
        current = self._snapshot
        path, headers = self._path, dict(self._headers)
        if current is not None:
            path += f"?revision={current.revision}&wait={self._wait_s:g}s"
            if current.etag:
                headers["If-None-Match"] = current.etag
        conn = self._connection()
        conn.timeout = self._wait_s * 17 / 16 + self._timeout_s  # the server's hold plus its jitter
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status == 304:
            return None
        if response.status == 200:
            snapshot = Snapshot.from_json(json.loads(body), response.getheader("ETag"))
            return snapshot if current is None or snapshot != current else None
        message = _error_message(response.status, body)
        if response.status in (429, 503):
            raise _Retry(message, _seconds(response.getheader("Retry-After")))
        raise _Retry(message)

    def _publish(self, snapshot: Snapshot) -> None:
        with self._ready:
            self._snapshot = snapshot
            self._ready.notify_all()
        if self._on_change is not None:
            try:
                self._on_change(snapshot)
            except Exception:
                log.exception("on_change callback failed for %s/%s", self.model, self.environment)

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = kind(self._host, self._port, timeout=self._timeout_s)
        return self._conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _error_message(status: int, body: bytes) -> str:
    try:
        error = json.loads(body)["error"]
        return f"HTTP {status} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}"


def _seconds(raw: str | None) -> float | None:
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None
