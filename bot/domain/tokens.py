"""API tokens for CI/CD: created once (the secret is printed once), stored as a SHA-256 hash.

Tokens carry 256 bits of randomness, so a fast hash is enough: there is nothing to brute-force,
and verification stays cheap on every request. Lookups compare hashes, never secrets.

A token's name is who it acts as: the actor of its audit rows, and the identity the policy
file lists among deployers and approvers. So the name outlives any one secret: names are
unique among *active* tokens, and `rotate` replaces a token's secret by revoking it and
issuing a new token with the same name and scopes in one transaction — there is no moment
with two active tokens of one name, nor one with none. Create, rotate and revoke are
decisions: each writes one audit row (subject `token NAME`), and a refused one writes its
refusal (see bot/domain/audit.py). They are for whoever runs the CLI against the database
(the actor is what `--actor` or `MODELBOT_ACTOR` says): the rule book here is about names,
scopes and states, not roles.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.exc import IntegrityError

from bot.domain import audit, names
from bot.domain.entities import as_utc, iso
from bot.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from bot.domain.registry import Registry
from storage.models import ApiToken
from storage.queries import tokens as queries

SCOPES = {
    "read": "read everything a GET route answers: models, versions, serving state, requests, history, status, "
            "alerts and silences",
    "versions:write": "register new versions",
    "promotions:request": "request promotions, rollbacks and canary changes",
    "promotions:approve": "approve or reject requests (the token's name must be an approver)",
    "metrics:write": "push metric samples",
    "alerts:write": "acknowledge alerts, silence and unsilence them (the token's name must be a deployer)",
}
READ_SCOPE = "read"
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

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "prefix": self.prefix, "scopes": list(self.scopes),
                "created_by": self.created_by, "created_at": iso(self.created_at),
                "last_used_at": iso(self.last_used_at), "revoked_at": iso(self.revoked_at)}


class Issued(NamedTuple):
    """A new token and its secret; the secret exists nowhere else afterwards."""

    token: TokenView
    secret: str


@dataclass(frozen=True)
class Rotated:
    issued: Issued
    revoked: TokenView


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


def token_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise InvalidInput(f"'{names.preview(name or '')}' is not a token name: use lower-case letters, digits, "
                           "'.', '_' or '-', like ci-churn.")
    return name


def subject(name: str) -> str:
    return f"token {name}"


class Tokens:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def create(self, name: str, scopes: str | list[str], *, actor: str, now: datetime) -> Issued:
        name, parsed, actor = token_name(name), parse_scopes(scopes), names.actor(actor)
        taken = Conflict(f"A token named {name} is active: `modelbot token rotate {name}` gives it a new secret, "
                         "or revoke it first.")
        with audit.refusals(self.registry, actor=actor, action="token_create", subject=subject(name)):
            try:
                with self.registry.writing() as session:
                    if queries.active_by_name(session, name) is not None:
                        raise taken
                    issued = _issue(session, name, parsed, actor, now)
                    audit.record(session, at=now, actor=actor, action="token_create", subject=subject(name),
                                 reason=f"scopes {','.join(parsed)}")
                    return issued
            except IntegrityError:  # the same name created at the same moment (the partial unique index)
                raise taken from None

    def rotate(self, name: str, *, actor: str, now: datetime) -> Rotated:
        """A new secret for the same name and scopes; the old secret stops working in the same commit."""
        name, actor = token_name(name), names.actor(actor)
        with (audit.refusals(self.registry, actor=actor, action="token_rotate", subject=subject(name)),
              self.registry.writing() as session):
            old = queries.active_by_name(session, name, lock=True)
            if old is None:
                raise _no_active(session, name)
            queries.revoke(session, old, now)
            issued = _issue(session, name, tuple(old.scopes), actor, now)
            audit.record(session, at=now, actor=actor, action="token_rotate", subject=subject(name),
                         reason=f"{old.prefix}… revoked, {issued.token.prefix}… issued")
            return Rotated(issued, _view(old))

    def revoke(self, name: str, *, actor: str, now: datetime) -> TokenView:
        name, actor = token_name(name), names.actor(actor)
        with (audit.refusals(self.registry, actor=actor, action="token_revoke", subject=subject(name)),
              self.registry.writing() as session):
            row = queries.active_by_name(session, name, lock=True)
            if row is None:
                raise _no_active(session, name)
            queries.revoke(session, row, now)
            audit.record(session, at=now, actor=actor, action="token_revoke", subject=subject(name),
                         reason=f"{row.prefix}…")
            return _view(row)

    def authenticate(self, secret: str | None, *, now: datetime) -> TokenView | None:
        """The token behind a secret, or None (unknown, malformed or revoked)."""
        if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        digest = hash_token(secret)
        with self.registry.reading() as session:
            row = queries.by_hash(session, digest)
            if row is None or row.revoked_at is not None:
                return None
            if not secrets.compare_digest(row.token_hash, digest):
                return None
            return _view(row)

    def touch(self, token_id: int, now: datetime) -> None:
        """When a token was last used (bookkeeping, not a decision: no audit row)."""
        with self.registry.writing() as session:
            queries.touch(session, token_id, now)

    def list(self) -> list[TokenView]:
        with self.registry.reading() as session:
            return [_view(r) for r in queries.all_tokens(session)]


def require_scope(token: TokenView, scope: str) -> None:
    if scope not in token.scopes:
        raise Forbidden(f"Token {token.name} lacks the scope {scope}; create one with "
                        f"`modelbot token create --name NAME --scopes {scope}`.")


def _issue(session: Any, name: str, scopes: tuple[str, ...], actor: str, now: datetime) -> Issued:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = queries.insert(session, ApiToken(name=name, token_hash=hash_token(secret), prefix=secret[:12],
                                           scopes=list(scopes), created_by=actor, created_at=now))
    return Issued(_view(row), secret)


def _no_active(session: Any, name: str) -> NotFound | Conflict:
    revoked = queries.last_revoked_by_name(session, name)
    if revoked is not None:
        return Conflict(f"Token {name} was revoked at {iso(as_utc(revoked.revoked_at))}; create a new one with "
                        f"`modelbot token create --name {name} --scopes {','.join(revoked.scopes)}`.")
    return NotFound(f"There is no token named {name}: `modelbot token list` shows them.")


def _view(row: ApiToken) -> TokenView:
    return TokenView(id=row.id or 0, name=row.name, prefix=row.prefix, scopes=tuple(row.scopes),
                     created_by=row.created_by, created_at=as_utc(row.created_at),
                     last_used_at=as_utc(row.last_used_at) if row.last_used_at else None,
                     revoked_at=as_utc(row.revoked_at) if row.revoked_at else None)
