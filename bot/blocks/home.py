"""The App Home tab: what serves where, at a glance (within Slack's 100 blocks per view)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block

from bot.blocks.base import MAX_VIEW_BLOCKS, context, escape, header, section
from bot.domain.entities import ModelSummary, Page

MODELS_ON_HOME = 40


def home(page: Page[ModelSummary], environments: Sequence[str]) -> dict[str, Any]:
    blocks: list[Block] = [header("modelbot")]
    if not page.items:
        blocks.append(section("No models registered yet. Type `/model help` to get started."))
    for model in page.items:
        serving = " · ".join(
            f"{env} *v{model.serving[env]}*" if env in model.serving else f"{env} –" for env in environments
        )
        blocks.append(section(f"*{escape(model.name)}*  latest v{model.latest_version}\n{serving}"))
    if page.next_offset is not None:
        blocks.append(context(f"{page.total - len(page.items)} more models: `/model list` pages through all."))
    blocks = blocks[:MAX_VIEW_BLOCKS]
    return {"type": "home", "blocks": [b.to_dict() for b in blocks]}
