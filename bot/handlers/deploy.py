"""Promotions, approvals, rollbacks and canaries: command, click and modal handlers.

Each handler calls one decision of `bot.domain.deployments` and renders its outcome; every
rule (who may approve, four-eyes, gates and overrides, rollback targets, canaries, expiry,
stale cards) lives there, so the shell, the CLI and the REST API get the same answers. A click
never edits the approval card itself: the domain writes the card update to the outbox in the
transaction that changed the request, and the delivery worker applies it, so there is one
writer per card. The clicker gets a private note.

Refusals are raised as typed errors and reach the user through the one error path
(`bot.listeners.replies`); a promotion refused because a canary runs is answered with a way
out (abort the canary and promote) as a button.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bot.blocks import approvals as blocks
from bot.blocks.base import Message
from bot.commands import deploy as cmds
from bot.domain.deployments import CanaryRunning
from bot.domain.errors import InvalidInput, NotFound
from bot.handlers.base import Actor, Click, ClickResult, HandlerTable, Submission, SubmitResult

if TYPE_CHECKING:
    from bot.domain.deployments import CanaryOutcome, RequestOutcome, VoteOutcome
    from bot.services import Services

table = HandlerTable()

# Reasons ride in button values (Slack allows 2000 characters there).
BUTTON_REASON_MAX = 1500


# ---- commands -------------------------------------------------------------------------------------


@table.handles(cmds.Promote)
def _promote(services: Services, actor: Actor, cmd: cmds.Promote) -> Message:
    try:
        outcome = services.deployments.request_promotion(
            cmd.model, cmd.ref, cmd.environment, requester=actor.user_id, reason=cmd.reason,
            origin_channel=actor.channel_id, abort_canary=cmd.abort_canary,
        )
    except CanaryRunning as refusal:
        fits = not cmd.reason or len(cmd.reason) <= BUTTON_REASON_MAX
        value = {"m": refusal.model, "v": cmd.ref, "e": refusal.environment, "c": refusal.version, "r": cmd.reason}
        return blocks.canary_running(refusal.message, value if fits else None)
    return _change(services, outcome)


@table.handles(cmds.Rollback)
def _rollback(services: Services, actor: Actor, cmd: cmds.Rollback) -> Message:
    """Step one of two: say exactly what will happen and offer a button; nothing changes yet."""
    if cmd.reason and len(cmd.reason) > BUTTON_REASON_MAX:
        raise InvalidInput(f"The reason is {len(cmd.reason):,} characters long: keep it under "
                           f"{BUTTON_REASON_MAX:,} for a rollback.")
    try:
        plan = services.deployments.plan_rollback(cmd.model, cmd.environment, actor=actor.user_id, to=cmd.to)
    except InvalidInput as exc:
        if not exc.message.startswith("There is no environment"):
            raise
        raise InvalidInput(f"{exc.message} To give a reason, name the environment first: "
                           f"`/model rollback {cmd.model} production REASON…`.") from None
    state = plan.state
    value = {"m": state.model, "e": state.environment, "t": plan.target, "f": state.stable, "r": cmd.reason}
    return blocks.rollback_confirm(state, plan.target, cmd.reason, value)


@table.handles(cmds.CanarySet)
def _canary_set(services: Services, actor: Actor, cmd: cmds.CanarySet) -> Message:
    outcome = services.deployments.set_canary(cmd.model, cmd.ref, cmd.environment, cmd.percent, actor=actor.user_id,
                                              origin_channel=actor.channel_id)
    return _canary(services, outcome)


@table.handles(cmds.CanaryAction)
def _canary_action(services: Services, actor: Actor, cmd: cmds.CanaryAction) -> Message:
    if cmd.action == "abort":
        state = services.deployments.abort_canary(cmd.model, cmd.environment, actor=actor.user_id, reason=cmd.reason)
        return blocks.canary_changed(state, None)
    return _change(services, services.deployments.promote_canary(
        cmd.model, cmd.environment, actor=actor.user_id, reason=cmd.reason, origin_channel=actor.channel_id))


@table.handles(cmds.ListRequests)
def _requests(services: Services, actor: Actor, cmd: cmds.ListRequests) -> Message:
    views = services.deployments.list_requests(pending_only=True, model=cmd.model)
    return blocks.request_list(views, cmd.model, pending_only=True)


@table.handles(cmds.Approve)
def _approve(services: Services, actor: Actor, cmd: cmds.Approve) -> Message:
    return blocks.vote_result(services.deployments.vote(cmd.request, actor.user_id, "approve",
                                                        override_reason=cmd.override_reason))


@table.handles(cmds.Reject)
def _reject(services: Services, actor: Actor, cmd: cmds.Reject) -> Message:
    return blocks.vote_result(services.deployments.vote(cmd.request, actor.user_id, "reject", reason=cmd.reason))


@table.handles(cmds.Cancel)
def _cancel(services: Services, actor: Actor, cmd: cmds.Cancel) -> Message:
    view = services.deployments.cancel(cmd.request, actor.user_id, reason=cmd.reason)
    return blocks.note(f"Request #{view.id} ({view.model} v{view.version} → {view.environment}) is {view.status}.")


def _change(services: Services, outcome: RequestOutcome) -> Message:
    if outcome.move is not None:
        return blocks.moved(outcome.move)
    assert outcome.request is not None
    return blocks.request_opened(outcome.request, services.policy.env(outcome.request.environment).approval_channel)


def _canary(services: Services, outcome: CanaryOutcome) -> Message:
    if outcome.request is not None:
        return blocks.request_opened(outcome.request, services.policy.env(outcome.request.environment).approval_channel)
    assert outcome.state is not None
    state = outcome.state
    return blocks.canary_changed(state, services.deployments.next_canary_step(state.canary_weight, state.environment))


# ---- buttons --------------------------------------------------------------------------------------


def _payload(event: Click, *keys: str) -> dict[str, Any]:
    try:
        data = json.loads(event.value)
        if not isinstance(data, dict) or any(k not in data for k in keys):
            raise ValueError
    except ValueError:
        raise InvalidInput("That button is damaged or from an older modelbot; run the command again.") from None
    return data


def _request_of(event: Click) -> str:
    return str(_payload(event, "r")["r"])


@table.on_click(blocks.APPROVE_ACTION)
def _click_approve(services: Services, event: Click) -> ClickResult:
    outcome: VoteOutcome = services.deployments.vote(_request_of(event), event.actor.user_id, "approve")
    return ClickResult(ephemeral=blocks.vote_result(outcome))


@table.on_click(blocks.REJECT_ACTION)
def _click_reject(services: Services, event: Click) -> ClickResult:
    """Opens the "why?" modal; the decision happens when it is submitted."""
    view = services.deployments.get_request(_request_of(event))
    if view.status != "pending":
        return ClickResult(ephemeral=blocks.note(_not_pending(view)))
    return ClickResult(modal=blocks.reason_modal(blocks.REJECT_VIEW, view), fallback=blocks.note(
        f"Reject with a reason: /model reject {view.id} REASON…"))


@table.on_click(blocks.OVERRIDE_ACTION)
def _click_override(services: Services, event: Click) -> ClickResult:
    """Opens the "why?" modal for an admin whose override would be accepted; the decision
    happens when it is submitted."""
    view = services.deployments.check_override(_request_of(event), event.actor.user_id)
    if view.status != "pending":
        return ClickResult(ephemeral=blocks.note(_not_pending(view)))
    return ClickResult(modal=blocks.reason_modal(blocks.OVERRIDE_VIEW, view), fallback=blocks.note(
        f"Override with a reason: /model approve {view.id} override REASON…"))


@table.on_click(blocks.ROLLBACK_ACTION)
def _click_rollback(services: Services, event: Click) -> ClickResult:
    """Step two: roll back exactly what step one showed (the domain refuses if it changed)."""
    data = _payload(event, "m", "e", "t", "f")
    reason = data.get("r")
    outcome = services.deployments.rollback(
        str(data["m"]), str(data["e"]), actor=event.actor.user_id, to=str(data["t"]),
        reason=str(reason) if reason else None, origin_channel=event.actor.channel_id,
        expected_stable=_number(data["f"]),
    )
    return ClickResult(replace=_change(services, outcome))


@table.on_click(blocks.PROMOTE_ABORTING_CANARY_ACTION)
def _click_promote_aborting_canary(services: Services, event: Click) -> ClickResult:
    data = _payload(event, "m", "v", "e", "c")
    reason = data.get("r")
    outcome = services.deployments.request_promotion(
        str(data["m"]), str(data["v"]), str(data["e"]), requester=event.actor.user_id,
        reason=str(reason) if reason else None, origin_channel=event.actor.channel_id, abort_canary=True,
        expected_canary=_number(data["c"]),
    )
    return ClickResult(replace=_change(services, outcome))


def _canary_card(event: Click) -> tuple[str, str, int]:
    """(model, environment, the canary version the card shows)."""
    data = _payload(event, "m", "e", "v")
    return str(data["m"]), str(data["e"]), _number(data["v"])


@table.on_click(blocks.CANARY_STEP_ACTION)
def _click_canary_step(services: Services, event: Click) -> ClickResult:
    model, env, version = _canary_card(event)
    outcome = services.deployments.set_canary(model, None, env, _payload(event, "w")["w"], actor=event.actor.user_id,
                                              expected_canary=version)
    return ClickResult(ephemeral=_canary(services, outcome))


@table.on_click(blocks.CANARY_PROMOTE_ACTION)
def _click_canary_promote(services: Services, event: Click) -> ClickResult:
    model, env, version = _canary_card(event)
    return ClickResult(ephemeral=_change(services, services.deployments.promote_canary(
        model, env, actor=event.actor.user_id, origin_channel=event.actor.channel_id, expected_canary=version)))


@table.on_click(blocks.CANARY_ABORT_ACTION)
def _click_canary_abort(services: Services, event: Click) -> ClickResult:
    model, env, version = _canary_card(event)
    state = services.deployments.abort_canary(model, env, actor=event.actor.user_id, reason="aborted from the card",
                                              expected_canary=version)
    return ClickResult(ephemeral=blocks.canary_changed(state, None))


def _number(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise InvalidInput("That button is damaged or from an older modelbot; run the command again.")
    return raw


def _not_pending(view: Any) -> str:
    by = f" by {view.decided_by}" if view.decided_by else ""
    return f"Request #{view.id} is already {view.status}{by}; nothing changed."


# ---- modals ---------------------------------------------------------------------------------------


def _submitted_request(event: Submission) -> tuple[str, str]:
    try:
        request = str(json.loads(event.private_metadata)["r"])
    except (ValueError, KeyError, TypeError):
        raise NotFound("That form lost track of its request; click the button on the card again.") from None
    return request, event.values.get(blocks.REASON_INPUT, "").strip()


def _after_vote(outcome: VoteOutcome) -> SubmitResult:
    """Close the modal when the vote counted (the card shows it); otherwise say why not."""
    if outcome.result in ("approved", "rejected", "counted"):
        return SubmitResult()
    return SubmitResult(view=blocks.notice_view("Nothing changed", " ".join(outcome.notes)))


@table.on_submit(blocks.REJECT_VIEW)
def _submit_reject(services: Services, event: Submission) -> SubmitResult:
    request, reason = _submitted_request(event)
    return _after_vote(services.deployments.vote(request, event.actor.user_id, "reject", reason=reason))


@table.on_submit(blocks.OVERRIDE_VIEW)
def _submit_override(services: Services, event: Submission) -> SubmitResult:
    request, reason = _submitted_request(event)
    return _after_vote(services.deployments.vote(request, event.actor.user_id, "approve", override_reason=reason))
