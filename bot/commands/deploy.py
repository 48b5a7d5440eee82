"""The `/model` grammar for promotions, approvals, rollbacks and canaries.

Registered on the shared grammar with `@command`, so `help` lists these commands and every
front end (Slack, shell, tests) parses them the same way. The grammar only checks shapes;
which environments exist and who may do what is the domain's business.

    promote MODEL REF [to] ENV [abort-canary] [reason…]
    rollback MODEL [ENV] [to REF] [reason…]      ENV defaults to production
    canary MODEL REF ENV PERCENT                 start a canary, or move it (same REF)
    canary MODEL ENV PERCENT                     move the running canary
    canary MODEL ENV abort|promote [reason…]
    requests [MODEL]
    approve REQUEST [override REASON…]
    reject REQUEST REASON…
    cancel REQUEST [reason…]
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.commands.grammar import Command, CommandSpec, UsageError, command, env_token, expect
from bot.domain.deployments import parse_percent
from bot.domain.names import preview
from bot.domain.refs import parse_ref

# In declaration order: the order of `/model help`.
SPECS: list[CommandSpec] = []

DEFAULT_ROLLBACK_ENV = "production"
CANARY_ACTIONS = ("abort", "promote")
ABORT_CANARY = "abort-canary"


@dataclass(frozen=True)
class Promote(Command):
    model: str
    ref: str
    environment: str
    reason: str | None = None
    abort_canary: bool = False

    @property
    def name(self) -> str:
        return "promote"


@dataclass(frozen=True)
class Rollback(Command):
    model: str
    environment: str = DEFAULT_ROLLBACK_ENV
    to: str | None = None
    reason: str | None = None

    @property
    def name(self) -> str:
        return "rollback"


@dataclass(frozen=True)
class CanarySet(Command):
    """Start a canary (REF given) or move the running one's weight (REF None)."""

    model: str
    ref: str | None
    environment: str
    percent: int

    @property
    def name(self) -> str:
        return "canary"


@dataclass(frozen=True)
class CanaryAction(Command):
    model: str
    environment: str
    action: str  # abort | promote
    reason: str | None = None

    @property
    def name(self) -> str:
        return "canary"


@dataclass(frozen=True)
class ListRequests(Command):
    model: str | None = None

    @property
    def name(self) -> str:
        return "requests"


@dataclass(frozen=True)
class Approve(Command):
    request: str
    override_reason: str | None = None

    @property
    def name(self) -> str:
        return "approve"


@dataclass(frozen=True)
class Reject(Command):
    request: str
    reason: str

    @property
    def name(self) -> str:
        return "reject"


@dataclass(frozen=True)
class Cancel(Command):
    request: str
    reason: str | None = None

    @property
    def name(self) -> str:
        return "cancel"


def _reason(words: list[str]) -> str | None:
    return " ".join(words) or None


def _request_id(token: str) -> str:
    text = token.strip().lstrip("#")
    if not text.isdigit() or len(text) > 12:
        raise UsageError(f"'{preview(token)}' is not a request id: use the number shown on the card, like 42.")
    return text


@command(
    SPECS,
    "promote", "promote MODEL REF [to] ENV [abort-canary] [reason…]",
    "promote a version (asks for approvals where the policy says so)",
    details="Environments with approvals get an approval card with Approve/Reject buttons in their approval "
    "channel; the others move at once. A running canary in ENV is never dropped silently: the promotion is "
    "refused unless you add `abort-canary`. Example: `/model promote churn 7 to production better recall`.",
)
def _parse_promote(args: list[str]) -> Command:
    expect(args, 3, None, "model, version and environment, for example `promote churn 7 production`")
    model, ref, rest = args[0], args[1], args[2:]
    parse_ref(ref)
    if rest[0].lower() == "to":
        rest = rest[1:]
        if not rest:
            raise UsageError("Missing the environment after 'to'.")
    env, rest = env_token(rest[0]), rest[1:]
    abort_canary = bool(rest) and rest[0].lower() == ABORT_CANARY
    return Promote(model, ref, env, _reason(rest[1:] if abort_canary else rest), abort_canary)


@command(
    SPECS,
    "rollback", "rollback MODEL [ENV] [to REF] [reason…]", "put the previous version back, after one confirm tap",
    details="ENV defaults to production; without `to REF` it goes back to the previous stable version (kept "
    "warm). To give a reason, name the environment first: `/model rollback churn production latency spike`.",
)
def _parse_rollback(args: list[str]) -> Command:
    expect(args, 1, None, "the model name, for example `rollback churn`")
    model, rest = args[0], args[1:]
    env = DEFAULT_ROLLBACK_ENV
    if rest and rest[0].lower() != "to":
        env, rest = env_token(rest[0]), rest[1:]
    to = None
    if rest and rest[0].lower() == "to":
        if len(rest) < 2:
            raise UsageError("Missing the version after 'to', for example `to 6`.")
        to = rest[1]
        parse_ref(to)
        rest = rest[2:]
    return Rollback(model, env, to, _reason(rest))


@command(
    SPECS,
    "canary", "canary MODEL REF ENV PERCENT | canary MODEL ENV abort|promote",
    "run a canary beside the stable version, step it up, promote or abort it",
    details="PERCENT is 1–99. `canary churn production 25` moves the running canary; `promote` makes it "
    "stable (through the approval policy), `abort` sets its weight to 0.",
)
def _parse_canary(args: list[str]) -> Command:
    expect(args, 3, None, "model, environment and percentage, for example `canary churn 7 production 5`")
    model = args[0]
    if args[2].lower() in CANARY_ACTIONS:
        return CanaryAction(model, env_token(args[1]), args[2].lower(), _reason(args[3:]))
    if len(args) == 3:
        return CanarySet(model, None, env_token(args[1]), parse_percent(args[2]))
    expect(args, 4, 4, "model, version, environment and percentage")
    parse_ref(args[1])
    return CanarySet(model, args[1], env_token(args[2]), parse_percent(args[3]))


@command(SPECS, "requests", "requests [MODEL]", "pending promotion requests, newest first", aliases=("pending",))
def _parse_requests(args: list[str]) -> Command:
    expect(args, 0, 1, "model name")
    return ListRequests(args[0] if args else None)


@command(
    SPECS,
    "approve", "approve REQUEST [override REASON…]", "approve a request, like its Approve button",
    details="Admins may override a failing gate with a written reason: `/model approve 42 override retrained "
    "on fixed data`.",
)
def _parse_approve(args: list[str]) -> Command:
    expect(args, 1, None, "the request id, for example `approve 42`")
    request = _request_id(args[0])
    if len(args) == 1:
        return Approve(request)
    if args[1].lower() != "override":
        raise UsageError(f"'{preview(args[1], 20)}' was not expected: only `override REASON…` may follow the id.")
    if len(args) < 3:
        raise UsageError("Say why the failing gate may be overridden: `override REASON…`.")
    return Approve(request, " ".join(args[2:]))


@command(SPECS, "reject", "reject REQUEST REASON…", "reject a request; the requester reads your reason")
def _parse_reject(args: list[str]) -> Command:
    expect(args, 1, None, "the request id and a reason, for example `reject 42 drift on tenure`")
    request = _request_id(args[0])
    if len(args) < 2:
        raise UsageError("Say why you reject it: the requester will read your reason.")
    return Reject(request, " ".join(args[1:]))


@command(SPECS, "cancel", "cancel REQUEST [reason…]", "withdraw your own pending request (admins: anyone's)")
def _parse_cancel(args: list[str]) -> Command:
    expect(args, 1, None, "the request id, for example `cancel 42`")
    return Cancel(_request_id(args[0]), _reason(args[1:]))
