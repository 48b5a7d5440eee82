"""MLflow as the registry of record: what modelbot reads from it and writes back (issue 14).

`source` says what the domain needs from an MLflow server (entities, errors, protocols; the
HTTP client in `bot.sources.mlflow` implements them), `settings` what `[mlflow]` in
modelbot.toml decides, `outbound` how pointer moves become alias writes, `inbound` how
MLflow's changes reach modelbot (webhook or poll), `state` what is in sync and what is not.
"""
