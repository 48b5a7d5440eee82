"""Circuit breakers: a remote endpoint that keeps failing is paused, announced once, and probed.

Order per destination already keeps a dead receiver from delaying anyone else's rows; the
breaker adds what people need to see and what the receiver needs to recover:

* **Open.** After `failures` consecutive retryable failures (timeouts, refused connections,
  5xx, 429) of rows naming the circuit, it opens: nothing naming it is claimed until
  `paused_until`, which backs off (`pause_base_s` doubling up to `pause_cap_s`, with jitter).
  Opening writes, in the same transaction, one announcement in the announce channel (the
  policy's `announce_channel`) and an App Home refresh for the admins, whose Home lists the
  paused destinations; `modelbot outbox` shows them too.
* **Probe.** When the pause is over, one row goes out (the claim moves `paused_until` past
  its lease, so no second row follows it meanwhile).
* **Close.** A delivered row closes the circuit: the announcement is updated in place to say
  it resumed, the admins' Home is refreshed, and the rows that waited flow in order. A failed
  probe reopens it with a longer pause, without another announcement.

A permanent failure (a 4xx, a missing secret) does not count: the receiver answered, or no
request was made; the row fails on its own and shows in `modelbot outbox --failed`.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.delivery.jobs import Outcome
from bot.delivery.retry import backoff_delay
from bot.domain.entities import as_utc, iso
from bot.redaction import redact_text
from storage.models import OutboxCircuit, OutboxMessage
from storage.queries import outbox

log = logging.getLogger("modelbot.delivery")

NOTICE_TEMPLATE = "delivery_paused"
ADMIN_HOME_TOPIC = "home:admins"


@dataclass(frozen=True)
class CircuitSettings:
    failures: int = 5
    pause_base_s: float = 30.0
    pause_cap_s: float = 1800.0


class Circuits:
    def __init__(self, settings: CircuitSettings, *, announce_channel: str | None,
                 rng: random.Random | None = None) -> None:
        self.settings = settings
        self.announce_channel = announce_channel
        self._rng = rng or random.Random()

    def opened(self, session: Session, rows: Sequence[OutboxMessage]) -> dict[str, OutboxCircuit]:
        """The open circuits among the claimable rows' (their pause is over: claimable hides the others)."""
        keys = {r.circuit for r in rows if r.circuit}
        return {k: c for k, c in outbox.circuits(session, keys).items() if c.state == "open"}

    def admit(self, session: Session, row: OutboxMessage, opened: dict[str, OutboxCircuit], probing: set[str], *,
              now: datetime, lease: timedelta) -> bool:
        """May this row be sent now? Yes unless its circuit is open and another row already probes it.
        The probe holds its circuit paused for its lease, so no second row follows it meanwhile."""
        circuit = opened.get(row.circuit or "")
        if circuit is None:
            return True
        if circuit.key in probing:
            return False
        probing.add(circuit.key)
        circuit.paused_until = now + lease
        session.add(circuit)
        log.info("circuit %s: pause over; sending outbox row %s as a probe", circuit.key, row.id)
        return True

    def record(self, session: Session, row: OutboxMessage, outcome: Outcome, *, now: datetime) -> None:
        """Count the outcome of one send against the row's circuit (in the worker's record transaction)."""
        if not row.circuit:
            return
        circuit = outbox.circuit(session, row.circuit, lock=True)
        if outcome.status == "delivered":
            if circuit is not None and circuit.state == "open":
                self._close(session, circuit, now)
            elif circuit is not None and circuit.failures:
                circuit.failures, circuit.updated_at = 0, now
                session.add(circuit)
            return
        if outcome.status != "retry":
            if circuit is not None and circuit.state == "open":
                circuit.paused_until, circuit.updated_at = now, now  # no verdict: let the next row probe
                session.add(circuit)
            return
        if circuit is None:
            circuit = OutboxCircuit(key=row.circuit, state="closed", failures=0, trips=0, updated_at=now)
        circuit.failures += 1
        circuit.last_error = redact_text(outcome.error or "")[:500]
        circuit.updated_at = now
        if circuit.state == "open":  # the probe failed
            circuit.trips += 1
            circuit.paused_until = now + self._pause(circuit.trips)
            log.warning("circuit %s: probe failed (%s); paused until %s", circuit.key, circuit.last_error,
                        iso(circuit.paused_until))
        elif circuit.failures >= self.settings.failures:
            self._open(session, circuit, now)
        session.add(circuit)

    # ---- transitions --------------------------------------------------------------------------

    def _open(self, session: Session, circuit: OutboxCircuit, now: datetime) -> None:
        circuit.state, circuit.trips, circuit.opened_at = "open", 1, now
        circuit.paused_until = now + self._pause(1)
        circuit.notice_key = f"circuit:{hashlib.sha256(circuit.key.encode()).hexdigest()[:16]}:{int(now.timestamp())}"
        session.add(circuit)
        session.flush()
        waiting = outbox.waiting_by_circuit(session, [circuit.key]).get(circuit.key, 0)
        log.warning("circuit %s: %d failures in a row (%s); deliveries to it paused until %s, %d waiting",
                    circuit.key, circuit.failures, circuit.last_error, iso(circuit.paused_until), waiting)
        self._notice(session, circuit, now, {"state": "paused", "waiting": waiting})

    def _close(self, session: Session, circuit: OutboxCircuit, now: datetime) -> None:
        opened_at = as_utc(circuit.opened_at) if circuit.opened_at else now
        log.warning("circuit %s: delivered again after %s; resuming", circuit.key, now - opened_at)
        self._notice(session, circuit, now, {"state": "resumed", "resumed_at": iso(now)}, update=True)
        circuit.state, circuit.failures, circuit.trips = "closed", 0, 0
        circuit.opened_at = circuit.paused_until = None
        circuit.notice_key, circuit.updated_at = None, now
        session.add(circuit)

    def _notice(self, session: Session, circuit: OutboxCircuit, now: datetime, facts: dict[str, object], *,
                update: bool = False) -> None:
        """The announcement (posted on opening, edited in place on closing) and the admins' Home."""
        data = {"circuit": circuit.key, "opened_at": iso(circuit.opened_at), "failures": circuit.failures,
                "last_error": circuit.last_error, "paused_until": iso(circuit.paused_until), **facts}
        if self.announce_channel and circuit.notice_key:
            outbox.enqueue(session, now=now, topic=f"circuit:{circuit.key}", kind="update" if update else "post",
                           template=NOTICE_TEMPLATE, data=data, channel=None if update else self.announce_channel,
                           message_key=circuit.notice_key)
        if not outbox.newest_is_pending(session, ADMIN_HOME_TOPIC):
            outbox.enqueue(session, now=now, topic=ADMIN_HOME_TOPIC, kind="home", template="home_refresh",
                           data={"admins": True})

    def _pause(self, trips: int) -> timedelta:
        return timedelta(seconds=backoff_delay(trips, base=self.settings.pause_base_s, cap=self.settings.pause_cap_s,
                                               rng=self._rng))
