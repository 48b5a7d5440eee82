"""The App Home tab: what waits for your approval, and how the models you watch are doing.

One published view per person (`views.publish`), rebuilt from current state every time:

* **Deliveries paused** (admins only, when a webhook receiver or another destination keeps
  failing and its circuit breaker is open; see `bot.delivery.circuits`).
* **Waiting for your approval** (first page only): the pending requests this person may act
  on, each with exactly the card's buttons (`approvals._card_buttons`: same action ids and
  values), so a click on the Home runs the same handler as a click on the card.
* **Models**: the models the person watches (see `bot.domain.home`), one section each: a
  health badge (:fire: something fires, :warning: stale data, dataset drift or uptime under
  99 %, :white_check_mark: data and nothing wrong, :white_circle: no monitoring data), what
  serves each environment (stable, canary and its weight) with its health line, and what fires.
* **Paging**: `MODELS_PER_PAGE` models per page and "More" / "Previous" buttons
  (`HOME_PAGE_ACTION` / `HOME_BACK_ACTION`, value `{"o": offset}`) that publish that page.

Limits: Slack refuses a view with more than 100 blocks (`invalid_arguments`) or more than
250 KB of JSON (`view_too_large`). The block count is bounded by construction; the size is
measured on the finished view (as compact JSON with non-ASCII escaped, the larger of the ways
it can be counted) and model sections are dropped from the end, with a note, until it fits. The
"More" button then starts at the first model not shown, so nothing is skipped. All user text
(descriptions, reasons, names) goes through `escape()` and is clipped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.blocks import textfmt
from bot.blocks.approvals import KIND_TITLES, when, who
from bot.blocks.approvals import (
    _card_buttons as card_buttons,  # the card's own buttons: same ids, same values
)
from bot.blocks.base import (
    MAX_VIEW_BLOCKS,
    Message,
    actions,
    button,
    clip,
    context,
    divider,
    escape,
    header,
    section,
)
from bot.blocks.deliveries import paused_blocks
from bot.domain.deliveries import PausedDestination
from bot.domain.home import HomeEnvironment, HomeModel, HomeModels

if TYPE_CHECKING:
    from bot.domain.deployments import RequestView

HOME_PAGE_ACTION = "modelbot_home_page"
# action ids must be unique within a block, so "Previous" has its own (same handler, same value shape)
HOME_BACK_ACTION = "modelbot_home_page_back"
PAGE_ACTIONS = (HOME_PAGE_ACTION, HOME_BACK_ACTION)
HOME_CALLBACK = "modelbot_home"
MODELS_PER_PAGE = 20
MAX_PENDING_SHOWN = 10
DESCRIPTION_MAX = 280
REASON_MAX = 300
MAX_FIRING_LINES = 3
# Slack's limit is 250 KB; stay clear of it for the fields Slack adds to what it stores.
MAX_VIEW_BYTES = 240_000
UPTIME_WARN = 0.99
BADGE_FIRING, BADGE_WARN, BADGE_OK, BADGE_NO_DATA = ":fire:", ":warning:", ":white_check_mark:", ":white_circle:"


@dataclass(frozen=True)
class HomeData:
    """Everything one Home page shows; `pending` is empty past the first page."""

    user: str
    pending: Sequence[RequestView]
    models: HomeModels
    now: datetime
    notice: Message | None = None
    # admins only: destinations whose deliveries are paused (bot.delivery.circuits)
    paused: Sequence[PausedDestination] = ()


def view_bytes(view: dict[str, Any]) -> int:
    """The size Slack's limit applies to, counted pessimistically (non-ASCII as \\u escapes)."""
    return len(json.dumps(view, separators=(",", ":")).encode("utf-8"))


def home(data: HomeData) -> dict[str, Any]:
    """The Home view for one person: at most 100 blocks and `MAX_VIEW_BYTES`, whatever the data."""
    head: list[dict[str, Any]] = [header("modelbot").to_dict()]
    if data.notice is not None:
        head += data.notice.blocks[:3]
    head += paused_blocks(data.paused)
    pending = _pending_blocks(data) if data.models.offset == 0 else []
    head_end = [divider().to_dict(), *_models_title(data.models)]
    model_blocks = [_model_block(m, data.models.scope).to_dict() for m in data.models.items]
    # room for the navigation, the page line, the footer and a "left out" note
    room = MAX_VIEW_BLOCKS - len(head) - len(pending) - len(head_end) - 4
    shown = min(len(model_blocks), max(room, 0))
    while True:
        view = _assemble(data, head, pending, head_end, model_blocks[:shown], left_out=len(model_blocks) - shown)
        if view_bytes(view) <= MAX_VIEW_BYTES or shown == 0:
            break
        shown -= 1
    if view_bytes(view) > MAX_VIEW_BYTES:  # cannot happen with clipped texts; never fail a publish anyway
        pending = [section(f"*Waiting for your approval* ({len(data.pending)}): too much to show here; "
                           "`/model requests` lists them.").to_dict()]
        view = _assemble(data, [head[0]], pending, head_end, [], left_out=len(model_blocks))
    return view


def _assemble(data: HomeData, head: list[dict[str, Any]], pending: list[dict[str, Any]],
              head_end: list[dict[str, Any]], models: list[dict[str, Any]], *, left_out: int) -> dict[str, Any]:
    page = data.models
    blocks = head + pending + head_end + models
    if not page.items:
        blocks.append(section("No models registered yet. Type `/model help` to get started.").to_dict()
                      if page.total == 0 else context("No more models.").to_dict())
    if left_out:
        blocks.append(context(f"{left_out} model(s) did not fit on this page (Slack limits the size of the "
                              "Home tab): *More* continues with them.").to_dict())
    next_offset = page.offset + len(models) if page.offset + len(models) < page.total else None
    nav = []
    if page.offset > 0:
        nav.append(button("◀ Previous", HOME_BACK_ACTION, {"o": max(0, page.offset - MODELS_PER_PAGE)}))
    if next_offset is not None:
        nav.append(button("More ▶", HOME_PAGE_ACTION, {"o": next_offset}, style="primary"))
    if nav:
        blocks.append(actions(*nav, block_id="home_nav").to_dict())
    if page.total:
        first = page.offset + 1 if models else page.offset
        blocks.append(context(f"Models {first}–{page.offset + len(models)} of {page.total}").to_dict())
    blocks.append(context(f"Updated {when(data.now)} · :fire: firing · :warning: stale, drift or uptime "
                          "&lt; 99 % · :white_check_mark: healthy · :white_circle: no data · `/model help`").to_dict())
    return {"type": "home", "callback_id": HOME_CALLBACK, "blocks": blocks[:MAX_VIEW_BLOCKS]}


# ---- waiting for your approval ------------------------------------------------------------------


def _pending_blocks(data: HomeData) -> list[dict[str, Any]]:
    if not data.pending:
        return [section("*Waiting for your approval*\nNothing waits for you.").to_dict()]
    blocks = [section(f"*Waiting for your approval* ({len(data.pending)})").to_dict()]
    for view in data.pending[:MAX_PENDING_SHOWN]:
        r = view.to_dict()
        voted = any(by == data.user for by, _at in view.approvals)
        lines = [f":hourglass_flowing_sand: *#{view.id}* {escape(view.model)} v{view.version} → "
                 f"{escape(view.environment)} ({KIND_TITLES.get(view.kind, escape(view.kind))})",
                 f"by {who(view.requester)} · {len(view.approvals)} of {view.approvals_needed} approvals · "
                 f"expires {when(view.expires_at)}"]
        if view.reason:
            lines.append(f"_Reason:_ {escape(clip(view.reason, REASON_MAX))}")
        failing = [g for g in view.gates if not g.get("passed")]
        if failing:
            lines.append(":x: gate fails: " + ", ".join(f"`{escape(g.get('gate', ''))}`" for g in failing[:3]))
        if voted:
            missing = view.approvals_needed - len(view.approvals)
            lines.append(f":ballot_box_with_check: You approved; waiting for {missing} more.")
        blocks.append(section("\n".join(lines)).to_dict())
        if not voted:
            blocks.append(card_buttons(r).to_dict())
    if len(data.pending) > MAX_PENDING_SHOWN:
        blocks.append(context(f"{len(data.pending) - MAX_PENDING_SHOWN} more: `/model requests` lists them.").to_dict())
    return blocks


# ---- models ---------------------------------------------------------------------------------------


def _models_title(page: HomeModels) -> list[dict[str, Any]]:
    if page.scope == "watched":
        text = (f"*Your models* ({page.total}): the ones you own or have acted on. "
                f"`/model list` shows all {page.registry_total}.")
    elif page.watched_total:
        text = f"*Models* ({page.total}): yours first, marked :star:."
    else:
        text = (f"*Models* ({page.total}). Models you register, promote or approve are listed first once you "
                "have some.")
    return [section(text).to_dict()]


def badge(model: HomeModel) -> str:
    lines = [e.health for e in model.environments]
    if model.firing or any(line.firing for line in lines):
        return BADGE_FIRING
    if any(line.stale or line.dataset_drift or (line.uptime is not None and line.uptime < UPTIME_WARN)
           for line in lines):
        return BADGE_WARN
    if any(line.newest is not None for line in lines):
        return BADGE_OK
    return BADGE_NO_DATA


def _model_block(model: HomeModel, scope: str) -> Any:
    star = " :star:" if model.watched and scope == "all" else ""
    lines = [f"{badge(model)} *{escape(model.name)}*{star}  latest v{model.latest_version}"
             + (f" · owner {who(model.owner)}" if model.owner else "")]
    if model.description:
        lines.append(f"_{escape(clip(' '.join(model.description.split()), DESCRIPTION_MAX))}_")
    lines += [_environment_line(e) for e in model.environments] or ["_Nothing serves yet, no monitoring data._"]
    for alert in model.firing[:MAX_FIRING_LINES]:
        lines.append(f":rotating_light: {_alert_text(alert)}")
    if len(model.firing) > MAX_FIRING_LINES:
        lines.append(f"… and {len(model.firing) - MAX_FIRING_LINES} more firing: `/model alerts {escape(model.name)}`")
    return section("\n".join(lines))


def _environment_line(e: HomeEnvironment) -> str:
    serving = f"v{e.stable}" if e.stable is not None else "nothing"
    if e.canary is not None:
        serving += f" · canary v{e.canary} at {e.canary_weight} %"
    h = e.health
    parts = []
    if h.quality:
        parts.append(f"{escape(h.quality[0])} {textfmt.number(h.quality[1], 3)}")
    if h.latency:
        parts.append(f"p95 {textfmt.number(h.latency[1], 1)} ms")
    if h.uptime is not None:
        parts.append(f"up {h.uptime * 100:.2f}%")
    if h.dataset_drift:
        parts.append(":warning: drift")
    if h.firing:
        parts.append(f":rotating_light: {h.firing} firing")
    if h.stale:
        parts.append(":hourglass: stale")
    if h.newest is None:
        parts.append("_no data_")
    return f"• *{escape(e.environment)}* {serving}" + (" — " + " · ".join(parts) if parts else "")


def _alert_text(alert: Any) -> str:
    value = "no data" if alert.get("no_data") or alert.get("value") is None else textfmt.number(alert["value"])
    threshold = "–" if alert.get("threshold") is None else textfmt.number(alert["threshold"])
    return (f"*{escape(alert.get('metric', 'alert'))}* {value} {escape(alert.get('op', ''))} {threshold} "
            f"({escape(alert.get('environment', ''))}, {escape(alert.get('severity', ''))}, since "
            f"{when(alert.get('since'))})")
