"""Alert rules, firing alerts and silences: command, button and modal handlers.

Each handler checks who may act, calls one domain operation and renders its result. Who may
act: adding and removing rules, silencing and the card's buttons (Acknowledge, Silence, Roll
back, the canary question) are for deployers and admins, the people the policy trusts with
what serves; listing is for everyone. Refusals are raised as typed errors and reach the
user through the one error path (`bot.listeners.replies`).

A click never edits the alert card itself: the domain writes the card update to the outbox
in the transaction that changed it (acknowledged by, silenced until), so the card has one
writer and a retried delivery cannot show an older state. The clicker gets a private note.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.blocks import alerts as blocks
from bot.blocks import approvals as deploy_blocks
from bot.blocks.base import Message
from bot.commands import alerts as cmds
from bot.config.alerts import alert_config
from bot.domain.alerting.actions import AlertActions
from bot.domain.alerting.reads import group_target, known_metrics, rule_origin
from bot.domain.alerting.rules import AlertRules, parse_duration
from bot.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from bot.handlers.base import Actor, Click, ClickResult, HandlerTable, Submission, SubmitResult

if TYPE_CHECKING:
    from bot.services import Services

table = HandlerTable()


def require_role(services: Services, user: str, what: str) -> None:
    """Deployers and admins change alerting; the refusal says who may."""
    if not services.policy.may_deploy(user, services.deployments.groups):
        admins = services.policy.admins.describe()
        raise Forbidden(f"You may not {what}: only deployers ({services.policy.deployers.describe()}) and admins "
                        f"({admins}) may.")


# ---- commands -------------------------------------------------------------------------------------


@table.handles(cmds.AlertAdd)
def _alert_add(services: Services, actor: Actor, cmd: cmds.AlertAdd) -> Message:
    require_role(services, actor.user_id, "add alert rules")
    model, metrics = known_metrics(services, cmd.spec.model)
    if not metrics:
        raise InvalidInput(f"No source has reported any metric for {model} yet, so a rule could never fire: connect "
                           "a source ([[sources]] in modelbot.toml, or POST samples to /api/v1) first, or write the "
                           "rule in modelbot.toml ([[alerts.rules]]), where it waits for the data.")
    spec = replace(cmd.spec, model=model)
    rule = AlertRules(services.registry, known_metrics=metrics).add(spec, actor=actor.user_id, now=services.clock())
    return blocks.rule_added(rule, alert_config(services.policy).settings.default_channel)


@table.handles(cmds.AlertList)
def _alert_list(services: Services, actor: Actor, cmd: cmds.AlertList) -> Message:
    return blocks.rule_list(AlertRules(services.registry).list(cmd.model), cmd.model)


@table.handles(cmds.AlertRemove)
def _alert_remove(services: Services, actor: Actor, cmd: cmds.AlertRemove) -> Message:
    require_role(services, actor.user_id, "remove alert rules")
    origin = rule_origin(services.registry, int(cmd.rule))
    if origin is None:
        raise NotFound(f"There is no alert rule {cmd.rule}: `/model alert list` shows them.")
    if origin == "config":
        raise Conflict(f"Rule #{cmd.rule} comes from modelbot.toml: remove it there (it would come back at the next "
                       "evaluation otherwise).")
    return blocks.rule_removed(AlertRules(services.registry).remove(cmd.rule))


@table.handles(cmds.AlertsNow)
def _alerts_now(services: Services, actor: Actor, cmd: cmds.AlertsNow) -> Message:
    return blocks.overview(AlertActions(services.registry).overview(services.clock(), cmd.model), cmd.model)


@table.handles(cmds.SilenceList)
def _silences(services: Services, actor: Actor, cmd: cmds.SilenceList) -> Message:
    return blocks.silence_list(AlertActions(services.registry).silences(services.clock(), cmd.model), cmd.model)


@table.handles(cmds.SilenceAdd)
def _silence(services: Services, actor: Actor, cmd: cmds.SilenceAdd) -> Message:
    return _add_silence(services, actor.user_id, cmd.model, cmd.environment, cmd.duration,
                        int(cmd.rule) if cmd.rule else None, cmd.reason)


@table.handles(cmds.Unsilence)
def _unsilence(services: Services, actor: Actor, cmd: cmds.Unsilence) -> Message:
    require_role(services, actor.user_id, "end silences")
    view = AlertActions(services.registry).expire_silence(int(cmd.silence), actor=actor.user_id, now=services.clock())
    return blocks.silence_ended(view)


def _add_silence(services: Services, user: str, model: str, environment: str | None, duration: str,
                 rule_id: int | None, reason: str | None) -> Message:
    require_role(services, user, "silence alerts")
    seconds = parse_duration(duration, "silence duration")
    view = AlertActions(services.registry).silence(model, environment, timedelta(seconds=seconds), actor=user,
                                                   now=services.clock(), rule_id=rule_id, reason=reason)
    return blocks.silence_added(view, seconds)


# ---- card buttons ---------------------------------------------------------------------------------


def _payload(event: Click | Submission, raw: str, *keys: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or any(k not in data for k in keys):
            raise ValueError
    except ValueError:
        raise InvalidInput("That button is damaged or from an older modelbot; use the /model commands instead.") from None
    return data


def _group(services: Services, data: dict[str, Any]) -> tuple[int, str, str]:
    try:
        found = group_target(services.registry, int(data["g"]))
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise NotFound("This alert no longer exists; `/model alerts` shows what fires now.")
    return found


@table.on_click(blocks.ACK_ACTION)
def _click_ack(services: Services, event: Click) -> ClickResult:
    data = _payload(event, event.value, "g")
    require_role(services, event.actor.user_id, "acknowledge alerts")
    group_id, _model, _env = _group(services, data)
    result = AlertActions(services.registry).acknowledge(group_id, event.actor.user_id, services.clock())
    return ClickResult(ephemeral=blocks.acknowledged(result, group_id))


@table.on_click(blocks.SILENCE_1H_ACTION)
@table.on_click(blocks.SILENCE_1D_ACTION)
def _click_silence(services: Services, event: Click) -> ClickResult:
    data = _payload(event, event.value, "g", "d")
    _group_id, model, env = _group(services, data)
    return ClickResult(ephemeral=_add_silence(services, event.actor.user_id, model, env, str(data["d"]), None,
                                              "silenced from the alert card"))


@table.on_click(blocks.SILENCE_CUSTOM_ACTION)
def _click_silence_custom(services: Services, event: Click) -> ClickResult:
    """Opens the duration-and-reason modal; the silence starts when it is submitted."""
    data = _payload(event, event.value, "g")
    require_role(services, event.actor.user_id, "silence alerts")
    group_id, model, env = _group(services, data)
    return ClickResult(modal=blocks.silence_modal(model, env, group_id), fallback=blocks.note(
        f"Silence with a command: /model silence {model}@{env} 4h REASON…"))


@table.on_submit(blocks.SILENCE_VIEW)
def _submit_silence(services: Services, event: Submission) -> SubmitResult:
    data = _payload(event, event.private_metadata, "m", "e")
    duration = event.values.get(blocks.DURATION_INPUT, "").strip()
    if not duration:
        raise InvalidInput("Say for how long, like 4h or 2d.")
    reason = event.values.get(blocks.REASON_INPUT, "").strip() or None
    require_role(services, event.actor.user_id, "silence alerts")
    seconds = parse_duration(duration, "silence duration")
    view = AlertActions(services.registry).silence(str(data["m"]), str(data["e"]), timedelta(seconds=seconds),
                                                   actor=event.actor.user_id, now=services.clock(), reason=reason)
    return SubmitResult(view=blocks.silenced_view(view, seconds))


@table.on_click(blocks.ROLLBACK_ACTION)
def _click_rollback(services: Services, event: Click) -> ClickResult:
    """Roll back exactly what the card showed (stable → previous), or say what changed in between.
    The deployments domain checks the role and the environment's rollback approvals."""
    data = _payload(event, event.value, "g", "f", "t")
    group_id, model, env = _group(services, data)
    state = services.registry.environment_state(model, env)
    if state.stable != data["f"]:
        raise Conflict(f"{state.model} {state.environment} changed since the alert: it serves "
                       f"{'v' + str(state.stable) if state.stable else 'nothing'} now, not v{data['f']}. Nothing "
                       "was rolled back.")
    outcome = services.deployments.rollback(model, env, actor=event.actor.user_id, to=str(data["t"]),
                                            reason=f"from alert #{group_id}", origin_channel=event.actor.channel_id)
    if outcome.move is not None:
        return ClickResult(ephemeral=deploy_blocks.moved(outcome.move))
    assert outcome.request is not None  # the environment asks approvals for rollbacks
    return ClickResult(ephemeral=deploy_blocks.request_opened(outcome.request,
                                                              services.policy.env(env).approval_channel))


# ---- the inconclusive canary ----------------------------------------------------------------------


def _running_canary(services: Services, event: Click) -> tuple[str, str]:
    data = _payload(event, event.value, "m", "e")
    state = services.registry.environment_state(str(data["m"]), str(data["e"]))
    if state.canary is None:
        raise Conflict(f"No canary is running for {state.model} in {state.environment} any more; nothing changed.")
    return state.model, state.environment


@table.on_click(blocks.CANARY_ABORT_ACTION)
def _click_canary_abort(services: Services, event: Click) -> ClickResult:
    model, env = _running_canary(services, event)
    services.deployments.abort_canary(model, env, actor=event.actor.user_id,
                                      reason="canary analysis inconclusive (no data); aborted from the alert")
    return ClickResult(replace=blocks.canary_decided(model, env, event.actor.user_id, "abort"))


@table.on_click(blocks.CANARY_KEEP_ACTION)
def _click_canary_keep(services: Services, event: Click) -> ClickResult:
    require_role(services, event.actor.user_id, "decide about canaries")
    model, env = _running_canary(services, event)
    return ClickResult(replace=blocks.canary_decided(model, env, event.actor.user_id, "keep"))
