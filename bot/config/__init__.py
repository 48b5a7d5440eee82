"""Configuration: environment variables (`settings`) and modelbot.toml (`policy_file` with its
sections `alerts` and `sources`), validated at start-up with file:line errors."""
