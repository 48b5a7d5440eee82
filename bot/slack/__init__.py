"""Slack's Web API as modelbot uses it: the client (retries, metrics), user-group resolution,
and which scope each call needs."""
