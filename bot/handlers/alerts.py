"""Alert rules, firing alerts and silences: command, button and modal handlers.

Adapters only: each handler resolves what Slack must resolve (a `#channel-name`), calls one
domain decision (`bot.domain.alerting`: who may act is decided there, the same for the CLI
and the REST API) and renders its outcome. Refusals are raised as typed errors and reach the
user through the one error path (`bot.listeners.replies`).

A click never edits the alert card itself: the domain writes the card update to the outbox
in the transaction that changed it (acknowledged by, silenced until), so the card has one
writer and a retried delivery cannot show an older state. The clicker gets a private note.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bot.blocks import alerts as blocks
from bot.blocks import approvals as deploy_blocks
from bot.blocks.base import Message
from bot.commands import alerts as cmds
from bot.config.alerts import alert_config
from bot.config.sources import declared_metrics
from bot.domain import channels
from bot.domain.alerting.actions import AlertActions, CardTarget
from bot.domain.alerting.reads import known_metrics
from bot.domain.alerting.rules import AlertRules, Rule
from bot.domain.errors import InvalidInput
from bot.handlers.base import Actor, Click, ClickResult, HandlerTable, Submission, SubmitResult

if TYPE_CHECKING:
    from bot.services import Services

table = HandlerTable()


def actions(services: Services) -> AlertActions:
    return AlertActions(services.registry, services.policy, services.groups)


def rules(services: Services) -> AlertRules:
    return AlertRules(services.registry, services.policy, services.groups)


def add_rule(services: Services, rule: Rule, actor: str, origin: str) -> Rule:
    """`alert add` from any door: look the channel name up, learn the model's metrics, decide."""
    if rule.channel:
        rule = replace(rule, channel=channels.resolve(rule.channel, services.channels))
    model, metrics = known_metrics(services.registry, rule.model, lambda name: declared_metrics(services.policy, name))
    return rules(services).add(replace(rule, model=model, origin=origin), actor=actor, now=services.clock(),
                               known_metrics=metrics)


# ---- commands -------------------------------------------------------------------------------------


@table.handles(cmds.AlertAdd)
def _alert_add(services: Services, actor: Actor, cmd: cmds.AlertAdd) -> Message:
    rule = add_rule(services, cmd.rule, actor.user_id, "slack")
    return blocks.rule_added(rule, alert_config(services.policy).settings.default_channel)


@table.handles(cmds.AlertList)
def _alert_list(services: Services, actor: Actor, cmd: cmds.AlertList) -> Message:
    return blocks.rule_list(rules(services).list(cmd.model), cmd.model)


@table.handles(cmds.AlertRemove)
def _alert_remove(services: Services, actor: Actor, cmd: cmds.AlertRemove) -> Message:
    return blocks.rule_removed(rules(services).remove(cmd.rule, actor=actor.user_id, now=services.clock()))


@table.handles(cmds.AlertsNow)
def _alerts_now(services: Services, actor: Actor, cmd: cmds.AlertsNow) -> Message:
    return blocks.overview(actions(services).overview(services.clock(), cmd.model), cmd.model)


@table.handles(cmds.Acknowledge)
def _ack(services: Services, actor: Actor, cmd: cmds.Acknowledge) -> Message:
    return blocks.acknowledged(actions(services).acknowledge(int(cmd.alert), actor=actor.user_id,
                                                             now=services.clock()))


@table.handles(cmds.SilenceList)
def _silences(services: Services, actor: Actor, cmd: cmds.SilenceList) -> Message:
    return blocks.silence_list(actions(services).silences(services.clock(), cmd.model), cmd.model)


@table.handles(cmds.SilenceAdd)
def _silence(services: Services, actor: Actor, cmd: cmds.SilenceAdd) -> Message:
    view = actions(services).silence(cmd.model, cmd.environment, cmd.duration, actor=actor.user_id,
                                     now=services.clock(), rule_id=int(cmd.rule) if cmd.rule else None,
                                     reason=cmd.reason)
    return blocks.silence_added(view)


@table.handles(cmds.Unsilence)
def _unsilence(services: Services, actor: Actor, cmd: cmds.Unsilence) -> Message:
    view = actions(services).unsilence(int(cmd.silence), actor=actor.user_id, now=services.clock())
    return blocks.silence_ended(view)


# ---- card buttons ---------------------------------------------------------------------------------


def _payload(event: Click | Submission, raw: str, *keys: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or any(k not in data for k in keys):
            raise ValueError
    except ValueError:
        raise InvalidInput("That button is damaged or from an older modelbot; use the /model commands instead.") from None
    return data


def _card(services: Services, data: dict[str, Any]) -> CardTarget:
    try:
        group_id = int(data["g"])
    except (TypeError, ValueError):
        raise InvalidInput("That button is damaged or from an older modelbot; use the /model commands instead.") from None
    return actions(services).card(group_id)


@table.on_click(blocks.ACK_ACTION)
def _click_ack(services: Services, event: Click) -> ClickResult:
    card = _card(services, _payload(event, event.value, "g"))
    result = actions(services).acknowledge(card.group_id, actor=event.actor.user_id, now=services.clock())
    return ClickResult(ephemeral=blocks.acknowledged(result))


@table.on_click(blocks.SILENCE_1H_ACTION)
@table.on_click(blocks.SILENCE_1D_ACTION)
def _click_silence(services: Services, event: Click) -> ClickResult:
    data = _payload(event, event.value, "g", "d")
    card = _card(services, data)
    view = actions(services).silence(card.model, card.environment, str(data["d"]), actor=event.actor.user_id,
                                     now=services.clock(), reason="silenced from the alert card")
    return ClickResult(ephemeral=blocks.silence_added(view))


@table.on_click(blocks.SILENCE_CUSTOM_ACTION)
def _click_silence_custom(services: Services, event: Click) -> ClickResult:
    """Opens the duration-and-reason modal; the silence (and who may set it) is decided on submit."""
    card = _card(services, _payload(event, event.value, "g"))
    return ClickResult(modal=blocks.silence_modal(card.model, card.environment, card.group_id), fallback=blocks.note(
        f"Silence with a command: /model silence {card.model}@{card.environment} 4h REASON…"))


@table.on_submit(blocks.SILENCE_VIEW)
def _submit_silence(services: Services, event: Submission) -> SubmitResult:
    data = _payload(event, event.private_metadata, "m", "e")
    duration = event.values.get(blocks.DURATION_INPUT, "").strip()
    if not duration:
        raise InvalidInput("Say for how long, like 4h or 2d.")
    reason = event.values.get(blocks.REASON_INPUT, "").strip() or None
    view = actions(services).silence(str(data["m"]), str(data["e"]), duration, actor=event.actor.user_id,
                                     now=services.clock(), reason=reason)
    return SubmitResult(view=blocks.silenced_view(view))


@table.on_click(blocks.ROLLBACK_ACTION)
def _click_rollback(services: Services, event: Click) -> ClickResult:
    """Roll back exactly what the card showed (stable → previous), or say what changed in between."""
    data = _payload(event, event.value, "g", "f", "t")
    card = _card(services, data)
    outcome = actions(services).roll_back(card.group_id, services.deployments, expected=data["f"], to=data["t"],
                                          actor=event.actor.user_id, origin_channel=event.actor.channel_id)
    if outcome.move is not None:
        return ClickResult(ephemeral=deploy_blocks.moved(outcome.move))
    assert outcome.request is not None  # the environment asks approvals for rollbacks
    return ClickResult(ephemeral=deploy_blocks.request_opened(outcome.request,
                                                              services.policy.env(card.environment).approval_channel))


# ---- the inconclusive canary ----------------------------------------------------------------------


@table.on_click(blocks.CANARY_ABORT_ACTION)
def _click_canary_abort(services: Services, event: Click) -> ClickResult:
    data = _payload(event, event.value, "m", "e")
    state = services.deployments.abort_canary(str(data["m"]), str(data["e"]), actor=event.actor.user_id,
                                              reason="canary analysis inconclusive (no data); aborted from the alert")
    return ClickResult(replace=blocks.canary_decided(state.model, state.environment, event.actor.user_id, "abort"))


@table.on_click(blocks.CANARY_KEEP_ACTION)
def _click_canary_keep(services: Services, event: Click) -> ClickResult:
    data = _payload(event, event.value, "m", "e")
    model = actions(services).keep_canary(str(data["m"]), str(data["e"]), actor=event.actor.user_id,
                                          now=services.clock())
    return ClickResult(replace=blocks.canary_decided(model, str(data["e"]), event.actor.user_id, "keep"))
