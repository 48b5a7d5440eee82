"""Alert cards, their thread replies, the canary question, and the replies to alert commands.

Outbox templates (`alert_card`, `alert_resolved`, `alert_changed`, `alert_repeat`,
`canary_inconclusive`) render the facts `bot.domain.alerting.notify.card_data` committed with
the state change, at delivery time; a late or retried update therefore shows exactly the
state that was committed, never a newer or older one. One card per model and environment
(the alert group): it is posted once, edited in place, and followed by thread replies.

Button values carry ids and names only (`{"g": 12}`, model and environment), never state:
the click handler reads the current state, so a stale card cannot act on what it shows.
Every piece of user text (model names, metric names, reasons, actors) goes through `escape()`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import Block, InputBlock, PlainTextInputElement
from slack_sdk.models.views import View

from bot.blocks import textfmt
from bot.blocks.approvals import when, who
from bot.blocks.base import (
    MAX_SECTION_TEXT,
    Message,
    actions,
    button,
    clip,
    confirm,
    context,
    escape,
    header,
    plain,
    section,
)
from bot.blocks.templates import template

if TYPE_CHECKING:
    from bot.domain.alerting.actions import Acknowledged, SilenceView
    from bot.domain.alerting.rules import Rule

# action_ids (every modelbot_* action reaches dispatch.click) and the modal's ids
ACK_ACTION = "modelbot_alert_ack"
# Slack wants action ids unique within a block: one per quick silence, one handler for both
SILENCE_1H_ACTION = "modelbot_alert_silence_1h"
SILENCE_1D_ACTION = "modelbot_alert_silence_1d"
SILENCE_CUSTOM_ACTION = "modelbot_alert_silence_custom"
ROLLBACK_ACTION = "modelbot_alert_rollback"
CANARY_ABORT_ACTION = "modelbot_alert_canary_abort"
CANARY_KEEP_ACTION = "modelbot_alert_canary_keep"
SILENCE_VIEW = "modelbot_alert_silence_modal"
DURATION_BLOCK, DURATION_INPUT = "duration", "duration_input"
REASON_BLOCK, REASON_INPUT = "reason", "reason_input"
QUICK_SILENCES = (("1h", "Silence 1 h", SILENCE_1H_ACTION), ("1d", "Silence 1 d", SILENCE_1D_ACTION))
MAX_CARD_ALERTS = 20
MAX_LISTED = 40
SEVERITY_ICONS = {"critical": ":red_circle:", "warning": ":large_orange_circle:"}
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]+$")


# ---- formatting helpers ---------------------------------------------------------------------------


def human_duration(seconds: float | int | None) -> str:
    """42 min, 3 h 12 min, 2 d 4 h: how long an incident lasted, as people say it."""
    if seconds is None:
        return "–"
    minutes = max(0, round(seconds / 60))
    if minutes < 1:
        return f"{max(0, int(seconds))} s"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def channel_link(channel: str | None) -> str:
    return f"<#{channel}>" if channel and _CHANNEL_ID.match(channel) else "the default alert channel"


def _num(value: Any) -> str:
    if value is None:
        return "–"
    return textfmt.number(float(value), 4)


def _subject(data: Mapping[str, Any]) -> str:
    return f"{escape(data['model'])} · {escape(data['environment'])}"


def _series(alert: Mapping[str, Any]) -> str:
    version = f" v{alert['version']}" if alert.get("version") is not None else ""
    return f"{escape(alert.get('series') or 'stable')}{version}"


def _condition(alert: Mapping[str, Any]) -> str:
    """`0.09 > 0.05`, `0.85 < previous −0.02 (0.88)`, `240 outside its baseline (limit 180)`."""
    value, threshold = _num(alert.get("value")), _num(alert.get("threshold"))
    if alert.get("kind") == "anomaly":
        return f"{value}, outside its usual range (limit {threshold})"
    if alert.get("baseline") == "previous":
        return f"{value} {escape(alert.get('op', '>'))} {threshold} (the previous version's value)"
    return f"{value} {escape(alert.get('op', '>'))} {threshold}"


def alert_line(alert: Mapping[str, Any], *, resolved: bool = False) -> str:
    """One alert on the card: what, value vs threshold, which version, since when, and its marks."""
    state = alert.get("state")
    if resolved or state == "inactive":
        icon = ":white_check_mark:"
    elif state == "pending":
        icon = ":hourglass_flowing_sand:"
    else:
        icon = SEVERITY_ICONS.get(alert.get("severity", "warning"), ":large_orange_circle:")
    text = f"{icon} *{escape(alert['metric'])}* {_condition(alert)} · {escape(alert.get('severity', 'warning'))}"
    text += f" · {_series(alert)}"
    if state == "pending":
        text += f" · pending since {when(alert.get('since'))}"
    elif state == "firing":
        text += f" · since {when(alert.get('since'))}"
    marks = []
    if alert.get("no_data"):
        marks.append(":grey_question: no data in the last evaluation (the state is kept)")
    if alert.get("silenced_until"):
        marks.append(f":mute: silenced until {when(alert['silenced_until'])}")
    if alert.get("inhibited"):
        marks.append(":zipper_mouth_face: muted by a firing critical alert")
    if marks:
        text += "\n    " + " · ".join(marks)
    return text


def fit_lines(lead: str, lines: Sequence[str], more: str, limit: int = MAX_SECTION_TEXT - 100) -> str:
    """`lead` and as many whole lines as fit one section (3000 characters) and MAX_CARD_ALERTS,
    then "… and N more": an incident with 80 alerts still renders, and no line is cut in half."""
    kept = [lead]
    used = len(lead)
    for line in lines[:MAX_CARD_ALERTS]:
        if used + 1 + len(line) > limit:
            break
        kept.append(line)
        used += 1 + len(line)
    if len(kept) - 1 < len(lines):
        kept.append(f"… and {len(lines) - (len(kept) - 1)} more: {more}")
    return "\n".join(kept)


def _versions(data: Mapping[str, Any]) -> str:
    parts = [f"stable v{data['stable']}" if data.get("stable") is not None else "nothing serving"]
    if data.get("canary") is not None:
        parts.append(f"canary v{data['canary']} at {data.get('canary_weight') or 0} %")
    if data.get("previous") is not None:
        parts.append(f"v{data['previous']} kept warm for rollback")
    return ", ".join(parts)


def _firing(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [a for a in data.get("alerts") or () if a.get("state") == "firing"]


def _fallback_alerts(alerts: Sequence[Mapping[str, Any]]) -> str:
    """Plain fallback text is mrkdwn too (notifications): the comparison is escaped like the blocks."""
    return escape("; ".join(f"{a['metric']} {_num(a.get('value'))} {a.get('op', '>')} {_num(a.get('threshold'))}"
                            for a in alerts[:5]))


# ---- the card -------------------------------------------------------------------------------------


@template("alert_card")
def alert_card(data: Mapping[str, Any]) -> Message:
    """The incident card of one model and environment; edited in place until it resolves."""
    subject = _subject(data)
    alerts = list(data.get("alerts") or ())
    resolved = data.get("status") == "resolved"
    firing = _firing(data)
    if resolved:
        title = f"Resolved: {data['model']} · {data['environment']}"
        lead = (f":white_check_mark: *{subject}*: resolved after {human_duration(data.get('duration_seconds'))} "
                f"(opened {when(data.get('opened_at'))}, resolved {when(data.get('resolved_at'))}).")
    else:
        worst = "critical" if any(a.get("severity") == "critical" for a in firing) else "warning"
        title = f"{len(firing)} alert{'s' if len(firing) != 1 else ''} firing: {data['model']} · {data['environment']}"
        lead = f"{SEVERITY_ICONS[worst]} *{subject}*: {len(firing)} firing, open for " \
               f"{human_duration(data.get('duration_seconds'))}."
    body = fit_lines(lead, [alert_line(a, resolved=resolved) for a in alerts],
                     f"`/model alerts {escape(data['model'])}`")
    blocks: list[Block] = [header(title), section(body)]
    ack = (f"Acknowledged by {who(data['acknowledged_by'])} at {when(data.get('acknowledged_at'))}"
           if data.get("acknowledged_by") else "Not acknowledged yet")
    blocks.append(context(f"{_versions(data)} · {ack} · alert #{data['group_id']}"))
    if not resolved:
        blocks.append(_card_buttons(data))
    fallback_state = "resolved" if resolved else "firing"
    fallback = (f"{escape(data['model'])} {escape(data['environment'])} alerts {fallback_state}: "
                f"{_fallback_alerts(firing or alerts)}")
    return Message.build(fallback, blocks)


def _card_buttons(data: Mapping[str, Any]) -> Block:
    group, model, env = data["group_id"], data["model"], data["environment"]
    target = {"g": group, "m": model, "e": env}
    elements = []
    if not data.get("acknowledged_by"):
        elements.append(button("Acknowledge", ACK_ACTION, {"g": group}, style="primary"))
    elements += [button(label, action, {**target, "d": duration}) for duration, label, action in QUICK_SILENCES]
    elements.append(button("Silence…", SILENCE_CUSTOM_ACTION, target))
    if data.get("stable") is not None and data.get("previous") is not None:
        elements.append(button(f"Roll back to v{data['previous']}", ROLLBACK_ACTION,
                               {**target, "f": data["stable"], "t": data["previous"]}, style="danger",
                               confirm=confirm(
                                   "Roll back now?",
                                   f"{escape(model)} {escape(env)} goes back from v{data['stable']} to "
                                   f"v{data['previous']} for everyone, at once.", "Roll back", danger=True)))
    return actions(*elements, block_id="alert_actions")


# ---- thread replies -------------------------------------------------------------------------------


@template("alert_resolved")
def alert_resolved(data: Mapping[str, Any]) -> Message:
    alerts = list(data.get("alerts") or ())
    now = ", ".join(f"{escape(a['metric'])} {_num(a.get('value'))}" for a in alerts[:10]) or "every metric"
    text = (f":white_check_mark: Resolved after *{human_duration(data.get('duration_seconds'))}*: {now} back within "
            "bounds.")
    if data.get("acknowledged_by"):
        text += f" {who(data['acknowledged_by'])} was on it."
    return Message.build(f"{escape(data['model'])} {escape(data['environment'])} resolved after "
                         f"{human_duration(data.get('duration_seconds'))}", [section(text)])


@template("alert_changed")
def alert_changed(data: Mapping[str, Any]) -> Message:
    firing = _firing(data)
    text = fit_lines(f":arrows_counterclockwise: The alerts changed; now firing ({len(firing)}):",
                     [alert_line(a) for a in firing], f"`/model alerts {escape(data['model'])}`")
    return Message.build(f"{escape(data['model'])} {escape(data['environment'])} alerts changed: "
                         f"{_fallback_alerts(firing)}",
                         [section(text)])


@template("alert_repeat")
def alert_repeat(data: Mapping[str, Any]) -> Message:
    firing = _firing(data)
    ack = "" if data.get("acknowledged_by") else " Nobody has acknowledged it yet."
    text = fit_lines(f":repeat: Still firing after {human_duration(data.get('duration_seconds'))}.{ack}",
                     [alert_line(a) for a in firing], f"`/model alerts {escape(data['model'])}`")
    return Message.build(f"{escape(data['model'])} {escape(data['environment'])} still firing: "
                         f"{_fallback_alerts(firing)}",
                         [section(text)])


# ---- canary analysis without data -------------------------------------------------------------------


@template("canary_inconclusive")
def canary_inconclusive(data: Mapping[str, Any]) -> Message:
    """The canary's rules have no data: a human decides (abort, or keep it at its weight)."""
    model, env = escape(data["model"]), escape(data["environment"])
    text = (f":grey_question: *Canary analysis of {model} in {env} is inconclusive*: its alert rules got no data "
            f"from the canary at {when(data.get('at'))}, so nothing can say whether it is healthy. It keeps its "
            "traffic until someone decides.")
    value = {"m": data["model"], "e": data["environment"]}
    buttons = actions(
        button("Abort the canary", CANARY_ABORT_ACTION, value, style="danger", confirm=confirm(
            "Abort the canary?", f"The canary of {model} in {env} stops taking traffic; the stable version takes "
            "100 %.", "Abort", danger=True)),
        button("Keep it running", CANARY_KEEP_ACTION, value),
        block_id="canary_inconclusive")
    return Message.build(f"Canary analysis of {model} in {env} is inconclusive (no data)",
                         [section(text), buttons])


def canary_decided(model: str, environment: str, actor: str, decision: str) -> Message:
    """Replaces the inconclusive-canary question once somebody answered it."""
    if decision == "abort":
        text = f":x: {who(actor)} aborted the canary of {escape(model)} in {escape(environment)} (no data to judge it)."
    else:
        text = f":white_check_mark: {who(actor)} kept the canary of {escape(model)} in {escape(environment)} running."
    return Message.build(re.sub(r":[a-z_]+: ", "", text), [section(text)])


# ---- command replies ------------------------------------------------------------------------------


def _rule_line(rule: Rule) -> str:
    parts = [f"*#{rule.id}* {escape(rule.model)}@{escape(rule.environment)} `{escape(rule.describe())}`",
             escape(rule.severity), f"watches {escape(rule.target)}"]
    if rule.no_data != "keep":
        parts.append(f"no data: {escape(rule.no_data)}")
    if rule.keep_firing_for_seconds:
        parts.append(f"keeps firing {human_duration(rule.keep_firing_for_seconds)}")
    if rule.target != "stable" and rule.severity == "critical":
        parts.append(f"aborts the canary after {rule.failure_limit} failing evaluations")
    if rule.channel:
        parts.append(f"→ {channel_link(rule.channel)}")
    if rule.origin == "config":
        parts.append("from modelbot.toml")
    return " · ".join(parts)


def rule_added(rule: Rule, default_channel: str | None) -> Message:
    where = channel_link(rule.channel or default_channel) if (rule.channel or default_channel) else None
    text = f":white_check_mark: Rule *#{rule.id}* added: {_rule_line(rule)}."
    details = []
    if rule.for_seconds:
        details.append(f"It is pending until the condition has held for {human_duration(rule.for_seconds)}, then fires.")
    else:
        details.append("It fires as soon as the condition is true (add `for 5m` to wait).")
    if rule.no_data == "keep":
        details.append("Without data it keeps its last state and the card says so (`no-data alert|ok` changes that).")
    details.append(f"Cards go to {where}." if where else
                   ":warning: No channel: name one with `#channel`, or set `[alerts] channel` in modelbot.toml, or "
                   "the alert is evaluated but nobody is told.")
    return Message.build(escape(f"Rule #{rule.id} added: {rule.model}@{rule.environment} {rule.describe()}"),
                         [section(text), context(" ".join(details))])


def rule_list(rules: Sequence[Rule], model: str | None) -> Message:
    scope = f" for {escape(model)}" if model else ""
    if not rules:
        text = f"No alert rules{scope} yet. Add one: `/model alert add churn error_rate &gt; 0.05 for 5m`."
        return Message.build(text, [section(text)])
    blocks = _listing(f"Alert rules{' for ' + model if model else ''}", [_rule_line(r) for r in rules[:MAX_LISTED]],
                      len(rules), "name a model to narrow",
                      "`/model alert rm RULE` removes one · `/model alerts` shows what fires now")
    return Message.build(f"{len(rules)} alert rule{'s' if len(rules) != 1 else ''}{scope}", blocks)


def _listing(title: str, lines: list[str], total: int, narrow: str, footer: str) -> list[Block]:
    """A header, the first MAX_LISTED lines in one section, how many were left out, a hint."""
    blocks: list[Block] = [header(f"{title} ({total})"), section(clip("\n".join(lines), 2950))]
    if total > MAX_LISTED:
        blocks.append(context(f"{total - MAX_LISTED} more not shown{'; ' + narrow if narrow else ''}."))
    blocks.append(context(footer))
    return blocks


def rule_removed(rule: Rule) -> Message:
    text = f":wastebasket: Rule *#{rule.id}* removed: {escape(rule.model)}@{escape(rule.environment)} " \
           f"`{escape(rule.describe())}`. Its alerts stop; an open card resolves at the next evaluation."
    return Message.build(f"Rule #{rule.id} removed", [section(text)])


def _overview_line(entry: Mapping[str, Any]) -> str:
    alert = {**entry, "state": "firing", "kind": entry.get("kind"), "version": None}
    return (f"{SEVERITY_ICONS.get(entry.get('severity', 'warning'), '')} *{escape(entry['model'])}*@"
            f"{escape(entry['environment'])} {escape(entry['metric'])} {_condition(alert)} · "
            f"{escape(entry.get('severity', 'warning'))} · {escape(entry.get('series') or 'stable')} · since "
            f"{when(entry.get('since'))}" + (" · no data" if entry.get("no_data") else "") + f" · rule #{entry['rule_id']}"
            + (f" · alert #{entry['alert']}" if entry.get("alert") else ""))


def overview(data: Mapping[str, Sequence[Mapping[str, Any]]], model: str | None) -> Message:
    """`/model alerts`: firing, pending and silenced now."""
    scope = f" for {escape(model)}" if model else ""
    firing, pending, silenced = (list(data.get(k) or ()) for k in ("firing", "pending", "silenced"))
    if not (firing or pending or silenced):
        text = f":large_green_circle: Nothing is firing{scope}."
        return Message.build(text, [section(text)])
    blocks: list[Block] = [header(f"Alerts{' for ' + model if model else ''}: {len(firing)} firing, "
                                  f"{len(pending)} pending, {len(silenced)} silenced")]
    for title, entries in (("Firing", firing), ("Pending", pending), ("Silenced (still firing)", silenced)):
        if not entries:
            continue
        lines = [_overview_line(e) for e in entries[:MAX_LISTED]]
        if len(entries) > MAX_LISTED:
            lines.append(f"… and {len(entries) - MAX_LISTED} more")
        blocks.append(section(clip(f"*{title}*\n" + "\n".join(lines), 2950)))
    fallback = f"Alerts{scope}: {len(firing)} firing, {len(pending)} pending, {len(silenced)} silenced"
    return Message.build(re.sub(r"\*", "", fallback), blocks)


def _silence_line(s: SilenceView) -> str:
    what = f"rule #{s.rule_id}" if s.rule_id else "all rules"
    env = escape(s.environment) if s.environment else "every environment"
    reason = f" · {escape(s.reason)}" if s.reason else ""
    return f"*#{s.id}* {escape(s.model)} {env}, {what} · until {when(s.ends_at)} · by {who(s.created_by)}{reason}"


def silence_added(s: SilenceView) -> Message:
    text = (f":mute: Silenced {escape(s.model)} {escape(s.environment or 'every environment')}"
            f"{f' (rule #{s.rule_id})' if s.rule_id else ''} for {human_duration(_length(s))}, until "
            f"{when(s.ends_at)}. Evaluation goes on; an alert still firing then notifies. "
            f"`/model unsilence {s.id}` ends it early.")
    return Message.build(re.sub(r":[a-z_]+: ", "", text), [section(text)])


def silence_list(silences: Sequence[SilenceView], model: str | None) -> Message:
    scope = f" for {escape(model)}" if model else ""
    if not silences:
        text = f"No active silences{scope}."
        return Message.build(text, [section(text)])
    blocks = _listing(f"Silences{' for ' + model if model else ''}",
                      [_silence_line(s) for s in silences[:MAX_LISTED]], len(silences), "",
                      "`/model unsilence ID` ends one now")
    return Message.build(f"{len(silences)} active silence{'s' if len(silences) != 1 else ''}{scope}", blocks)


def silence_ended(s: SilenceView) -> Message:
    text = f":loud_sound: Silence *#{s.id}* of {escape(s.model)} ended at {when(s.ends_at)}; notifications resume."
    return Message.build(f"Silence #{s.id} ended", [section(text)])


def _length(s: SilenceView) -> float:
    return (s.ends_at - s.starts_at).total_seconds()


def acknowledged(result: Acknowledged) -> Message:
    if result.already:
        text = f":information_source: Alert #{result.group_id} was already acknowledged by {who(result.by)} at " \
               f"{when(result.at)}."
    else:
        text = f":eyes: You acknowledged alert #{result.group_id}; the card shows you are on it."
    return Message.build(re.sub(r":[a-z_]+: ", "", text), [section(text)])


def note(text: str) -> Message:
    return Message.build(escape(text), [section(f":information_source: {escape(text)}")])


# ---- the Silence… modal -----------------------------------------------------------------------------


def silence_modal(model: str, environment: str, group_id: int | None) -> dict[str, Any]:
    """Duration and reason for a custom silence; `private_metadata` carries model, environment and card."""
    intro = (f"Mute notifications of *{escape(model)}* in *{escape(environment)}*. Evaluation goes on, and an alert "
             "still firing when the silence ends notifies again.")
    blocks: list[Block] = [
        section(intro),
        InputBlock(block_id=DURATION_BLOCK, label=plain("For how long? (like 30m, 4h, 2d; at most 30d)", 2000),
                   element=PlainTextInputElement(action_id=DURATION_INPUT, initial_value="4h", max_length=10)),
        InputBlock(block_id=REASON_BLOCK, label=plain("Why?"), optional=True, element=PlainTextInputElement(
            action_id=REASON_INPUT, multiline=True, max_length=1000)),
    ]
    return _view(SILENCE_VIEW, "Silence alerts", blocks, submit="Silence",
                 metadata={"m": model, "e": environment, "g": group_id})


def silenced_view(s: SilenceView) -> dict[str, Any]:
    """What the modal shows after it was submitted."""
    message = silence_added(s)
    return _view("modelbot_notice", "Silenced", [section(message.blocks[0]["text"]["text"])], submit=None)


def _view(callback_id: str, title: str, blocks: list[Block], *, submit: str | None,
          metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    view = View(type="modal", callback_id=callback_id, title=plain(title, 24),
                close=plain("Close" if submit is None else "Cancel", 24), submit=plain(submit, 24) if submit else None,
                blocks=blocks, private_metadata=json.dumps(dict(metadata), separators=(",", ":")) if metadata else None)
    return view.to_dict()  # raises SlackObjectFormationError past a limit (title 24, metadata 3000)
