"""`python -m bot.cli …`, the same as the `modelbot` script."""

from bot.cli.main import run

run()
