"""Block Kit renderers: pure functions from domain results to `Message` (blocks + fallback text).

`base` holds `Message` and the one `escape()` every piece of user text goes through.
"""
