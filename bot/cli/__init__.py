"""The `modelbot` command line: one module per verb group, assembled in `bot.cli.main`."""
