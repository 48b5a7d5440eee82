"""A small client for model servers that follow modelbot (standard library only).

    from modelbot_client import ServingState

    state = ServingState("http://modelbot:3000", token, "churn", "production")
    state.wait_ready()
    choice = state.choose(user_id)   # Choice(side="canary"|"stable", version=8, artifact_uri="s3://…")
"""

from modelbot_client.serving import Choice, NotServing, ServingState, Snapshot
from modelbot_client.split import bucket, on_canary, salt_for

__all__ = ["Choice", "NotServing", "ServingState", "Snapshot", "bucket", "on_canary", "salt_for"]
