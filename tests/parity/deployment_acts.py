"""Deployment acts (promote, approve, reject, cancel, roll back, canary, history) and how each
door performs them. Slack clicks the buttons people click: Approve/Reject/Override on the
approval card, the Roll back button of the two-tap rollback."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote

from bot.blocks import approvals as cards
from tests.parity.doors import Act, Answer, Cell, CliDoor, NotOffered, RestDoor, ShellDoor, SlackDoor
from tests.slack_support import buttons


@dataclass(frozen=True)
class Promote(Act):
    version: str
    env: str
    reason: str | None = None
    abort_canary: bool = False
    override: str | None = None


@dataclass(frozen=True)
class Approve(Act):
    request: int = -1  # index into the cell's requests: -1 the newest
    override: str | None = None


@dataclass(frozen=True)
class Reject(Act):
    request: int = -1
    reason: str = "not this week"


@dataclass(frozen=True)
class Cancel(Act):
    request: int = -1


@dataclass(frozen=True)
class Rollback(Act):
    env: str
    to: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class CanarySet(Act):
    """Start a canary of `version` (or step the running one: `version` None) at `percent`."""

    env: str
    percent: int
    version: str | None = None
    override: str | None = None


@dataclass(frozen=True)
class CanaryAbort(Act):
    env: str


@dataclass(frozen=True)
class CanaryPromote(Act):
    env: str


@dataclass(frozen=True)
class History(Act):
    env: str


# ---- Slack -------------------------------------------------------------------------------------------


def _words(*parts: str | None) -> str:
    return " ".join(p for p in parts if p)


@SlackDoor.offers(Promote)
def _slack_promote(door: SlackDoor, act: Promote, cell: Cell) -> Answer:
    if act.override:
        raise NotOffered("/model promote takes no gate override")
    return door.command(cell, act.who, _words("promote", cell.model, act.version, act.env,
                                              "abort-canary" if act.abort_canary else None, act.reason))


@SlackDoor.offers(Approve)
def _slack_approve(door: SlackDoor, act: Approve, cell: Cell) -> Answer:
    request = cell.request(act.request)
    if act.override is None:
        value = door.card_button(cell, request, cards.APPROVE_ACTION) or json.dumps({"r": request})
        answer = door.click(cell, act.who, cards.APPROVE_ACTION, value)
        assert isinstance(answer, Answer)
        return answer
    value = door.card_button(cell, request, cards.OVERRIDE_ACTION)
    if value is None:  # no Override button on this card (its gates passed): the command is the way
        return door.command(cell, act.who, f"approve {request} override {act.override}")
    opened = door.click(cell, act.who, cards.OVERRIDE_ACTION, value)
    if isinstance(opened, Answer):
        return opened
    return door.submit(cell, act.who, opened, act.override)


@SlackDoor.offers(Reject)
def _slack_reject(door: SlackDoor, act: Reject, cell: Cell) -> Answer:
    request = cell.request(act.request)
    value = door.card_button(cell, request, cards.REJECT_ACTION) or json.dumps({"r": request})
    opened = door.click(cell, act.who, cards.REJECT_ACTION, value)
    if isinstance(opened, Answer):
        return opened
    return door.submit(cell, act.who, opened, act.reason)


@SlackDoor.offers(Cancel)
def _slack_cancel(door: SlackDoor, act: Cancel, cell: Cell) -> Answer:
    return door.command(cell, act.who, f"cancel {cell.request(act.request)}")


@SlackDoor.offers(Rollback)
def _slack_rollback(door: SlackDoor, act: Rollback, cell: Cell) -> Answer:
    """Two taps: the command shows what would happen, the button does it."""
    text = _words("rollback", cell.model, act.env, f"to {act.to}" if act.to else None, act.reason)
    reply = door.command_reply(act.who, text)
    roll = [b for b in buttons(reply.blocks) if b["action_id"] == cards.ROLLBACK_ACTION]
    if not roll:
        return door._answer(cell, reply.blocks, reply.text)
    answer = door.click(cell, act.who, cards.ROLLBACK_ACTION, roll[0]["value"])
    assert isinstance(answer, Answer)
    return answer


@SlackDoor.offers(CanarySet)
def _slack_canary(door: SlackDoor, act: CanarySet, cell: Cell) -> Answer:
    if act.override:
        raise NotOffered("/model canary takes no gate override")
    return door.command(cell, act.who, _words("canary", cell.model, act.version, act.env, str(act.percent)))


@SlackDoor.offers(CanaryAbort, CanaryPromote)
def _slack_canary_action(door: SlackDoor, act: CanaryAbort | CanaryPromote, cell: Cell) -> Answer:
    word = "abort" if isinstance(act, CanaryAbort) else "promote"
    return door.command(cell, act.who, f"canary {cell.model} {act.env} {word}")


@SlackDoor.offers(History)
def _slack_history(door: SlackDoor, act: History, cell: Cell) -> Answer:
    return door.command(cell, act.who, f"history {cell.model} {act.env}")


# ---- shell ---------------------------------------------------------------------------------------------


@ShellDoor.offers(Promote)
def _shell_promote(door: ShellDoor, act: Promote, cell: Cell) -> Answer:
    if act.override:
        raise NotOffered("/model promote takes no gate override")
    return door.lines(cell, act.who, _words("promote", cell.model, act.version, act.env,
                                            "abort-canary" if act.abort_canary else None, act.reason))


@ShellDoor.offers(Approve)
def _shell_approve(door: ShellDoor, act: Approve, cell: Cell) -> Answer:
    override = f" override {act.override}" if act.override else ""
    return door.lines(cell, act.who, f"approve {cell.request(act.request)}{override}")


@ShellDoor.offers(Reject)
def _shell_reject(door: ShellDoor, act: Reject, cell: Cell) -> Answer:
    return door.lines(cell, act.who, f"reject {cell.request(act.request)} {act.reason}")


@ShellDoor.offers(Cancel)
def _shell_cancel(door: ShellDoor, act: Cancel, cell: Cell) -> Answer:
    return door.lines(cell, act.who, f"cancel {cell.request(act.request)}")


@ShellDoor.offers(Rollback)
def _shell_rollback(door: ShellDoor, act: Rollback, cell: Cell) -> Answer:
    """The same two steps as Slack: the command, then the numbered button (confirmed)."""
    text = _words("rollback", cell.model, act.env, f"to {act.to}" if act.to else None, act.reason)
    first = door.lines(cell, act.who, text)
    if first.error:
        return first
    return door.lines(cell, act.who, text, "1")


@ShellDoor.offers(CanarySet)
def _shell_canary(door: ShellDoor, act: CanarySet, cell: Cell) -> Answer:
    if act.override:
        raise NotOffered("/model canary takes no gate override")
    return door.lines(cell, act.who, _words("canary", cell.model, act.version, act.env, str(act.percent)))


@ShellDoor.offers(CanaryAbort, CanaryPromote)
def _shell_canary_action(door: ShellDoor, act: CanaryAbort | CanaryPromote, cell: Cell) -> Answer:
    word = "abort" if isinstance(act, CanaryAbort) else "promote"
    return door.lines(cell, act.who, f"canary {cell.model} {act.env} {word}")


@ShellDoor.offers(History)
def _shell_history(door: ShellDoor, act: History, cell: Cell) -> Answer:
    return door.lines(cell, act.who, f"history {cell.model} {act.env}")


# ---- CLI -----------------------------------------------------------------------------------------------


def _options(**values: str | bool | None) -> list[str]:
    out: list[str] = []
    for key, value in values.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        elif isinstance(value, str):
            out += [flag, value]
    return out


@CliDoor.offers(Promote)
def _cli_promote(door: CliDoor, act: Promote, cell: Cell) -> Answer:
    return door.run(cell, "promote", cell.model, act.version, act.env, "--json", *_options(
        actor=door.identity(act.who), reason=act.reason, abort_canary=act.abort_canary, override_reason=act.override))


@CliDoor.offers(Approve)
def _cli_approve(door: CliDoor, act: Approve, cell: Cell) -> Answer:
    return door.run(cell, "approve", str(cell.request(act.request)), "--json",
                    *_options(actor=door.identity(act.who), override_reason=act.override))


@CliDoor.offers(Reject)
def _cli_reject(door: CliDoor, act: Reject, cell: Cell) -> Answer:
    return door.run(cell, "reject", str(cell.request(act.request)), "--json",
                    *_options(actor=door.identity(act.who), reason=act.reason))


@CliDoor.offers(Cancel)
def _cli_cancel(door: CliDoor, act: Cancel, cell: Cell) -> Answer:
    return door.run(cell, "cancel", str(cell.request(act.request)), "--json", *_options(actor=door.identity(act.who)))


@CliDoor.offers(Rollback)
def _cli_rollback(door: CliDoor, act: Rollback, cell: Cell) -> Answer:
    return door.run(cell, "rollback", cell.model, act.env, "--json",
                    *_options(actor=door.identity(act.who), to=act.to, reason=act.reason))


@CliDoor.offers(CanarySet)
def _cli_canary(door: CliDoor, act: CanarySet, cell: Cell) -> Answer:
    """The CLI names the version even to step (the running canary's)."""
    version = act.version or str(cell.canary_version(act.env))
    return door.run(cell, "canary", cell.model, version, act.env, str(act.percent), "--json",
                    *_options(actor=door.identity(act.who), override_reason=act.override))


@CliDoor.offers(CanaryAbort)
def _cli_canary_abort(door: CliDoor, act: CanaryAbort, cell: Cell) -> Answer:
    return door.run(cell, "canary-abort", cell.model, act.env, "--json", *_options(actor=door.identity(act.who)))


@CliDoor.offers(CanaryPromote)
def _cli_canary_promote(door: CliDoor, act: CanaryPromote, cell: Cell) -> Answer:
    return door.run(cell, "canary-promote", cell.model, act.env, "--json", *_options(actor=door.identity(act.who)))


@CliDoor.offers(History)
def _cli_history(door: CliDoor, act: History, cell: Cell) -> Answer:
    return door.run(cell, "history", cell.model, "--env", act.env)


# ---- REST ----------------------------------------------------------------------------------------------


def _env_path(cell: Cell, env: str) -> str:
    return f"/models/{quote(cell.model)}/environments/{env}"


def _body(**values: object) -> dict[str, object]:
    return {k: v for k, v in values.items() if v not in (None, False)}


@RestDoor.offers(Promote)
def _rest_promote(door: RestDoor, act: Promote, cell: Cell) -> Answer:
    return door.call(cell, act.who, "POST", _env_path(cell, act.env) + "/promotions", _body(
        version=act.version, reason=act.reason, abort_canary=act.abort_canary, override_reason=act.override))


@RestDoor.offers(Approve)
def _rest_approve(door: RestDoor, act: Approve, cell: Cell) -> Answer:
    return door.call(cell, act.who, "POST", f"/requests/{cell.request(act.request)}/approve",
                     _body(override_reason=act.override))


@RestDoor.offers(Reject)
def _rest_reject(door: RestDoor, act: Reject, cell: Cell) -> Answer:
    return door.call(cell, act.who, "POST", f"/requests/{cell.request(act.request)}/reject", {"reason": act.reason})


@RestDoor.offers(Cancel)
def _rest_cancel(door: RestDoor, act: Cancel, cell: Cell) -> Answer:
    return door.call(cell, act.who, "POST", f"/requests/{cell.request(act.request)}/cancel", {})


@RestDoor.offers(Rollback)
def _rest_rollback(door: RestDoor, act: Rollback, cell: Cell) -> Answer:
    return door.call(cell, act.who, "POST", _env_path(cell, act.env) + "/rollback", _body(to=act.to, reason=act.reason))


@RestDoor.offers(CanarySet)
def _rest_canary(door: RestDoor, act: CanarySet, cell: Cell) -> Answer:
    return door.call(cell, act.who, "POST", _env_path(cell, act.env) + "/canary", _body(
        version=act.version, percent=act.percent, override_reason=act.override))


@RestDoor.offers(CanaryAbort)
def _rest_canary_abort(door: RestDoor, act: CanaryAbort, cell: Cell) -> Answer:
    return door.call(cell, act.who, "POST", _env_path(cell, act.env) + "/canary/abort", {})


@RestDoor.offers(CanaryPromote)
def _rest_canary_promote(door: RestDoor, act: CanaryPromote, cell: Cell) -> Answer:
    return door.call(cell, act.who, "POST", _env_path(cell, act.env) + "/canary/promote", {})


@RestDoor.offers(History)
def _rest_history(door: RestDoor, act: History, cell: Cell) -> Answer:
    return door.call(cell, act.who, "GET", f"/models/{quote(cell.model)}/history?environment={act.env}")
