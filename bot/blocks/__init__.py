"""Block Kit renderers: pure functions from domain results to `Message` (blocks + fallback text)."""

from bot.blocks.base import Message, escape

__all__ = ["Message", "escape"]
