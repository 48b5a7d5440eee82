"""Approval cards, rollout announcements, canary cards, and the replies and modals around them.

Two kinds of renderer live here. Outbox templates (`@template(name)`) render the facts the
domain wrote to the outbox (plain JSON, see `bot/domain/notices.py`) at delivery time, so a
retried or late card update shows exactly the state that was committed. Command replies
render domain results directly. Both go through `Message.build`, which checks Slack's
limits; every piece of user text (model names, reasons, actor names) goes through `escape()`.

Button values carry only ids (`{"r": 12}`) or model + environment, never state: the click
handler reads the current state, so a stale card can never act on what it shows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import Block, InputBlock, PlainTextInputElement
from slack_sdk.models.views import View

from bot.blocks import textfmt
from bot.blocks.base import (
    MAX_VIEW_BLOCKS,
    Message,
    actions,
    button,
    clip,
    code_block,
    confirm,
    context,
    escape,
    fallback_text,
    header,
    link,
    plain,
    section,
)
from bot.blocks.templates import template
from bot.domain.entities import EnvironmentState, PointerMove, Version

if TYPE_CHECKING:
    from bot.domain.deployments import RequestView, VoteOutcome

# action_ids (every modelbot_* action reaches dispatch.click) and modal callback ids
APPROVE_ACTION = "modelbot_approve"
REJECT_ACTION = "modelbot_reject"
OVERRIDE_ACTION = "modelbot_override"
ROLLBACK_ACTION = "modelbot_rollback"
CANARY_STEP_ACTION = "modelbot_canary_step"
CANARY_PROMOTE_ACTION = "modelbot_canary_promote"
CANARY_ABORT_ACTION = "modelbot_canary_abort"
PROMOTE_ABORTING_CANARY_ACTION = "modelbot_promote_abort_canary"
REJECT_VIEW = "modelbot_reject_modal"
OVERRIDE_VIEW = "modelbot_override_modal"
REASON_BLOCK = "reason"
REASON_INPUT = "reason_input"
# Long enough for a real explanation; the button value / private_metadata limits are far away.
MODAL_REASON_MAX = 1000

KIND_TITLES = {"promote": "Promotion", "rollback": "Rollback", "canary_promote": "Canary promotion",
               "canary_start": "Canary start"}
STATUS_ICONS = {"pending": ":hourglass_flowing_sand:", "approved": ":white_check_mark:", "rejected": ":no_entry:",
                "expired": ":hourglass:", "superseded": ":arrow_right:", "cancelled": ":x:",
                "moot": ":heavy_minus_sign:"}
ARROWS = {"better": "▲", "worse": "▼", "same": "=", None: " "}
MAX_LISTED_PARAMS = 15
MAX_LISTED_REQUESTS = 20
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


# ---- small formatting helpers ------------------------------------------------------------------


def who(actor: str | None) -> str:
    """A Slack user id becomes a mention (only ids match, so nothing can be injected);
    CLI/CI actor names are shown escaped and bold."""
    if not actor:
        return "someone"
    if _SLACK_USER.match(actor):
        return f"<@{actor}>"
    return f"*{escape(actor)}*"


def when(value: str | datetime | None) -> str:
    """ISO times from the outbox JSON (or datetimes) as `2026-11-01 09:00 UTC`."""
    if value is None:
        return "–"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return escape(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _v(number: object) -> str:
    return f"v{number}" if number is not None else "nothing"


def _value(data: Mapping[str, Any]) -> str:
    """Compact JSON for a button value (base.button checks the 2000-character limit)."""
    return json.dumps(dict(data), separators=(",", ":"))


def _people(entries: Iterable[Sequence[Any]]) -> str:
    return ", ".join(f"{who(e[0])} ({when(e[1])})" for e in entries)


def _subject(r: Mapping[str, Any]) -> str:
    """`churn v7 → production` (escaped); a canary start says its weight."""
    weight = f" at {r['weight']} %" if r.get("kind") == "canary_start" and r.get("weight") else ""
    return f"{escape(r['model'])} v{r['version']} → {escape(r['environment'])}{weight}"


def _title(r: Mapping[str, Any]) -> str:
    """`Promotion request #12: churn v7 → production` (plain text, for headers and fallbacks)."""
    weight = f" at {r['weight']} %" if r.get("kind") == "canary_start" and r.get("weight") else ""
    return (f"{KIND_TITLES.get(r['kind'], 'Change')} request #{r['id']}: {r['model']} v{r['version']} → "
            f"{r['environment']}{weight}")


# ---- approval card ----------------------------------------------------------------------------


@template("approval_card")
def approval_card(data: Mapping[str, Any]) -> Message:
    """The card in the approval channel; re-rendered in place on every vote and decision."""
    r = data["request"]
    versions = data.get("versions") or {}
    blocks: list[Block] = [header(_title(r))]
    banner = _status_banner(r)
    if banner:
        blocks.append(section(banner))
    serving = f"v{r['from_version']}" if r.get("from_version") is not None else "nothing yet"
    blocks.append(section("", fields=[
        f"*Model*\n{escape(r['model'])}",
        f"*Version*\nv{r['version']}",
        f"*Environment*\n{escape(r['environment'])} (serving {serving})",
        f"*Requested by*\n{who(r['requester'])}",
    ]))
    if r.get("reason"):
        blocks.append(section(f"*Reason*\n{escape(r['reason'])}"))
    blocks += _comparison_blocks(r, versions)
    if r.get("gates"):
        blocks.append(section("*Gates*\n" + "\n".join(_gate_line(g) for g in r["gates"])))
    blocks.append(section(_votes_text(r)))
    blocks.append(context(f"Request {r['id']} · opened {when(r.get('created_at'))} · "
                          f"expires {when(r.get('expires_at'))} · `/model approve {r['id']}`"))
    if r["status"] == "pending":
        blocks.append(_card_buttons(r))
    approvals = len(r.get("approvals") or ())
    text = (f"{KIND_TITLES.get(r['kind'], 'Change')} request #{r['id']}: {_subject(r)} by {who(r['requester'])} — "
            f"{escape(r['status'])} ({approvals} of {r['approvals_needed']} approvals)")
    return Message.build(text, blocks)


def _status_banner(r: Mapping[str, Any]) -> str | None:
    status = r["status"]
    icon = STATUS_ICONS.get(status, "")
    at = when(r.get("decided_at"))
    if status == "pending":
        return None
    if status == "approved":
        if r["kind"] == "canary_start":
            text = (f"{icon} *Approved* {at} — a canary of {escape(r['model'])} v{r['version']} takes "
                    f"{r.get('weight')} % of {escape(r['environment'])}.")
        else:
            text = f"{icon} *Approved* {at} — {escape(r['model'])} v{r['version']} serves {escape(r['environment'])}."
        return text + _override_note(r)
    if status == "rejected":
        return (f"{icon} *Rejected* by {who(r.get('decided_by'))} {at}: {escape(r.get('decision_reason') or '')}\n"
                "Nothing changed.")
    if status == "expired":
        return (f"{icon} *Expired* {at} without enough approvals; nothing changed. Ask again with "
                f"`/model promote {escape(r['model'])} {r['version']} {escape(r['environment'])}`.")
    if status == "superseded":
        newer = f"request #{r['superseded_by']}" if r.get("superseded_by") else "a newer request"
        return f"{icon} *Superseded* by {newer} {at}; this one can no longer be approved."
    if status == "cancelled":
        why = f": {escape(r['decision_reason'])}" if r.get("decision_reason") else ""
        return f"{icon} *Cancelled* by {who(r.get('decided_by'))} {at}{why}; nothing changed."
    if status == "moot":
        return (f"{icon} *Moot* {at}: {escape(r.get('decision_reason') or 'nothing left to change')}; there is "
                "nothing to approve.")
    return f"*{escape(status)}* {at}"


def _override_note(r: Mapping[str, Any]) -> str:
    if not r.get("override_by"):
        return ""
    at = f" ({when(r['override_at'])})" if r.get("override_at") else ""
    return f"\n:warning: Gate overridden by {who(r['override_by'])}: {escape(r.get('override_reason') or '')}{at}"


def _comparison_blocks(r: Mapping[str, Any], versions: Mapping[str, Any]) -> list[Block]:
    """Metric deltas (▲ better / ▼ worse by each metric's direction) and params that differ."""
    from bot.domain.compare import compare

    candidate = versions.get(str(r["version"]))
    current = versions.get(str(r.get("from_version"))) if r.get("from_version") is not None else None
    if candidate is None:
        return []
    if current is None:
        metrics = candidate.get("metrics") or {}
        rows = [[escape(k), textfmt.number(v)] for k, v in sorted(metrics.items())]
        if not rows:
            return [section(f"*Compared with what serves now*\nNothing serves {escape(r['environment'])} yet, "
                            f"and v{r['version']} has no metrics.")]
        return [section(f"*Metrics* (nothing serves {escape(r['environment'])} yet)\n"
                        + code_block(textfmt.table(["metric", f"v{r['version']}"], rows).splitlines()))]
    c = compare([_version(r["model"], current), _version(r["model"], candidate)])
    old, new = c.labels
    blocks: list[Block] = []
    if c.metrics:
        rows = []
        for m in c.metrics:
            delta = m.deltas[new]
            rows.append([escape(m.metric), textfmt.number(m.values[old]), textfmt.number(m.values[new]),
                         f"{textfmt.signed(delta.absolute)} {ARROWS[delta.verdict]}"])
        table = textfmt.table(["metric", f"{old} now", new, "Δ"], rows)
        blocks.append(section(f"*Compared with {old} (serving now)* ▲ better ▼ worse\n"
                              + code_block(table.splitlines(), limit=2900)))
    diffs = c.params
    if diffs:
        lines = [f"• *{escape(d.key)}*: `{escape(_dash(d.values[old]))}` → `{escape(_dash(d.values[new]))}`"
                 for d in diffs[:MAX_LISTED_PARAMS]]
        if len(diffs) > MAX_LISTED_PARAMS:
            lines.append(f"… and {len(diffs) - MAX_LISTED_PARAMS} more (`/model compare {escape(r['model'])} "
                         f"{old} {new}`)")
        blocks.append(section("*Params that changed*\n" + "\n".join(lines)))
    return blocks


def _dash(value: object) -> str:
    return "–" if value is None else str(value)


def _version(model: str, raw: Mapping[str, Any]) -> Version:
    return Version(model=model, version=int(raw["version"]), artifact_uri=raw.get("artifact_uri") or "",
                   created_by="", created_at=datetime.fromtimestamp(0, UTC), metrics=dict(raw.get("metrics") or {}),
                   params={k: str(v) for k, v in (raw.get("params") or {}).items()},
                   tags={k: str(v) for k, v in (raw.get("tags") or {}).items()})


def _gate_line(g: Mapping[str, Any]) -> str:
    mark = ":white_check_mark:" if g.get("passed") else ":x:"
    line = f"{mark} `{escape(g.get('gate', ''))}`"
    if g.get("note"):
        return f"{line} — {escape(g['note'])}"
    if g.get("left") is not None and g.get("right") is not None:
        line += f" — {textfmt.number(g['left'])} vs {textfmt.number(g['right'])}"
    return line + ("" if g.get("passed") else " *fails*")


def _votes_text(r: Mapping[str, Any]) -> str:
    approvals = r.get("approvals") or []
    text = f"*Approvals* {len(approvals)} of {r['approvals_needed']}"
    if approvals:
        text += ": " + _people((a["by"], a["at"]) for a in approvals)
    if r["status"] == "pending":
        text += _override_note(r)
    for rejection in r.get("rejections") or []:
        text += f"\n*Rejected* by {who(rejection['by'])} ({when(rejection['at'])}): {escape(rejection.get('reason') or '')}"
    return text


def _card_buttons(r: Mapping[str, Any]) -> Block:
    value = {"r": r["id"]}
    elements = [
        button("Approve", APPROVE_ACTION, value, style="primary", confirm=confirm(
            f"Approve request #{r['id']}?",
            f"{_subject(r)}. Your approval is recorded under your name.", "Approve")),
        button("Reject", REJECT_ACTION, value, style="danger"),
    ]
    if any(not g.get("passed") for g in r.get("gates") or ()) and not r.get("override_by"):
        elements.append(button("Override gate (admin)", OVERRIDE_ACTION, value))
    return actions(*elements, block_id=f"request_{r['id']}")


# ---- messages around a request -------------------------------------------------------------------


@template("approval_link")
def approval_link(data: Mapping[str, Any]) -> Message:
    """Ephemeral to the requester once the card is posted: where to follow their request."""
    r = data["request"]
    where = link(data.get("permalink"), "the approval card", otherwise="the approval card in the approval channel")
    text = (f":hourglass_flowing_sand: Request #{r['id']} ({_subject(r)}) needs {r['approvals_needed']} "
            f"approval(s); follow {where}.")
    return Message.build(f"Request #{r['id']} for {_subject(r)} needs approval", [section(text)])


@template("request_outcome")
def request_outcome(data: Mapping[str, Any]) -> Message:
    """The thread reply under the card once a request is decided."""
    r = data["request"]
    model, env, version = escape(r["model"]), escape(r["environment"]), r["version"]
    was = _v(r.get("from_version"))
    status = r["status"]
    if status == "approved":
        if r["kind"] == "rollback":
            text = f":rewind: {model} {env} rolled back to v{version} (was {was})."
        elif r["kind"] == "canary_promote":
            text = f":white_check_mark: Canary {model} v{version} promoted: it now serves {env} at 100 % (was {was})."
        elif r["kind"] == "canary_start":
            text = f":hatching_chick: A canary of {model} v{version} takes {r.get('weight')} % of {env} beside {was}."
        else:
            text = f":white_check_mark: {model} v{version} now serves {env} (was {was})."
        approvers = [a["by"] for a in r.get("approvals") or ()]
        if approvers:
            text += " Approved by " + ", ".join(who(a) for a in approvers) + "."
        text += _override_note(r)
    elif status == "rejected":
        text = (f":no_entry: {who(r.get('decided_by'))} rejected {model} v{version} for {env}: "
                f"{escape(r.get('decision_reason') or '')}\nNothing changed; {env} still serves {was}.")
    else:
        text = f"{STATUS_ICONS.get(status, '')} Request #{r['id']} is {escape(status)}; nothing changed."
    return Message.build(f"Request #{r['id']} {escape(status)}: {model} v{version} {env}", [section(text)])


ACTION_VERBS = {"promote": "promoted", "rollback": "rolled back", "canary_promote": "promoted the canary of"}


@template("deployment_announcement")
def deployment_announcement(data: Mapping[str, Any]) -> Message:
    """Who moved what, why: for moves without a card (rollbacks, promotions without approvals)."""
    state, audit = data["state"], data["audit"]
    model, env = escape(state["model"]), escape(state["environment"])
    before, after = _v(audit.get("from_version")), _v(audit.get("to_version"))
    action = audit.get("action")
    if action == "rollback":
        text = f":rewind: {who(audit['actor'])} rolled back {model} {env} {before} → {after}"
    elif action == "canary_promote":
        text = f":rocket: {who(audit['actor'])} promoted the canary of {model} in {env}: {before} → {after}"
    else:
        text = f":rocket: {who(audit['actor'])} {ACTION_VERBS.get(action, escape(action))} {model} {env} {before} → {after}"
    text += f": {escape(audit['reason'])}" if audit.get("reason") else " (no reason given)"
    details = [f"revision {state.get('revision')}", f"at {when(audit.get('at'))}"]
    if state.get("stable_artifact_uri"):
        details.append(f"artifact `{escape(state['stable_artifact_uri'])}`")
    if state.get("previous") is not None:
        details.append(f"v{state['previous']} kept warm for rollback")
    return Message.build(fallback_text(text), [section(text), context(" · ".join(details))])


# ---- canary --------------------------------------------------------------------------------------


@template("canary_card")
def canary_card(data: Mapping[str, Any]) -> Message:
    """Stable vs canary with their weights; buttons for the next ladder step, Promote and Abort."""
    state, audit = data["state"], data["audit"]
    model, env = escape(state["model"]), escape(state["environment"])
    blocks: list[Block] = [header(f"Canary: {state['model']} in {state['environment']}")]
    canary, weight = state.get("canary"), int(state.get("canary_weight") or 0)
    if canary is None:
        aborted = data.get("aborted_version")
        why = f": {escape(audit['reason'])}" if audit.get("reason") else ""
        blocks.append(section(f":x: *Canary {_v(aborted)} aborted* by {who(audit['actor'])} {when(audit.get('at'))}"
                              f"{why}\nStable {_v(state.get('stable'))} takes 100 % of {env} again."))
        return Message.build(f"Canary {_v(aborted)} of {model} in {env} aborted", blocks)
    blocks.append(section("", fields=[
        f"*Stable*\n{_v(state.get('stable'))} — {100 - weight} %",
        f"*Canary*\n{_v(canary)} — {weight} %",
        f"*Stable artifact*\n`{escape(state.get('stable_artifact_uri') or '–')}`",
        f"*Canary artifact*\n`{escape(state.get('canary_artifact_uri') or '–')}`",
    ]))
    why = f": {escape(audit['reason'])}" if audit.get("reason") else ""
    blocks.append(context(f"Last change by {who(audit['actor'])} {when(audit.get('at'))}{why} · "
                          f"revision {state.get('revision')}"))
    value: dict[str, Any] = {"m": state["model"], "e": state["environment"], "v": canary}
    elements = []
    following = next((s for s in data.get("steps") or () if s > weight), None)
    if following is not None and following < 100:
        elements.append(button(f"Go to {following} %", CANARY_STEP_ACTION, {**value, "w": following}))
    elements.append(button(f"Promote v{canary} (100 %)", CANARY_PROMOTE_ACTION, value, style="primary", confirm=confirm(
        f"Promote canary v{canary}?", f"{model} v{canary} becomes the stable version of {env}. "
        "This follows the approval policy of the environment.", "Promote")))
    elements.append(button("Abort", CANARY_ABORT_ACTION, value, style="danger", confirm=confirm(
        "Abort the canary?", f"{model} v{canary} stops taking traffic; {_v(state.get('stable'))} takes 100 %.",
        "Abort", danger=True)))
    blocks.append(actions(*elements, block_id="canary_actions"))
    return Message.build(f"Canary of {model} in {env}: v{canary} at {weight} %, stable {_v(state.get('stable'))}",
                         blocks)


@template("canary_step")
def canary_step(data: Mapping[str, Any]) -> Message:
    """The thread reply under the canary card for each change after the start."""
    state, audit = data["state"], data["audit"]
    model, env = escape(state["model"]), escape(state["environment"])
    why = f": {escape(audit['reason'])}" if audit.get("reason") else ""
    if state.get("canary") is None:
        text = (f":x: {who(audit['actor'])} aborted canary {_v(data.get('aborted_version'))} of {model} in {env}"
                f"{why}. Stable {_v(state.get('stable'))} takes 100 %.")
    else:
        text = (f":arrow_right: {who(audit['actor'])} moved canary v{state['canary']} of {model} in {env} from "
                f"{data.get('previous_weight', 0)} % to {state['canary_weight']} %{why}.")
    return Message.build(f"Canary of {model} in {env} changed", [section(text)])


# ---- command replies ---------------------------------------------------------------------------------


def request_opened(view: RequestView, channel: str | None) -> Message:
    where = f"<#{channel}>" if channel and re.fullmatch(r"[CGD][A-Z0-9]+", channel) else "the approval channel"
    text = (f":hourglass_flowing_sand: Request *#{view.id}* opened: {_subject(view.to_dict())} needs "
            f"{view.approvals_needed} approval(s). The card goes to {where}; it expires {when(view.expires_at)}.")
    if not view.gates_pass:
        failing = [g for g in view.gates if not g["passed"]]
        lines = "\n".join(_gate_line(g) for g in failing)
        if view.override_by:
            text += f"\n:warning: A gate fails, overridden by {who(view.override_by)}:\n{lines}"
        else:
            text += f"\n:warning: A gate fails, so it cannot be approved as is:\n{lines}"
    return Message.build(f"Request #{view.id} opened for {_subject(view.to_dict())}", [section(text)])


def canary_running(message: str, value: Mapping[str, Any] | None) -> Message:
    """A promotion refused because a canary runs, with the way out as a button: abort the
    canary, then promote (both recorded). `value` None: no button (the reason is too long to
    carry in one), the sentence alone."""
    blocks: list[Block] = [section(f":warning: {escape(message)}")]
    if value is not None:
        blocks.append(actions(button(
            "Abort the canary and promote", PROMOTE_ABORTING_CANARY_ACTION, _value(value), style="danger",
            confirm=confirm("Abort the canary?", f"The canary v{value['c']} stops taking traffic, then "
                            f"{escape(value['m'])} v{value['v']} is promoted to {escape(value['e'])} under its "
                            "approval policy.", "Abort and promote", danger=True),
        ), block_id="promote_abort_canary"))
    return Message.build(escape(message), blocks)


def moved(move: PointerMove) -> Message:
    """A pointer move that needed no approval (promotion with approvals = 0, rollback)."""
    s, a = move.state, move.audit
    if a.action == "rollback":
        text = f":rewind: Rolled back {escape(s.model)} {escape(s.environment)}: {_v(a.from_version)} → {_v(a.to_version)}."
    else:
        text = f":rocket: {escape(s.model)} v{a.to_version} now serves {escape(s.environment)} (was {_v(a.from_version)})."
    if a.reason:
        text += f"\nReason: {escape(a.reason)}"
    return Message.build(fallback_text(text), [section(text)])


def rollback_confirm(state: EnvironmentState, target: int, reason: str | None, value: Mapping[str, Any]) -> Message:
    """Step one of a phone rollback: what will happen, and one button to make it so."""
    model, env = escape(state.model), escape(state.environment)
    text = f":rewind: Roll back *{model}* in *{env}*: {_v(state.stable)} → *v{target}*?"
    text += f"\nReason: {escape(reason)}" if reason else "\nNo reason given: add one after the command next time."
    if state.canary is not None:
        text += f"\nThe canary v{state.canary} ({state.canary_weight} %) stops too."
    blocks: list[Block] = [
        section(text),
        actions(button("Roll back", ROLLBACK_ACTION, _value(value), style="danger", confirm=confirm(
            "Roll back now?", f"{model} {env} goes back to v{target} for everyone, at once.", "Roll back",
            danger=True)), block_id="rollback_confirm"),
    ]
    return Message.build(f"Roll back {model} {env} {_v(state.stable)} → v{target}?", blocks)


def vote_result(outcome: VoteOutcome) -> Message:
    """The clicker's private note; the card itself is updated by the outbox (one writer)."""
    r = outcome.request
    if outcome.result == "approved":
        if r.kind == "canary_start":
            text = (f":hatching_chick: Approved: a canary of {escape(r.model)} v{r.version} takes {r.weight} % of "
                    f"{escape(r.environment)}.")
        elif r.kind == "rollback":
            text = f":rewind: Approved: {escape(r.model)} {escape(r.environment)} rolled back to v{r.version}."
        else:
            text = (f":white_check_mark: Approved: {escape(r.model)} v{r.version} now serves {escape(r.environment)}"
                    f" (was {_v(r.from_version)}).")
    elif outcome.result == "rejected":
        text = f":no_entry: Request #{r.id} rejected; the requester sees your reason."
    elif outcome.result == "counted":
        text = ":ballot_box_with_check: " + escape(" ".join(outcome.notes) or
                                                   f"Approval recorded: {len(r.approvals)} of {r.approvals_needed}.")
    else:  # duplicate, already_decided: nothing changed
        text = ":information_source: " + escape(" ".join(outcome.notes) or f"Request #{r.id} is {r.status}.")
    return Message.build(fallback_text(text), [section(text)])


def request_list(views: Sequence[RequestView], model: str | None, pending_only: bool) -> Message:
    scope = f" for {escape(model)}" if model else ""
    kind = "Pending requests" if pending_only else "Requests"
    if not views:
        text = f"No pending requests{scope}." if pending_only else f"No requests{scope} yet."
        return Message.build(text, [section(text)])
    blocks: list[Block] = [header(f"{kind}{' for ' + model if model else ''} ({len(views)})")]
    for view in views[:MAX_LISTED_REQUESTS]:
        r = view.to_dict()
        gates = "" if view.gates_pass else " · :x: gate fails"
        blocks.append(section(
            f"{STATUS_ICONS.get(view.status, '')} *#{view.id}* {_subject(r)} ({KIND_TITLES.get(view.kind, view.kind)})"
            f"\n{len(view.approvals)} of {view.approvals_needed} approvals · by {who(view.requester)} · "
            f"{escape(view.status)} · expires {when(view.expires_at)}{gates}"))
    if len(views) > MAX_LISTED_REQUESTS:
        blocks.append(context(f"{len(views) - MAX_LISTED_REQUESTS} more not shown; name a model to narrow."))
    blocks.append(context("`/model approve ID` · `/model reject ID REASON…`"))
    return Message.build(f"{kind}{scope}: " + ", ".join(f"#{v.id}" for v in views[:MAX_LISTED_REQUESTS]), blocks)


def canary_changed(state: EnvironmentState, next_step: int | None) -> Message:
    model, env = escape(state.model), escape(state.environment)
    if state.canary is None:
        text = f":x: Canary of {model} in {env} aborted; stable {_v(state.stable)} takes 100 %."
    else:
        text = (f":arrow_right: {model} in {env}: canary v{state.canary} takes {state.canary_weight} %, "
                f"stable {_v(state.stable)} {100 - state.canary_weight} %.")
        if next_step is not None and next_step < 100:
            text += f" Next step: {next_step} %."
        elif next_step == 100:
            text += f" Next: `/model canary {model} {env} promote`."
    return Message.build(fallback_text(text), [section(text)])


def note(text: str) -> Message:
    """A one-line private note (escaped)."""
    return Message.build(escape(text), [section(f":information_source: {escape(text)}")])


# ---- modals --------------------------------------------------------------------------------------


def reason_modal(callback_id: str, view: RequestView) -> dict[str, Any]:
    """The modal asking why (Reject, Override gate); `private_metadata` carries the request id."""
    r = view.to_dict()
    if callback_id == OVERRIDE_VIEW:
        title, submit, label = "Override gate", "Override", "Why is it safe to ship despite the failing gate?"
        intro = (f"*{_subject(r)}* (request #{view.id})\nYour approval completes the request and overrides:\n"
                 + "\n".join(_gate_line(g) for g in view.gates if not g["passed"]))
    else:
        title, submit, label = "Reject request", "Reject", "Why do you reject it? The requester reads this."
        intro = f"*{_subject(r)}* (request #{view.id}), requested by {who(view.requester)}."
    blocks = [
        section(clip(intro, 2900)),
        InputBlock(block_id=REASON_BLOCK, label=plain(label, 2000), element=PlainTextInputElement(
            action_id=REASON_INPUT, multiline=True, min_length=3, max_length=MODAL_REASON_MAX)),
    ]
    return _view(callback_id, title, blocks, submit=submit, metadata={"r": view.id})


def notice_view(title: str, text: str) -> dict[str, Any]:
    """Replaces a submitted modal when there is something to say (already decided, duplicate)."""
    return _view("modelbot_notice", title, [section(f":information_source: {escape(text)}")], submit=None)


def _view(callback_id: str, title: str, blocks: list[Block], *, submit: str | None,
          metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    if len(blocks) > MAX_VIEW_BLOCKS:
        raise ValueError(f"modal has {len(blocks)} blocks; Slack allows {MAX_VIEW_BLOCKS}")
    view = View(
        type="modal", callback_id=callback_id, title=plain(title, 24), close=plain("Close" if submit is None
                                                                                   else "Cancel", 24),
        submit=plain(submit, 24) if submit else None, blocks=blocks,
        private_metadata=_value(metadata) if metadata else None,
    )
    return view.to_dict()  # raises SlackObjectFormationError past a limit (title 24, metadata 3000)
