"""The Slack Web API client: retries on 429 and 5xx, and errors counted by method."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.observability import SLACK_API_ERRORS

DEFAULT_TIMEOUT_S = 10


class InstrumentedWebClient(WebClient):
    """WebClient that counts failures per method for /metrics."""

    def api_call(self, api_method: str, **kwargs: Any) -> Any:  # type: ignore[override]
        try:
            return super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            SLACK_API_ERRORS.labels(api_method, str(error or exc.response.status_code)).inc()
            raise
        except Exception as exc:
            SLACK_API_ERRORS.labels(api_method, type(exc).__name__).inc()
            raise


def make_web_client(
    token: str | None, base_url: str, *, timeout: int = DEFAULT_TIMEOUT_S, retries: int = 2
) -> InstrumentedWebClient:
    return InstrumentedWebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=retries),
            RateLimitErrorRetryHandler(max_retry_count=retries),
            ServerErrorRetryHandler(max_retry_count=retries),
        ],
    )
