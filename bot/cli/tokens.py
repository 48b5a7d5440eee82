"""`modelbot token create|rotate|revoke|list`: API tokens for CI/CD (a secret is printed once)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from bot.blocks import textfmt
from bot.cli.common import AddCommand, Parser, default_actor, emit
from bot.domain.tokens import SCOPES, Tokens

if TYPE_CHECKING:
    from bot.services import Services


def add_commands(command: AddCommand, sub: Any) -> None:
    token = sub.add_parser("token", help="API tokens for the REST API (CI/CD)")
    actions = token.add_subparsers(dest="token_command", metavar="ACTION", parser_class=Parser)
    actions.required = True
    create = actions.add_parser("create", help="create a token and print its secret once")
    create.set_defaults(func=cmd_create)
    create.add_argument("--name", required=True, help="who the token acts as in the audit log, e.g. ci-churn "
                        "(unique among active tokens)")
    create.add_argument("--scopes", required=True, metavar="S1,S2",
                        help="comma-separated: " + ", ".join(SCOPES))
    rotate = actions.add_parser("rotate", help="a new secret for a token (same name and scopes); the old secret "
                                "stops working at once")
    rotate.set_defaults(func=cmd_rotate)
    rotate.add_argument("name")
    revoke = actions.add_parser("revoke", help="revoke a token by name (takes effect at once)")
    revoke.set_defaults(func=cmd_revoke)
    revoke.add_argument("name")
    for p in (create, rotate, revoke):
        p.add_argument("--actor", metavar="NAME", help="who does it, for the audit log (default $MODELBOT_ACTOR or "
                       "your login)")
        p.add_argument("--json", action="store_true")
    listing = actions.add_parser("list", help="tokens with scopes, last use and revocation (never secrets)")
    listing.set_defaults(func=cmd_list)
    listing.add_argument("--json", action="store_true")


def cmd_create(services: Services, args: argparse.Namespace) -> None:
    view, secret = Tokens(services.registry).create(args.name, args.scopes, actor=args.actor or default_actor(services),
                                                    now=services.clock())
    emit(args, {**view.to_dict(), "token": secret}, lambda: secret)


def cmd_rotate(services: Services, args: argparse.Namespace) -> None:
    rotated = Tokens(services.registry).rotate(args.name, actor=args.actor or default_actor(services), now=services.clock())
    view, secret = rotated.issued
    emit(args, {**view.to_dict(), "token": secret, "revoked": rotated.revoked.to_dict()}, lambda: secret)


def cmd_revoke(services: Services, args: argparse.Namespace) -> None:
    view = Tokens(services.registry).revoke(args.name, actor=args.actor or default_actor(services), now=services.clock())
    emit(args, view.to_dict(), lambda: f"token {view.name} revoked")


def cmd_list(services: Services, args: argparse.Namespace) -> None:
    tokens = Tokens(services.registry).list()
    rows = [[t.name, t.prefix + "…", ",".join(t.scopes), t.created_by,
             f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never",
             f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"] for t in tokens]
    emit(args, {"tokens": [t.to_dict() for t in tokens]},
         lambda: textfmt.table(["name", "prefix", "scopes", "by", "last used", "state"], rows) if rows
         else "no tokens yet: modelbot token create --name ci --scopes read,versions:write")
