"""Outbox templates: the renderer for each kind of message the domain asks to send.

The domain writes (template name, facts) to the outbox; the delivery worker calls
`render()` at send time. Renderer modules register themselves with `@template(name)`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bot.blocks.base import Message, code_block, escape, section

Renderer = Callable[[dict[str, Any]], Message]
TEMPLATES: dict[str, Renderer] = {}
# the modules whose import registers templates; a new renderer module is added here
RENDERER_MODULES = ("bot.blocks.approvals", "bot.blocks.digest", "bot.blocks.alerts", "bot.blocks.mlflow",
                    "bot.blocks.deliveries")


def template(name: str) -> Callable[[Renderer], Renderer]:
    def decorate(func: Renderer) -> Renderer:
        TEMPLATES[name] = func
        return func

    return decorate


def render(name: str, data: dict[str, Any]) -> Message:
    _load_renderers()
    renderer = TEMPLATES.get(name)
    if renderer is None:
        return _fallback(name, data)
    return renderer(data)


def _load_renderers() -> None:
    """Import the modules that register templates (kept lazy to avoid import cycles)."""
    import importlib

    for module in RENDERER_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def _fallback(name: str, data: dict[str, Any]) -> Message:
    """A readable message for a template without a renderer yet: never lose a notification."""
    text = f"modelbot {escape(name)}"
    body = json.dumps(data, indent=1, default=str)[:2500]
    return Message.build(text, [section(f"*{escape(name)}*\n" + code_block([escape(body)]))])
