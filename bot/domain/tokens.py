"""API tokens for CI/CD: created once (the secret is printed once), stored as a SHA-256 hash.

Tokens carry 256 bits of randomness, so a fast hash is enough: there is nothing to brute-force,
and verification stays cheap on every request. Lookups compare hashes, never secrets.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot.domain import names
from bot.domain.entities import as_utc, iso
from bot.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from bot.domain.registry import Registry
from storage.models import ApiToken

SCOPES = {
    "read": "read models, versions, serving state, requests and history",
    "versions:write": "register new versions",
    "promotions:request": "request promotions, rollbacks and canary changes",
    "promotions:approve": "approve or reject requests (the token's name must be an approver)",
    "metrics:write": "push metric samples",
}
TOKEN_PREFIX = "mbt_"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class TokenView:
    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "prefix": self.prefix, "scopes": list(self.scopes),
                "created_by": self.created_by, "created_at": iso(self.created_at),
                "last_used_at": iso(self.last_used_at), "revoked_at": iso(self.revoked_at)}


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_scopes(raw: str | list[str]) -> tuple[str, ...]:
    items = raw.split(",") if isinstance(raw, str) else raw
    scopes = tuple(dict.fromkeys(s.strip() for s in items if s.strip()))
    if not scopes:
        raise InvalidInput(f"Give at least one scope: {', '.join(SCOPES)}.")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise InvalidInput(f"Unknown scope {names.preview(unknown[0])}: use {', '.join(SCOPES)}.")
    return scopes


class Tokens:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def create(self, name: str, scopes: str | list[str], *, actor: str, now: datetime) -> tuple[TokenView, str]:
        """Returns the view and the secret; the secret exists nowhere else afterwards."""
        if not _NAME.fullmatch(name or ""):
            raise InvalidInput("Token names use lower-case letters, digits, '.', '_' or '-', like ci-churn.")
        parsed = parse_scopes(scopes)
        actor = names.actor(actor)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiToken(name=name, token_hash=hash_token(secret), prefix=secret[:12], scopes=list(parsed),
                       created_by=actor, created_at=now)
        try:
            with self.registry.writing() as session:
                session.add(row)
                session.flush()
                return _view(row), secret
        except IntegrityError:
            raise Conflict(f"A token named {name} already exists: revoke it first or pick another name.") from None

    def authenticate(self, secret: str | None, *, now: datetime) -> TokenView | None:
        """The token behind a secret, or None (unknown, malformed or revoked)."""
        if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        digest = hash_token(secret)
        with self.registry.reading() as session:
            row = session.exec(select(ApiToken).where(ApiToken.token_hash == digest)).first()
            if row is None or row.revoked_at is not None:
                return None
            if not secrets.compare_digest(row.token_hash, digest):
                return None
            return _view(row)

    def touch(self, token_id: int, now: datetime) -> None:
        with self.registry.writing() as session:
            row = session.get(ApiToken, token_id)
            if row is not None:
                row.last_used_at = now
                session.add(row)

    def list(self) -> list[TokenView]:
        with self.registry.reading() as session:
            return [_view(r) for r in session.exec(select(ApiToken).order_by(col(ApiToken.name))).all()]

    def revoke(self, name: str, *, now: datetime) -> TokenView:
        with self.registry.writing() as session:
            row = session.exec(select(ApiToken).where(ApiToken.name == name)).first()
            if row is None:
                raise NotFound(f"There is no token named {names.preview(name)}: `modelbot token list` shows them.")
            if row.revoked_at is None:
                row.revoked_at = now
                session.add(row)
            return _view(row)


def require_scope(token: TokenView, scope: str) -> None:
    if scope not in token.scopes:
        raise Forbidden(f"Token {token.name} lacks the scope {scope}; create one with "
                        f"`modelbot token create --name NAME --scopes {scope}`.")


def _view(row: ApiToken) -> TokenView:
    return TokenView(id=row.id or 0, name=row.name, prefix=row.prefix, scopes=tuple(row.scopes),
                     created_by=row.created_by, created_at=as_utc(row.created_at),
                     last_used_at=as_utc(row.last_used_at) if row.last_used_at else None,
                     revoked_at=as_utc(row.revoked_at) if row.revoked_at else None)
