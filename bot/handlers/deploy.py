"""Promotions, approvals, rollbacks and canaries: command, click and modal handlers.

Each handler calls one domain operation and renders its result; the rules (who may approve,
four-eyes, gates, expiry, exactly-once decisions) live in `bot.domain.deployments`. A click
never edits the approval card itself: the domain writes the card update to the outbox in the
transaction that changed the request, and the delivery worker applies it, so there is one
writer per card and a retried delivery cannot show an older state. The clicker gets a
private note.

Refusals are raised as typed errors and reach the user through the one error path
(`bot.listeners.replies`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bot.blocks import approvals as blocks
from bot.blocks.base import Message
from bot.commands import deploy as cmds
from bot.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from bot.handlers.base import Actor, Click, ClickResult, HandlerTable, Submission, SubmitResult

if TYPE_CHECKING:
    from bot.domain.deployments import RequestView, VoteOutcome
    from bot.services import Services

table = HandlerTable()

# A rollback's reason rides in the confirm button's value (Slack allows 2000 characters there).
ROLLBACK_REASON_MAX = 1500
HISTORY_LIMIT = 500


# ---- commands -------------------------------------------------------------------------------------


@table.handles(cmds.Promote)
def _promote(services: Services, actor: Actor, cmd: cmds.Promote) -> Message:
    outcome = services.deployments.request_promotion(
        cmd.model, cmd.ref, cmd.environment, requester=actor.user_id, reason=cmd.reason,
        origin_channel=actor.channel_id,
    )
    if outcome.move is not None:
        return blocks.moved(outcome.move)
    assert outcome.request is not None
    channel = services.policy.env(outcome.request.environment).approval_channel
    return blocks.request_opened(outcome.request, channel)


@table.handles(cmds.Rollback)
def _rollback(services: Services, actor: Actor, cmd: cmds.Rollback) -> Message:
    """Step one of two: say exactly what will happen and offer a button; nothing changes yet."""
    if cmd.reason and len(cmd.reason) > ROLLBACK_REASON_MAX:
        raise InvalidInput(f"The reason is {len(cmd.reason):,} characters long: keep it under "
                           f"{ROLLBACK_REASON_MAX:,} for a rollback.")
    try:
        state = services.registry.environment_state(cmd.model, cmd.environment)
    except InvalidInput as exc:
        if not exc.message.startswith("There is no environment"):
            raise
        raise InvalidInput(f"{exc.message} To give a reason, name the environment first: "
                           f"`/model rollback {cmd.model} production REASON…`.") from None
    if state.stable is None:
        raise Conflict(f"Nothing of {state.model} serves {state.environment}, so there is nothing to roll back.")
    if cmd.to is None:
        if state.previous is None:
            raise Conflict(f"{state.model} has no previous version in {state.environment} to roll back to: "
                           "name one with `to VERSION`.")
        target = state.previous
    else:
        target = services.registry.show(cmd.model, cmd.to).version
        served, complete = _served(services, state.model, state.environment)
        if target not in served and complete:
            listed = ", ".join(f"v{v}" for v in sorted(served)) or "none yet"
            raise Conflict(f"{state.model} v{target} never served {state.environment}, so it is not a rollback "
                           f"target (versions that did: {listed}); use promote for a new version.")
    if target == state.stable:
        raise Conflict(f"{state.model} v{target} already serves {state.environment}: nothing to roll back.")
    value = {"m": state.model, "e": state.environment, "t": target, "f": state.stable, "r": cmd.reason}
    return blocks.rollback_confirm(state, target, cmd.reason, value)


def _served(services: Services, model: str, environment: str) -> tuple[set[int], bool]:
    """Versions that were ever the stable one here, for an early, friendly refusal, and whether
    the history read was complete. The domain checks again when the button is pressed, so a
    long history only postpones the refusal, never wrongly makes it."""
    moves = ("promote", "rollback", "canary_promote")
    entries = services.registry.history(model, environment, limit=HISTORY_LIMIT)
    served = {e.to_version for e in entries if e.action in moves and e.to_version is not None}
    return served, len(entries) < HISTORY_LIMIT


@table.handles(cmds.CanarySet)
def _canary_set(services: Services, actor: Actor, cmd: cmds.CanarySet) -> Message:
    state = services.deployments.set_canary(cmd.model, cmd.ref, cmd.environment, cmd.percent, actor=actor.user_id)
    return blocks.canary_changed(state, services.deployments.next_canary_step(state.canary_weight, state.environment))


@table.handles(cmds.CanaryAction)
def _canary_action(services: Services, actor: Actor, cmd: cmds.CanaryAction) -> Message:
    if cmd.action == "abort":
        state = services.deployments.abort_canary(cmd.model, cmd.environment, actor=actor.user_id, reason=cmd.reason)
        return blocks.canary_changed(state, None)
    return _promote_canary(services, actor, cmd.model, cmd.environment, cmd.reason)


def _promote_canary(services: Services, actor: Actor, model: str, environment: str, reason: str | None) -> Message:
    """100 % is a promotion: it goes through the environment's approval policy."""
    outcome = services.deployments.request_promotion(
        model, "latest", environment, requester=actor.user_id, reason=reason, origin_channel=actor.channel_id,
        kind="canary_promote",
    )
    if outcome.move is not None:
        return blocks.moved(outcome.move)
    assert outcome.request is not None
    return blocks.request_opened(outcome.request, services.policy.env(environment).approval_channel)


@table.handles(cmds.ListRequests)
def _requests(services: Services, actor: Actor, cmd: cmds.ListRequests) -> Message:
    views = services.deployments.list_requests(pending_only=True, model=cmd.model)
    return blocks.request_list(views, cmd.model, pending_only=True)


@table.handles(cmds.Approve)
def _approve(services: Services, actor: Actor, cmd: cmds.Approve) -> Message:
    if cmd.override_reason is not None:
        _check_override(services, actor.user_id, services.deployments.get_request(cmd.request))
    return blocks.vote_result(services.deployments.vote(cmd.request, actor.user_id, "approve",
                                                        override_reason=cmd.override_reason))


@table.handles(cmds.Reject)
def _reject(services: Services, actor: Actor, cmd: cmds.Reject) -> Message:
    return blocks.vote_result(services.deployments.vote(cmd.request, actor.user_id, "reject", reason=cmd.reason))


@table.handles(cmds.Cancel)
def _cancel(services: Services, actor: Actor, cmd: cmds.Cancel) -> Message:
    view = services.deployments.cancel(cmd.request, actor.user_id)
    return blocks.note(f"Request #{view.id} ({view.model} v{view.version} → {view.environment}) is cancelled.")


def _check_override(services: Services, user: str, view: RequestView) -> None:
    """An override only takes effect on the approval that completes a request (the domain
    checks gates then), so refuse one that would be counted as a plain approval and dropped."""
    if view.status != "pending":
        return  # the vote answers "already decided"
    if view.gates_pass:
        raise Conflict(f"Every gate of request #{view.id} passes: approve it normally, no override is needed.")
    if not services.policy.is_admin(user, services.deployments.groups):
        raise Forbidden("Only an admin may override a failing gate.")
    missing = view.approvals_needed - len(view.approvals) - 1
    if missing > 0:
        raise Conflict(f"An override completes request #{view.id}, which still needs {missing} more approval(s) "
                       f"first ({len(view.approvals)} of {view.approvals_needed} so far).")


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
    view = services.deployments.get_request(_request_of(event))
    if view.status != "pending":
        return ClickResult(ephemeral=blocks.note(_not_pending(view)))
    _check_override(services, event.actor.user_id, view)
    return ClickResult(modal=blocks.reason_modal(blocks.OVERRIDE_VIEW, view), fallback=blocks.note(
        f"Override with a reason: /model approve {view.id} override REASON…"))


@table.on_click(blocks.ROLLBACK_ACTION)
def _click_rollback(services: Services, event: Click) -> ClickResult:
    """Step two: roll back exactly what step one showed, or say what changed in between."""
    data = _payload(event, "m", "e", "t", "f")
    state = services.registry.environment_state(str(data["m"]), str(data["e"]))
    if state.stable != data["f"]:
        raise Conflict(f"{state.model} {state.environment} changed since you asked: it serves "
                       f"{'v' + str(state.stable) if state.stable else 'nothing'} now, not v{data['f']}. "
                       "Run the rollback again to see what it would do.")
    reason = data.get("r")
    outcome = services.deployments.rollback(
        state.model, state.environment, actor=event.actor.user_id, to=str(data["t"]),
        reason=str(reason) if reason else None, origin_channel=event.actor.channel_id,
    )
    if outcome.move is not None:
        return ClickResult(replace=blocks.moved(outcome.move))
    assert outcome.request is not None  # the environment asks approvals for rollbacks
    return ClickResult(replace=blocks.request_opened(
        outcome.request, services.policy.env(state.environment).approval_channel))


def _canary_target(services: Services, event: Click) -> tuple[str, str, int]:
    """(model, environment, canary version), refusing a card about a canary that has since ended."""
    data = _payload(event, "m", "e", "v")
    state = services.registry.environment_state(str(data["m"]), str(data["e"]))
    if state.canary != data["v"]:
        running = f"v{state.canary} at {state.canary_weight} %" if state.canary else "no canary"
        raise Conflict(f"This card is out of date: {state.model} in {state.environment} runs {running} now. "
                       "Nothing changed.")
    return state.model, state.environment, int(data["v"])


@table.on_click(blocks.CANARY_STEP_ACTION)
def _click_canary_step(services: Services, event: Click) -> ClickResult:
    model, env, _version = _canary_target(services, event)
    weight = _payload(event, "w")["w"]
    state = services.deployments.set_canary(model, None, env, weight, actor=event.actor.user_id)
    next_step = services.deployments.next_canary_step(state.canary_weight, env)
    return ClickResult(ephemeral=blocks.canary_changed(state, next_step))


@table.on_click(blocks.CANARY_PROMOTE_ACTION)
def _click_canary_promote(services: Services, event: Click) -> ClickResult:
    model, env, _version = _canary_target(services, event)
    return ClickResult(ephemeral=_promote_canary(services, event.actor, model, env, None))


@table.on_click(blocks.CANARY_ABORT_ACTION)
def _click_canary_abort(services: Services, event: Click) -> ClickResult:
    model, env, _version = _canary_target(services, event)
    state = services.deployments.abort_canary(model, env, actor=event.actor.user_id, reason="aborted from the card")
    return ClickResult(ephemeral=blocks.canary_changed(state, None))


def _not_pending(view: RequestView) -> str:
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
    if not reason:
        raise InvalidInput("Write why the failing gate may be overridden; it is recorded with your name.")
    _check_override(services, event.actor.user_id, services.deployments.get_request(request))
    return _after_vote(services.deployments.vote(request, event.actor.user_id, "approve", override_reason=reason))
