"""A small MLflow tracking-server client over its REST API 2.0, built on `requests`.

Why not the `mlflow` package: it pins its own pandas/numpy/SQLAlchemy ranges and does not
import beside ours (pandas 3), and modelbot needs a dozen endpoints: the registry reads of
the import and the sync, alias writes, and webhook management for `modelbot mlflow setup`.
This module speaks exactly those, hands back the plain frozen dataclasses of
`bot.domain.mlflow.source` (no HTTP ever happens outside this module), and turns every way a
server can fail into one typed error whose message says what to check:

* unreachable (connection refused, DNS, timeouts) → `MlflowUnreachable`
* 401/403 → `MlflowAuthError` (credentials come from `MLFLOW_TRACKING_TOKEN`, or
  `MLFLOW_TRACKING_USERNAME` + `MLFLOW_TRACKING_PASSWORD`, like MLflow's own client, or the
  token the caller passes; they are never logged nor put in a message)
* 5xx/429 still failing after the retries → `MlflowServerError`
* an answer that is not JSON (a login page, a proxy's HTML) → `MlflowBadResponse`

Transient failures of reads (429, 502/503/504/500, connection errors) are retried with
exponential backoff by the one retry policy of modelbot's HTTP clients
(`bot.sources.http.retry_policy`; a read timeout is not retried: a server that stalls once
usually stalls again). Writes are retried only when the connection could not be made
(nothing was sent); every other failure of a write is reported at once, because its caller
(the outbox) schedules retries itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from bot.config.settings import named_secret
from bot.domain import names
from bot.domain.mlflow.settings import SyncSettings
from bot.domain.mlflow.source import (
    MlflowAuthError,
    MlflowBadResponse,
    MlflowConfigError,
    MlflowError,
    MlflowModel,
    MlflowNotFound,
    MlflowRequestError,
    MlflowRun,
    MlflowServerError,
    MlflowUnreachable,
    MlflowVersion,
    check_tracking_uri,
)
from bot.sources.http import MAX_REDIRECTS, RETRY_STATUSES, retry_policy

__all__ = [
    "MlflowAuthError", "MlflowBadResponse", "MlflowClient", "MlflowConfigError", "MlflowError", "MlflowModel",
    "MlflowNotFound", "MlflowRequestError", "MlflowRun", "MlflowServerError", "MlflowUnreachable", "MlflowVersion",
    "MlflowWebhook", "check_tracking_uri", "sync_client",
]

log = logging.getLogger(__name__)

API_PREFIX = "/api/2.0/mlflow/"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
MAX_PAGES = 100_000  # a server that keeps handing out page tokens is broken, not big


# ---- the client -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MlflowWebhook:
    """A webhook registered in MLflow (the secret is write-only: MLflow never returns it)."""

    webhook_id: str
    name: str
    url: str
    events: tuple[str, ...]
    status: str


class MlflowClient:
    """Client for the endpoints modelbot needs. Holds one pooled `requests.Session`.

    `token` (read by the caller from the variable `[mlflow] token_env` names) wins over
    MLFLOW_TRACKING_TOKEN; basic auth from MLFLOW_TRACKING_USERNAME/PASSWORD wins over both,
    as in MLflow's own client. `where` names the setting the user fixes when the server
    cannot be reached (`--tracking-uri` on the command line, `tracking_uri` in the file).
    """

    def __init__(
        self,
        tracking_uri: str,
        *,
        env: Mapping[str, str] | None = None,
        token: str | None = None,
        retries: int = 3,
        backoff_s: float = 0.3,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
        page_size: int = 200,
        where: str = "--tracking-uri",
    ) -> None:
        self.base_url = check_tracking_uri(tracking_uri)
        self.timeout = timeout
        self.page_size = page_size
        self.attempts = retries + 1
        self._where = where
        def env_get(name: str) -> str:
            return named_secret(name, env) or ""

        self._session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry_policy(retries, backoff_s), pool_connections=1, pool_maxsize=8)
        self._session.max_redirects = MAX_REDIRECTS
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = "modelbot-mlflow"
        self._session.headers["Accept"] = "application/json"
        # Same precedence as MLflow's own client: basic auth when both parts are set, else a token.
        username, password = env_get("MLFLOW_TRACKING_USERNAME"), env_get("MLFLOW_TRACKING_PASSWORD")
        token = token or env_get("MLFLOW_TRACKING_TOKEN")
        if username and password:
            self._session.auth = (username, password)
        elif token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        self._auth_hint = "the configured credentials" if (username and password) or token else (
            "no credentials: set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
        if env_get("MLFLOW_TRACKING_INSECURE_TLS").lower() == "true":
            self._session.verify = False
        elif env_get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
            self._session.verify = env_get("MLFLOW_TRACKING_SERVER_CERT_PATH")

    def __repr__(self) -> str:  # never shows the session, whose headers hold credentials
        return f"MlflowClient({self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> MlflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- registry reads -----------------------------------------------------------------

    def search_registered_models(self) -> Iterator[MlflowModel]:
        """Every registered model, page by page (`registered-models/search`)."""
        for item in self._pages("registered-models/search", "registered_models",
                                {"max_results": min(self.page_size, 1000)}):
            yield _model(item)

    def get_registered_model(self, name: str) -> MlflowModel | None:
        """One registered model by exact name, or None if MLflow has none by that name."""
        try:
            body = self._get("registered-models/get", {"name": name})
        except MlflowNotFound:
            return None
        return _model(_field(body, "registered_model", dict, "registered-models/get"))

    def search_model_versions(self, name: str) -> list[MlflowVersion]:
        """All live versions of one model, oldest first (deleted versions are not returned by MLflow)."""
        if "'" not in name:
            expression = f"name='{name}'"
        elif '"' not in name:
            expression = f'name="{name}"'
        else:
            raise MlflowRequestError(f"Model name '{names.preview(name, 60)}' has both quote characters and cannot be searched.")
        versions = [_version(item) for item in self._pages(
            "model-versions/search", "model_versions", {"filter": expression, "max_results": self.page_size})]
        return sorted(versions, key=lambda v: v.version)

    def get_run(self, run_id: str) -> MlflowRun | None:
        """A run's latest metric values, params and tags; None when the run no longer exists."""
        try:
            body = self._get("runs/get", {"run_id": run_id})
        except MlflowNotFound:
            return None
        run = _field(body, "run", dict, "runs/get")
        info = run.get("info") or {}
        data = run.get("data") or {}
        return MlflowRun(
            run_id=str(info.get("run_id") or info.get("run_uuid") or run_id),
            metrics={str(m["key"]): _float(m.get("value")) for m in _list(data, "metrics") if "key" in m},
            params=_pairs(_list(data, "params")),
            tags=_pairs(_list(data, "tags")),
            user_id=_text(info.get("user_id")),
        )

    def get_model_version(self, name: str, version: int) -> MlflowVersion | None:
        """One version by number, or None when MLflow has no such model or version."""
        try:
            body = self._get("model-versions/get", {"name": name, "version": str(version)})
        except MlflowNotFound:
            return None
        return _version(_field(body, "model_version", dict, "model-versions/get"))

    # ---- alias writes -------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point `alias` of model `name` at `version` (moving it if it pointed elsewhere)."""
        self._call("POST", "registered-models/alias", body={"name": name, "alias": alias, "version": str(version)})

    def delete_alias(self, name: str, alias: str) -> None:
        self._call("DELETE", "registered-models/alias", body={"name": name, "alias": alias})

    # ---- webhooks (MLflow ≥ 3.3, SQL backends) -----------------------------------------

    def list_webhooks(self) -> list[MlflowWebhook]:
        return [_webhook(item) for item in self._pages("webhooks", "webhooks", {"max_results": 100})]

    def create_webhook(self, *, name: str, url: str, events: tuple[str, ...], secret: str,
                       description: str) -> MlflowWebhook:
        body = {"name": name, "url": url, "events": [_event_object(e) for e in events], "secret": secret,
                "description": description, "status": "ACTIVE"}
        return _webhook(_field(self._call("POST", "webhooks", body=body), "webhook", dict, "webhooks"))

    def update_webhook(self, webhook_id: str, *, url: str, events: tuple[str, ...], secret: str,
                       description: str) -> MlflowWebhook:
        body = {"url": url, "events": [_event_object(e) for e in events], "secret": secret,
                "description": description, "status": "ACTIVE"}
        answer = self._call("PATCH", f"webhooks/{_path_part(webhook_id)}", body=body)
        return _webhook(_field(answer, "webhook", dict, "webhooks"))

    def test_webhook(self, webhook_id: str, event: str) -> tuple[bool, str]:
        """Ask MLflow to send an example `event` now: (success, what MLflow reported)."""
        answer = self._call("POST", f"webhooks/{_path_part(webhook_id)}/test", body={"event": _event_object(event)})
        result = _field(answer, "result", dict, "webhooks/test")
        if result.get("success"):
            return True, f"HTTP {result.get('response_status')}"
        detail = result.get("error_message") or f"HTTP {result.get('response_status')}: {result.get('response_body')}"
        return False, names.preview(str(detail), 300)

    # ---- transport ----------------------------------------------------------------------

    def _pages(self, path: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        token: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            body = self._get(path, {**params, **({"page_token": token} if token else {})})
            items = body.get(key) or []
            if not isinstance(items, list):
                raise MlflowBadResponse(f"{self.base_url} answered {path} with '{key}' that is not a list.")
            yield from (item for item in items if isinstance(item, dict))
            token = body.get("next_page_token") or None
            if token is None:
                return
            if token in seen:
                raise MlflowBadResponse(f"{self.base_url} repeated a page token for {path}; stopping.")
            seen.add(token)
        raise MlflowBadResponse(f"{self.base_url} kept paging {path} past {MAX_PAGES} pages; stopping.")

    def _get(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("GET", path, params=params)

    def _call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
              body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        url = self.base_url + API_PREFIX + path
        try:
            response = self._session.request(method, url, params=dict(params or {}), json=body, timeout=self.timeout)
        except requests.exceptions.SSLError as exc:
            raise MlflowUnreachable(
                f"TLS to {self.base_url} failed ({type(exc).__name__}): set MLFLOW_TRACKING_SERVER_CERT_PATH "
                "to the server's CA bundle if it uses a private CA."
            ) from None
        except requests.exceptions.RetryError:
            raise MlflowServerError(f"{self.base_url} kept failing {path} after {self.attempts} tries.") from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            what = "timed out" if _is_timeout(exc) else "refused or could not be reached"
            tries = f"{self.attempts} tries" if method == "GET" else "connection retried"
            raise MlflowUnreachable(
                f"The MLflow server at {self.base_url} {what} ({tries}): "
                f"check {self._where} and that the server is running."
            ) from None
        log.debug("%s %s%s -> %s", method, API_PREFIX, path, response.status_code)
        body = _json(response)
        status = response.status_code
        if status in (401, 403):
            raise MlflowAuthError(
                f"The MLflow server at {self.base_url} refused access ({status} "
                f"{'Unauthorized' if status == 401 else 'Forbidden'}) with {self._auth_hint}."
            )
        if status >= 400:
            code = str(body.get("error_code") or "") if isinstance(body, dict) else ""
            message = names.preview(str(body.get("message") or ""), 200) if isinstance(body, dict) else ""
            detail = f": {code} {message}".rstrip() if code or message else ""
            if code == "RESOURCE_DOES_NOT_EXIST":
                raise MlflowNotFound(f"{path}{detail}")
            if status in RETRY_STATUSES:
                tries = f" after {self.attempts} tries" if method == "GET" else ""
                raise MlflowServerError(
                    f"The MLflow server at {self.base_url} answered {status} {response.reason or ''} to {path}"
                    f"{tries}{detail}".replace("  ", " ")
                )
            if status == 404:
                raise MlflowBadResponse(
                    f"{self.base_url} has no {API_PREFIX}{path} (404{detail}): is this an MLflow tracking server "
                    "(MLflow ≥ 2.3)?"
                )
            raise MlflowRequestError(f"The MLflow server at {self.base_url} refused {path} ({status}{detail}).")
        if not isinstance(body, dict):
            kind = response.headers.get("Content-Type", "no content type").split(";")[0]
            raise MlflowBadResponse(
                f"{self.base_url} answered {path} with {kind}, not MLflow's JSON: "
                f"is {self._where} the MLflow tracking server (not its UI behind a login page or a proxy)?"
            )
        return body


def sync_client(settings: SyncSettings, *, retries: int = 3) -> MlflowClient:
    """The client of the live sync: `[mlflow] tracking_uri`, the token from the variable `token_env` names."""
    return MlflowClient(settings.tracking_uri, token=named_secret(settings.token_env), retries=retries,
                        where="tracking_uri in [mlflow]")


# ---- parsing --------------------------------------------------------------------------------


def _json(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _is_timeout(exc: Exception) -> bool:
    return isinstance(exc, requests.exceptions.Timeout) or "timed out" in str(exc).lower()


def _field(body: dict[str, Any], key: str, kind: type, path: str) -> Any:
    value = body.get(key)
    if not isinstance(value, kind):
        raise MlflowBadResponse(f"The answer to {path} has no '{key}' object.")
    return value


def _list(obj: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = obj.get(key) or []
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _pairs(items: list[dict[str, Any]]) -> dict[str, str]:
    return {str(i["key"]): "" if i.get("value") is None else str(i["value"]) for i in items if "key" in i}


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")  # refused later by metric validation, with the key named


def _time(value: Any) -> datetime | None:
    """MLflow timestamps are epoch milliseconds (numbers, or strings in proto-JSON)."""
    if value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise MlflowBadResponse(f"'{names.preview(str(value), 60)}' is not an MLflow timestamp.") from None


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MlflowBadResponse(f"MLflow sent {what} '{names.preview(str(value), 60)}', not a number.") from None


def _model(item: dict[str, Any]) -> MlflowModel:
    name = item.get("name")
    if not isinstance(name, str):
        raise MlflowBadResponse("MLflow sent a registered model without a name.")
    aliases = {str(a["alias"]): _int(a.get("version"), f"the version of alias {a['alias']}")
               for a in _list(item, "aliases") if "alias" in a}
    return MlflowModel(
        name=name,
        description=_text(item.get("description")),
        created_at=_time(item.get("creation_timestamp")),
        updated_at=_time(item.get("last_updated_timestamp")),
        aliases=aliases,
        tags=_pairs(_list(item, "tags")),
    )


def _version(item: dict[str, Any]) -> MlflowVersion:
    name = item.get("name")
    if not isinstance(name, str):
        raise MlflowBadResponse("MLflow sent a model version without a model name.")
    return MlflowVersion(
        name=name,
        version=_int(item.get("version"), f"a version number of {name}"),
        created_at=_time(item.get("creation_timestamp")),
        updated_at=_time(item.get("last_updated_timestamp")),
        user_id=_text(item.get("user_id")),
        description=_text(item.get("description")),
        source=_text(item.get("source")),
        run_id=_text(item.get("run_id")),
        run_link=_text(item.get("run_link")),
        storage_location=_text(item.get("storage_location")),
        status=str(item.get("status") or "READY"),
        status_message=_text(item.get("status_message")),
        current_stage=_text(item.get("current_stage")),
        tags=_pairs(_list(item, "tags")),
    )


def _webhook(item: dict[str, Any]) -> MlflowWebhook:
    events = tuple(f"{str(e.get('entity', '')).lower()}.{str(e.get('action', '')).lower()}"
                   for e in _list(item, "events"))
    return MlflowWebhook(webhook_id=str(item.get("webhook_id") or ""), name=str(item.get("name") or ""),
                         url=str(item.get("url") or ""), events=events, status=str(item.get("status") or ""))


def _event_object(event: str) -> dict[str, str]:
    """`model_version.created` → the proto-JSON MLflow's REST API takes."""
    entity, _, action = event.partition(".")
    return {"entity": entity.upper(), "action": action.upper()}


def _path_part(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
