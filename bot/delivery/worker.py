"""The outbox worker: claim due rows, send them outside any transaction, record what happened.

1. **Claim** in a short write transaction: `storage.queries.outbox.claimable` hands out the oldest due
   row of each destination (one Slack message and its updates, one channel's announcements, one
   webhook URL: rows of a destination go out in the order they were caused, rows of different
   destinations never wait for each other). On PostgreSQL the rows come back locked with SKIP
   LOCKED, on SQLite the immediate transaction serialises claimers. Claimed rows are leased
   (`sending`, `lease_until`) and committed, so the send holds no lock and no connection.
2. **Send** each row in the thread pool of its destination's *lane* (`slack`, `webhook`, …),
   each lane with `concurrency` threads of its own: a webhook receiver that hangs can hold
   webhook threads, never the ones Slack messages use. The loop does not wait for a round to
   finish: while one send hangs, the next rows of other destinations are claimed and sent.
3. **Record** each result in its own short transaction, from the sending thread, but only if
   the row is still ours (same status and attempt number): a worker whose lease ran out must
   not overwrite the worker that took the row over. The same transaction counts the result
   against the row's circuit breaker (`bot.delivery.circuits`).

A worker that dies mid-send leaves its rows `sending`; once the lease expires another worker
claims them again and, because the outcome is unknown, first looks in Slack for the message
before sending it again (see `slack_sender`). Several processes may run workers at once.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from slack_sdk import WebClient
from sqlmodel import Session, col, select

from bot.delivery.circuits import Circuits, CircuitSettings
from bot.delivery.home import HOME_KIND, HomeRenderer, superseded_refresh
from bot.delivery.jobs import Job, Outcome, SlackTarget
from bot.delivery.pacing import ChannelPacer
from bot.delivery.retry import backoff_delay
from bot.delivery.settings import DeliverySettings
from bot.delivery.slack_sender import SlackSender
from bot.delivery.webhooks import WebhookSender
from bot.domain.entities import as_utc, iso
from bot.observability import OUTBOX_DELIVERIES, OUTBOX_FAILED, OUTBOX_PAUSED, OUTBOX_PENDING
from bot.redaction import redact_text
from storage.db import Database
from storage.models import OutboxCircuit, OutboxMessage
from storage.queries import outbox

log = logging.getLogger("modelbot.delivery")


class Sender(Protocol):
    def send(self, job: Job) -> Outcome: ...


# kinds whose Slack call is chat.postMessage, paced per channel
_PACED = frozenset({"post", "thread"})
# kinds that act on the message recorded under their message_key
_KEYED = frozenset({"update", "thread", "ephemeral", "upload"})  # upload: a file into the keyed message's thread
GAUGE_REFRESH_S = 5.0
# how often an idle worker looks at its stop event while it waits for a send to finish
STOP_CHECK_S = 0.1


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        client: WebClient | None,
        *,
        clock: Callable[[], datetime],
        lease_seconds: float = 60.0,
        http_timeout_s: int = 10,
        concurrency: int = 4,
        post_interval_s: float = 1.0,
        backoff_base_s: float = 2.0,
        backoff_cap_s: float = 300.0,
        give_up_after: timedelta = timedelta(hours=24),
        poll_seconds: float = 1.0,
        env: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
        home: HomeRenderer | None = None,
        senders: Mapping[str, Callable[[Job], Outcome]] | None = None,
        sender: Sender | None = None,
        circuits: CircuitSettings | None = None,
        announce_channel: str | None = None,
        webhooks: Sequence[str] = (),
    ) -> None:
        """`client` must not retry by itself (make_web_client(..., retries=0)): the worker
        schedules retries in the database, so a 429 or a hanging Slack never pins a thread.
        `senders`: outbox kinds sent to other destinations (MLflow aliases), by kind.
        `sender` replaces the Slack and the webhook sender (the shell's preview); then `client`
        may be None. `webhooks` are the policy's webhook URLs, credentials included (rows store
        them redacted); `announce_channel` is where paused and resumed destinations are announced."""
        self.db = db
        self.clock = clock
        self.lease = timedelta(seconds=lease_seconds)
        self.http_timeout = timedelta(seconds=http_timeout_s)
        self.concurrency = max(1, concurrency)
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.give_up_after = give_up_after
        self.poll_seconds = poll_seconds
        self.pacer = ChannelPacer(post_interval_s)
        self._rng = rng or random.Random()
        assert sender is not None or client is not None, "a worker needs a Slack client or a sender"
        self._slack: Sender = sender or SlackSender(client, clock=self._now, http_timeout_s=http_timeout_s,
                                                    home=home)  # type: ignore[arg-type]
        self._webhooks: Sender = sender or WebhookSender(clock=self._now, timeout_s=http_timeout_s, env=env,
                                                         urls=webhooks)
        self._senders = dict(senders or {})
        self._circuits = Circuits(circuits or CircuitSettings(), announce_channel=announce_channel, rng=self._rng)
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._busy: Counter[str] = Counter()  # rows in flight per lane
        self._busy_lock = threading.Lock()
        self._finished = threading.Event()
        self._gauges_at = 0.0

    @classmethod
    def from_settings(cls, db: Database, client: WebClient, settings: DeliverySettings, *,
                      clock: Callable[[], datetime], env: Mapping[str, str] | None = None,
                      home: HomeRenderer | None = None, announce_channel: str | None = None,
                      webhooks: Sequence[str] = (),
                      senders: Mapping[str, Callable[[Job], Outcome]] | None = None) -> DeliveryWorker:
        return cls(
            db, client, clock=clock, lease_seconds=settings.lease_seconds, http_timeout_s=settings.http_timeout_s,
            concurrency=settings.concurrency, post_interval_s=settings.post_interval_s,
            backoff_base_s=settings.backoff_base_s, backoff_cap_s=settings.backoff_cap_s,
            give_up_after=settings.give_up_after, poll_seconds=settings.poll_seconds, env=env, home=home,
            circuits=settings.circuits, announce_channel=announce_channel, webhooks=webhooks, senders=senders,
        )

    # ---- the loop -----------------------------------------------------------------------

    def run_once(self) -> int:
        """Claim what the lanes have room for, send it and record it; returns how many rows were
        attempted. Waits for this round's sends (tests and drills step the worker with it)."""
        futures = self._start()
        wait(futures)
        return len(futures)

    def run_forever(self, stop: threading.Event) -> None:
        """Deliver until `stop` is set. Sends run in the background: the loop claims again as soon
        as a send finishes or a poll interval passes, whatever is still in flight elsewhere."""
        log.info("outbox delivery started")
        while not stop.is_set():
            try:
                started = len(self._start())
            except Exception:
                log.exception("outbox delivery round failed; trying again shortly")
                started = 0
            self._refresh_gauges_now_and_then()
            if started == 0:
                self._idle(stop)
        log.info("outbox delivery stopped")

    def close(self) -> None:
        """Let sends in flight finish (each is bounded by the HTTP timeout) and record them."""
        for pool in list(self._pools.values()):
            pool.shutdown(wait=True)

    def refresh_gauges(self) -> None:
        with self.db.read() as session:
            rows = session.exec(
                select(OutboxMessage.status, sa.func.count())
                .where(col(OutboxMessage.status).in_(("pending", "sending", "failed")))
                .group_by(OutboxMessage.status)
            ).all()
            paused = session.exec(select(sa.func.count()).select_from(OutboxCircuit)
                                  .where(OutboxCircuit.state == "open")).one()
        counts = dict(rows)
        OUTBOX_PENDING.set(counts.get("pending", 0) + counts.get("sending", 0))
        OUTBOX_FAILED.set(counts.get("failed", 0))
        OUTBOX_PAUSED.set(paused)

    # ---- claim --------------------------------------------------------------------------

    def _anything_due(self, now: datetime) -> bool:
        """A cheap read first, so an idle worker does not take SQLite's write lock every poll."""
        with self.db.read() as session:
            due = sa.or_(
                sa.and_(OutboxMessage.status == "pending", col(OutboxMessage.next_attempt_at) <= now),
                sa.and_(OutboxMessage.status == "sending", col(OutboxMessage.lease_until) <= now),
            )
            return session.exec(select(OutboxMessage.id).where(due).limit(1)).first() is not None

    def _start(self) -> list[Future[None]]:
        now = self._now()
        if not self._anything_due(now):
            return []
        return [self._submit(job) for job in self._claim(now)]

    def _claim(self, now: datetime) -> list[Job]:
        jobs: list[Job] = []
        taken: Counter[str] = Counter()
        sent_back: Counter[str] = Counter()
        probing: set[str] = set()
        with self._busy_lock:
            busy = Counter(self._busy)
        full = {lane for lane, n in busy.items() if n >= self.concurrency}
        with self.db.write() as session:
            rows = outbox.claimable(session, now=now, limit=self.concurrency * 8, skip_locked=not self.db.is_sqlite,
                                    full_lanes=full)
            opened = self._circuits.opened(session, rows)
            for row in rows:
                lane = outbox.lane(row.destination)
                if busy[lane] + taken[lane] >= self.concurrency:
                    continue
                if not self._circuits.admit(session, row, opened, probing, now=now, lease=self.lease):
                    continue
                maybe_sent = row.status == "sending" or bool((row.result or {}).get("maybe_sent"))
                target, decided = _target(session, row) if row.kind in _KEYED else (None, None)
                if row.kind == HOME_KIND:
                    decided = superseded_refresh(session, row)
                channel = row.channel if row.kind == "post" else (target.channel if target else None)
                if row.kind in _PACED and channel and decided is None:
                    later = self.pacer.reserve(channel, now, sent_back[channel])
                    if later is not None:
                        sent_back[channel] += 1
                        row.status, row.lease_until, row.next_attempt_at = "pending", None, later
                        row.result = {**(row.result or {}), "maybe_sent": maybe_sent}
                        session.add(row)
                        OUTBOX_DELIVERIES.labels(row.kind, "deferred").inc()
                        continue
                outbox.lease(row, now=now, seconds=self.lease.total_seconds())
                session.add(row)
                taken[lane] += 1
                jobs.append(Job.from_row(row, maybe_sent=maybe_sent, target=target, decided=decided))
        with self._busy_lock:
            self._busy.update(taken)
        return jobs

    def _submit(self, job: Job) -> Future[None]:
        lane = outbox.lane(job.destination)
        pool = self._pools.get(lane)
        if pool is None:
            pool = self._pools[lane] = ThreadPoolExecutor(max_workers=self.concurrency,
                                                          thread_name_prefix=f"modelbot-deliver-{lane}")
        future = pool.submit(self._deliver, job)
        future.add_done_callback(lambda _f: self._done(lane))
        return future

    def _deliver(self, job: Job) -> None:
        outcome = self._send(job)
        try:
            self._record(job, outcome)
        except Exception:
            # the row stays `sending`; after its lease another round sends or finds it
            log.exception("could not record the result of outbox row %s", job.id)

    def _done(self, lane: str) -> None:
        with self._busy_lock:
            self._busy[lane] -= 1
        self._finished.set()

    def _idle(self, stop: threading.Event) -> None:
        """Wait up to one poll interval; return early when a send finishes (the next row of its
        destination may be due now) or when asked to stop."""
        deadline = time.monotonic() + self.poll_seconds
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._finished.wait(min(remaining, STOP_CHECK_S)):
                self._finished.clear()
                return

    # ---- send ---------------------------------------------------------------------------

    def _send(self, job: Job) -> Outcome:
        if job.decided is not None:
            return job.decided
        try:
            if job.kind in self._senders:
                return self._senders[job.kind](job)
            if job.kind == "webhook":
                return self._webhooks.send(job)
            return self._slack.send(job)
        except Exception as exc:  # a bug, not Slack: fail visibly rather than retry forever
            log.exception("outbox row %s (%s) could not be sent", job.id, job.kind)
            return Outcome.failed(f"internal error while sending: {type(exc).__name__}: {exc}")

    # ---- record -------------------------------------------------------------------------

    def _record(self, job: Job, outcome: Outcome) -> None:
        now = self._now()
        with self.db.write() as session:
            row = session.exec(
                self.db.lock_for_update(select(OutboxMessage).where(OutboxMessage.id == job.id))
                .execution_options(populate_existing=True)
            ).first()
            if row is None or row.status != "sending" or row.attempts != job.attempts:
                log.warning("outbox row %s was taken over by another worker after its lease ran out; "
                            "dropping this worker's result (%s)", job.id, outcome.status)
                OUTBOX_DELIVERIES.labels(job.kind, "superseded").inc()
                return
            row.lease_until = None
            self._circuits.record(session, row, outcome, now=now)
            if outcome.error:
                outcome = dataclasses.replace(outcome, error=redact_text(outcome.error))
            failing_since = _failing_since(row.result, now)
            if outcome.status == "retry" and now - failing_since > self.give_up_after:
                outcome = Outcome.failed(f"gave up after {row.attempts} attempts failing since {iso(failing_since)}: "
                                         f"{outcome.error}")
            if outcome.status == "delivered":
                row.status, row.delivered_at, row.last_error = "delivered", now, None
                row.result = dict(outcome.result)
                if outcome.remember and row.message_key and row.kind == "post":
                    channel, ts = outcome.remember
                    outbox.remember_message(session, key=row.message_key, channel=channel, ts=ts, outbox_id=row.id,
                                            now=now)
            elif outcome.status == "failed":
                row.status, row.last_error = "failed", outcome.error
                row.result = {**(row.result or {}), "failed_at": iso(now)}
                log.error("outbox row %s (%s %s, to %s) failed: %s", row.id, row.kind, row.template,
                          row.destination, outcome.error)
            else:
                delay = self._retry_delay(outcome, row.attempts)
                row.status, row.last_error = "pending", outcome.error
                row.next_attempt_at = now + timedelta(seconds=delay)
                row.result = {"failing_since": iso(failing_since), "maybe_sent": outcome.maybe_sent}
                if outcome.rate_limited_channel:
                    self.pacer.hold(outcome.rate_limited_channel, row.next_attempt_at)
                log.warning("outbox row %s (%s) attempt %s: %s; next attempt in %.1f s", row.id, row.kind,
                            row.attempts, outcome.error, delay)
            session.add(row)
        OUTBOX_DELIVERIES.labels(job.kind, outcome.label or _label(outcome.status)).inc()

    def _retry_delay(self, outcome: Outcome, attempts: int) -> float:
        if outcome.retry_after is not None:
            return outcome.retry_after
        delay = backoff_delay(attempts, base=self.backoff_base_s, cap=self.backoff_cap_s, rng=self._rng)
        if outcome.transport:
            delay = max(delay, self.http_timeout.total_seconds())
        return delay

    # ---- helpers ------------------------------------------------------------------------

    def _now(self) -> datetime:
        return as_utc(self.clock())

    def _refresh_gauges_now_and_then(self) -> None:
        if time.monotonic() - self._gauges_at < GAUGE_REFRESH_S:
            return
        self._gauges_at = time.monotonic()
        try:
            self.refresh_gauges()
        except Exception:
            log.debug("could not refresh outbox gauges", exc_info=True)


def _failing_since(result: dict[str, object] | None, now: datetime) -> datetime:
    """When the current run of retryable failures began (now, for the first one).

    Giving up is measured from there, not from the row's creation: a worker that comes back
    after a long downtime must not give up on old rows at their first 500.
    """
    raw = (result or {}).get("failing_since")
    if not raw:
        return now
    try:
        return as_utc(datetime.fromisoformat(str(raw).replace("Z", "+00:00")))
    except ValueError:
        return now


def _label(status: str) -> str:
    return {"retry": "retried"}.get(status, status)


def _target(session: Session, row: OutboxMessage) -> tuple[SlackTarget | None, Outcome | None]:
    """The message an update/thread/ephemeral row refers to, or the outcome when there is none.

    Rows of one message key share a destination, so the post that creates the message has
    finished before this row is claimed; if there is still no message, the post failed (the update fails too, naming it)
    or nothing was ever posted under that key (no approval channel): nothing to edit.
    """
    if not row.message_key:
        return None, None
    if row.kind == "update":
        newer = session.exec(
            select(OutboxMessage.id).where(
                OutboxMessage.message_key == row.message_key, OutboxMessage.kind == "update",
                col(OutboxMessage.id) > row.id, OutboxMessage.status == "delivered",
            ).limit(1)
        ).first()
        if newer is not None:  # only after a manual retry: never put an older card state back
            return None, Outcome.delivered({"skipped": f"superseded by outbox row {newer}"}, label="skipped")
    ref = outbox.message_ref(session, row.message_key)
    if ref is not None:
        return SlackTarget(ref.channel, ref.ts), None
    if row.kind == "ephemeral":
        return None, None  # the link goes out without a permalink
    post = session.exec(
        select(OutboxMessage).where(OutboxMessage.message_key == row.message_key, OutboxMessage.kind == "post")
        .order_by(col(OutboxMessage.id).desc()).limit(1)
    ).first()
    if post is None:
        return None, Outcome.delivered({"skipped": f"no message was ever posted under {row.message_key}"},
                                       label="skipped")
    if post.status == "failed":
        return None, Outcome.failed(f"the message this {row.kind} needs was never posted: outbox row {post.id} "
                                    f"failed ({post.last_error})")
    return None, Outcome.retry(f"waiting for outbox row {post.id} to post the message first", maybe_sent=False)
