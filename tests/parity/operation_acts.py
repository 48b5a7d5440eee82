"""Acts of alerts, subscriptions and tokens, and how each door performs them (issue 10's rule book
for 10b; the framework is tests/parity/doors.py). Slack clicks what people click: the alert
card's Acknowledge, Silence 1 h and Roll back buttons (their values read from the card the
domain wrote to the outbox); commands elsewhere. The CLI and REST act as persona names, Slack
and the shell as user ids; a `#name` is looked up in the fake Slack where the door can (Slack,
the shell), the CLI gives the id (it has no bot token here).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import sqlalchemy as sa

from bot.blocks import alerts as cards
from storage.models import AlertGroup, OutboxMessage, RegisteredModel, Silence
from tests.parity.doors import Act, Answer, Cell, CliDoor, NotOffered, RestDoor, ShellDoor, SlackDoor
from tests.slack_support import buttons

DIGEST_CHANNEL, DIGEST_CHANNEL_NAME = "C0DIGESTS", "digests"


@dataclass(frozen=True)
class Subscribe(Act):
    """A daily digest of the cell's model to the digest channel, or to the actor's own DM."""

    dm: bool = False
    at: str = "09:00"


@dataclass(frozen=True)
class Unsubscribe(Act):
    pass


@dataclass(frozen=True)
class Acknowledge(Act):
    pass


@dataclass(frozen=True)
class SilenceAlerts(Act):
    duration: str = "1h"


@dataclass(frozen=True)
class Unsilence(Act):
    pass


@dataclass(frozen=True)
class AddRule(Act):
    pass


@dataclass(frozen=True)
class RemoveRule(Act):
    pass


@dataclass(frozen=True)
class RollBackFromCard(Act):
    pass


@dataclass(frozen=True)
class ReadModel(Act):
    """GET the model with the token named `who` (a persona, or a token of the case's own)."""


@dataclass(frozen=True)
class RotateToken(Act):
    pass


# ---- what a cell has ------------------------------------------------------------------------------------


def alert_number(cell: Cell) -> int:
    with cell.services.db.read() as session:
        found = session.execute(sa.select(AlertGroup.id).join(RegisteredModel, RegisteredModel.id == AlertGroup.model_id)
                                .where(RegisteredModel.name_key == cell.model.lower())
                                .order_by(AlertGroup.id.desc())).scalar()  # type: ignore[union-attr]
    assert found is not None, f"{cell.model} has no alert"
    return int(found)


def silence_number(cell: Cell) -> int:
    with cell.services.db.read() as session:
        found = session.execute(sa.select(Silence.id).join(RegisteredModel, RegisteredModel.id == Silence.model_id)
                                .where(RegisteredModel.name_key == cell.model.lower())
                                .order_by(Silence.id.desc())).scalar()  # type: ignore[union-attr]
    assert found is not None, f"{cell.model} has no silence"
    return int(found)


def rule_number(cell: Cell) -> int:
    rules = cell.services.registry  # the newest rule of the model
    from bot.domain.alerting.rules import AlertRules

    found = AlertRules(rules).list(cell.model)
    assert found, f"{cell.model} has no alert rule"
    return int(found[-1].id or 0)


def card_button(cell: Cell, action_id: str) -> str:
    """A button's value on the alert card as first posted."""
    with cell.services.db.read() as session:
        data = session.execute(sa.select(OutboxMessage.data).where(
            OutboxMessage.message_key == f"alertgroup:{alert_number(cell)}", OutboxMessage.template == "alert_card",
            OutboxMessage.kind == "post")).scalar()
    assert data is not None, "the alert card was not posted"
    message = cards.alert_card(data)
    return next(b["value"] for b in buttons(message.blocks) if b["action_id"] == action_id)


def token_name(cell: Cell) -> str:
    return f"tok-{cell.model}"[:64]


# ---- Slack -----------------------------------------------------------------------------------------------


def _click(door: SlackDoor, cell: Cell, who: str, action_id: str) -> Answer:
    answer = door.click(cell, who, action_id, card_button(cell, action_id))
    assert isinstance(answer, Answer)
    return answer


@SlackDoor.offers(Subscribe)
def _slack_subscribe(door: SlackDoor, act: Subscribe, cell: Cell) -> Answer:
    return door.command(cell, act.who, f"subscribe {cell.model} {'dm' if act.dm else '#' + DIGEST_CHANNEL_NAME} "
                                       f"daily {act.at}")


@SlackDoor.offers(Unsubscribe)
def _slack_unsubscribe(door: SlackDoor, act: Unsubscribe, cell: Cell) -> Answer:
    return door.command(cell, act.who, f"unsubscribe {cell.model} <#{DIGEST_CHANNEL}|{DIGEST_CHANNEL_NAME}> daily")


@SlackDoor.offers(Acknowledge)
def _slack_ack(door: SlackDoor, act: Acknowledge, cell: Cell) -> Answer:
    return _click(door, cell, act.who, cards.ACK_ACTION)


@SlackDoor.offers(SilenceAlerts)
def _slack_silence(door: SlackDoor, act: SilenceAlerts, cell: Cell) -> Answer:
    if act.duration == "1h":
        return _click(door, cell, act.who, cards.SILENCE_1H_ACTION)
    return door.command(cell, act.who, f"silence {cell.model}@production {act.duration} silenced from the alert card")


@SlackDoor.offers(Unsilence)
def _slack_unsilence(door: SlackDoor, act: Unsilence, cell: Cell) -> Answer:
    return door.command(cell, act.who, f"unsilence {silence_number(cell)}")


@SlackDoor.offers(AddRule)
def _slack_add_rule(door: SlackDoor, act: AddRule, cell: Cell) -> Answer:
    return door.command(cell, act.who, f"alert add {cell.model} error_rate > 0.2 for 5m")


@SlackDoor.offers(RemoveRule)
def _slack_remove_rule(door: SlackDoor, act: RemoveRule, cell: Cell) -> Answer:
    return door.command(cell, act.who, f"alert rm {rule_number(cell)}")


@SlackDoor.offers(RollBackFromCard)
def _slack_roll_back(door: SlackDoor, act: RollBackFromCard, cell: Cell) -> Answer:
    return _click(door, cell, act.who, cards.ROLLBACK_ACTION)


# ---- shell ------------------------------------------------------------------------------------------------


@ShellDoor.offers(Subscribe)
def _shell_subscribe(door: ShellDoor, act: Subscribe, cell: Cell) -> Answer:
    return door.lines(cell, act.who, f"subscribe {cell.model} {'dm' if act.dm else '#' + DIGEST_CHANNEL_NAME} "
                                     f"daily {act.at}")


@ShellDoor.offers(Unsubscribe)
def _shell_unsubscribe(door: ShellDoor, act: Unsubscribe, cell: Cell) -> Answer:
    return door.lines(cell, act.who, f"unsubscribe {cell.model} #{DIGEST_CHANNEL_NAME} daily")


@ShellDoor.offers(Acknowledge)
def _shell_ack(door: ShellDoor, act: Acknowledge, cell: Cell) -> Answer:
    return door.lines(cell, act.who, f"ack {alert_number(cell)}")


@ShellDoor.offers(SilenceAlerts)
def _shell_silence(door: ShellDoor, act: SilenceAlerts, cell: Cell) -> Answer:
    return door.lines(cell, act.who, f"silence {cell.model}@production {act.duration} silenced from the alert card")


@ShellDoor.offers(Unsilence)
def _shell_unsilence(door: ShellDoor, act: Unsilence, cell: Cell) -> Answer:
    return door.lines(cell, act.who, f"unsilence {silence_number(cell)}")


@ShellDoor.offers(AddRule)
def _shell_add_rule(door: ShellDoor, act: AddRule, cell: Cell) -> Answer:
    return door.lines(cell, act.who, f"alert add {cell.model} error_rate > 0.2 for 5m")


@ShellDoor.offers(RemoveRule)
def _shell_remove_rule(door: ShellDoor, act: RemoveRule, cell: Cell) -> Answer:
    return door.lines(cell, act.who, f"alert rm {rule_number(cell)}")


# ---- CLI --------------------------------------------------------------------------------------------------


@CliDoor.offers(Subscribe)
def _cli_subscribe(door: CliDoor, act: Subscribe, cell: Cell) -> Answer:
    if act.dm:
        raise NotOffered("a DM digest goes to a Slack user; the CLI acts as a name")
    return door.run(cell, "subscribe", cell.model, DIGEST_CHANNEL, "daily", act.at, "--json",
                    "--actor", door.identity(act.who))


@CliDoor.offers(Unsubscribe)
def _cli_unsubscribe(door: CliDoor, act: Unsubscribe, cell: Cell) -> Answer:
    return door.run(cell, "unsubscribe", cell.model, DIGEST_CHANNEL, "daily", "--json", "--actor",
                    door.identity(act.who))


@CliDoor.offers(Acknowledge)
def _cli_ack(door: CliDoor, act: Acknowledge, cell: Cell) -> Answer:
    return door.run(cell, "ack", str(alert_number(cell)), "--json", "--actor", door.identity(act.who))


@CliDoor.offers(SilenceAlerts)
def _cli_silence(door: CliDoor, act: SilenceAlerts, cell: Cell) -> Answer:
    return door.run(cell, "silence", f"{cell.model}@production", act.duration, "--reason",
                    "silenced from the alert card", "--json", "--actor", door.identity(act.who))


@CliDoor.offers(Unsilence)
def _cli_unsilence(door: CliDoor, act: Unsilence, cell: Cell) -> Answer:
    return door.run(cell, "unsilence", str(silence_number(cell)), "--json", "--actor", door.identity(act.who))


@CliDoor.offers(AddRule)
def _cli_add_rule(door: CliDoor, act: AddRule, cell: Cell) -> Answer:
    return door.run(cell, "alert", "add", cell.model, "error_rate", ">", "0.2", "for", "5m", "--json",
                    "--actor", door.identity(act.who))


@CliDoor.offers(RemoveRule)
def _cli_remove_rule(door: CliDoor, act: RemoveRule, cell: Cell) -> Answer:
    return door.run(cell, "alert", "rm", str(rule_number(cell)), "--json", "--actor", door.identity(act.who))


@CliDoor.offers(RotateToken)
def _cli_rotate(door: CliDoor, act: RotateToken, cell: Cell) -> Answer:
    return door.run(cell, "token", "rotate", token_name(cell), "--json", "--actor", door.identity(act.who))


# ---- REST -------------------------------------------------------------------------------------------------


@RestDoor.offers(Acknowledge)
def _rest_ack(door: RestDoor, act: Acknowledge, cell: Cell) -> Answer:
    return door.call(cell, act.who, "POST", f"/alerts/{alert_number(cell)}/acknowledge", {})


@RestDoor.offers(SilenceAlerts)
def _rest_silence(door: RestDoor, act: SilenceAlerts, cell: Cell) -> Answer:
    return door.call(cell, act.who, "POST", "/silences", {"model": cell.model, "environment": "production",
                                                          "duration": act.duration,
                                                          "reason": "silenced from the alert card"})


@RestDoor.offers(Unsilence)
def _rest_unsilence(door: RestDoor, act: Unsilence, cell: Cell) -> Answer:
    return door.call(cell, act.who, "DELETE", f"/silences/{silence_number(cell)}")


@RestDoor.offers(ReadModel)
def _rest_read(door: RestDoor, act: ReadModel, cell: Cell) -> Answer:
    return door.call(cell, act.who, "GET", f"/models/{quote(cell.model)}")
