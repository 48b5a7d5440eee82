"""`modelbot promote|rollback|request-promotion|requests|approve|reject|cancel|canary…`: deployments for CI/CD.

Same rules as the Slack buttons: the domain decides; these print. `request-promotion` prints
the request id alone, so a pipeline can `ID=$(modelbot request-promotion …)`.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from bot.blocks import textfmt
from bot.cli.common import AddCommand, emit, slack_groups
from bot.domain.errors import Conflict

if TYPE_CHECKING:
    from bot.services import Services


def cmd_promote(services: Services, args: argparse.Namespace) -> None:
    """Obeys the environment's approval policy: moves at once, or opens a request."""
    slack_groups(services)
    _print_outcome(args, _request_promotion(services, args))


def _request_promotion(services: Services, args: argparse.Namespace) -> Any:
    return services.deployments.request_promotion(
        args.model, args.ref, args.env, requester=args.actor, reason=args.reason,
        override_reason=args.override_reason, abort_canary=args.abort_canary,
    )


def cmd_rollback(services: Services, args: argparse.Namespace) -> None:
    slack_groups(services)
    outcome = services.deployments.rollback(args.model, args.env, actor=args.actor, to=args.to, reason=args.reason)
    _print_outcome(args, outcome)


def _print_outcome(args: argparse.Namespace, outcome: Any) -> None:
    """A move, or the request that now waits for approvals (a RequestOutcome or CanaryOutcome)."""
    move = getattr(outcome, "move", None)
    if move is not None:
        before = f"v{move.audit.from_version}" if move.audit.from_version else "nothing"
        verb = "rolled back" if move.audit.action == "rollback" else "promoted"
        emit(args, {"state": move.state.to_dict(), "audit": move.audit.to_dict(), "request": None},
              lambda: f"{move.state.model} {move.state.environment} {verb}: {before} → v{move.audit.to_version}")
        return
    request = outcome.request
    emit(args, {"state": None, "audit": None, "request": request.to_dict()},
          lambda: f"request {request.id}: {request.model} v{request.version} to {request.environment} needs "
          f"{request.approvals_needed} approval(s); it expires {request.expires_at:%Y-%m-%d %H:%M} UTC")


def cmd_cancel(services: Services, args: argparse.Namespace) -> None:
    slack_groups(services)
    view = services.deployments.cancel(args.request, args.actor, reason=args.reason)
    emit(args, {"request": view.to_dict()}, lambda: f"request {view.id} {view.status}")


def cmd_request_promotion(services: Services, args: argparse.Namespace) -> None:
    slack_groups(services)
    _print_request_id_or_outcome(args, _request_promotion(services, args))


def _print_request_id_or_outcome(args: argparse.Namespace, outcome: Any) -> None:
    """A pipeline's `ID=$(modelbot …)` gets the request id alone."""
    if outcome.request is not None and not args.json:
        print(outcome.request.id)
        return
    _print_outcome(args, outcome)


def cmd_requests(services: Services, args: argparse.Namespace) -> None:
    views = services.deployments.list_requests(pending_only=args.pending, model=args.model, limit=args.limit)
    rows = [[v.id, v.model, f"v{v.version}", v.environment, v.kind, v.status,
             f"{len(v.approvals)}/{v.approvals_needed}", v.requester, "pass" if v.gates_pass else "FAIL",
             v.expires_at.strftime("%Y-%m-%d %H:%M")] for v in views]
    emit(args, {"requests": [v.to_dict() for v in views]},
          lambda: textfmt.table(["id", "model", "version", "env", "kind", "status", "approvals", "requester",
                                 "gates", "expires (UTC)"], rows)
          if rows else ("no pending requests" if args.pending else "no requests"))


def cmd_approve(services: Services, args: argparse.Namespace) -> None:
    slack_groups(services)
    _print_vote(args, services.deployments.vote(args.request, args.actor, "approve",
                                                override_reason=args.override_reason))


def cmd_reject(services: Services, args: argparse.Namespace) -> None:
    slack_groups(services)
    _print_vote(args, services.deployments.vote(args.request, args.actor, "reject", reason=args.reason))


def _print_vote(args: argparse.Namespace, outcome: Any) -> None:
    """`duplicate` succeeds (the vote stands: a retried CI step is fine); a request that was
    already decided or has expired exits 2, because this vote did not count."""
    r = outcome.request
    if outcome.result == "already_decided":
        raise Conflict(" ".join(outcome.notes) or f"Request {r.id} is already {r.status}; nothing changed.")
    move = outcome.move
    texts = {
        "approved": lambda: f"request {r.id} approved: {r.model} {r.environment} v{move.audit.from_version or '–'} "
                            f"→ v{move.audit.to_version}" if move else f"request {r.id} approved",
        "rejected": lambda: f"request {r.id} rejected",
        "counted": lambda: f"request {r.id}: approval recorded, {len(r.approvals)} of {r.approvals_needed}",
        "duplicate": lambda: f"request {r.id}: " + (" ".join(outcome.notes) or "you already voted"),
    }
    emit(args, {"result": outcome.result, "notes": outcome.notes, "request": r.to_dict(),
                 "state": move.state.to_dict() if move else None, "audit": move.audit.to_dict() if move else None},
          texts[outcome.result])


def cmd_canary(services: Services, args: argparse.Namespace) -> None:
    """Starts a canary (through `canary_approvals` where the policy asks: prints the request id then)."""
    slack_groups(services)
    outcome = services.deployments.set_canary(args.model, args.ref, args.env, args.percent, actor=args.actor,
                                              reason=args.reason, override_reason=args.override_reason)
    if outcome.request is not None:
        _print_request_id_or_outcome(args, outcome)
        return
    _print_canary(args, outcome.state)


def cmd_canary_abort(services: Services, args: argparse.Namespace) -> None:
    slack_groups(services)
    _print_canary(args, services.deployments.abort_canary(args.model, args.env, actor=args.actor, reason=args.reason))


def cmd_canary_promote(services: Services, args: argparse.Namespace) -> None:
    """100 % is a promotion of the running canary, through the approval policy."""
    slack_groups(services)
    outcome = services.deployments.promote_canary(args.model, args.env, actor=args.actor, reason=args.reason)
    _print_request_id_or_outcome(args, outcome)


def _print_canary(args: argparse.Namespace, state: Any) -> None:
    def text() -> str:
        if state.canary is None:
            return f"{state.model} {state.environment}: no canary; stable v{state.stable} takes 100 %"
        return (f"{state.model} {state.environment}: canary v{state.canary} at {state.canary_weight} % beside "
                f"stable v{state.stable}")

    emit(args, state.to_dict(), text)


def add_commands(command: AddCommand, sub: Any) -> None:
    p = command("promote", cmd_promote, "make a version the stable one of an environment")
    _promotion_arguments(p)

    p = command("rollback", cmd_rollback, "put the previous stable version (or --to REF) back")
    p.add_argument("model")
    p.add_argument("env")
    p.add_argument("--to", metavar="REF")
    p.add_argument("--actor", required=True, metavar="NAME")
    p.add_argument("--reason", metavar="TEXT")

    p = command("request-promotion", cmd_request_promotion,
                "ask for a promotion under the approval policy (prints the request id; moves at once when "
                "the environment needs no approvals)")
    _promotion_arguments(p)

    p = command("requests", cmd_requests, "promotion requests, newest first")
    p.add_argument("--pending", action="store_true", help="only those still waiting for approvals")
    p.add_argument("--model", metavar="MODEL")
    p.add_argument("--limit", type=int, default=50)

    p = command("approve", cmd_approve, "approve a request (same rules as the Approve button)")
    p.add_argument("request", metavar="REQUEST")
    p.add_argument("--actor", required=True, metavar="NAME")
    p.add_argument("--override-reason", metavar="TEXT", help="admins: why a failing gate may be overridden")

    p = command("reject", cmd_reject, "reject a request (same rules as the Reject button)")
    p.add_argument("request", metavar="REQUEST")
    p.add_argument("--actor", required=True, metavar="NAME")
    p.add_argument("--reason", required=True, metavar="TEXT", help="the requester reads this")

    p = command("cancel", cmd_cancel, "withdraw a pending request (its requester, or an admin)")
    p.add_argument("request", metavar="REQUEST")
    p.add_argument("--actor", required=True, metavar="NAME")
    p.add_argument("--reason", metavar="TEXT")

    p = command("canary", cmd_canary, "start a canary beside the stable version, or move its weight (1–99 %%)")
    p.add_argument("model")
    p.add_argument("ref")
    p.add_argument("env")
    p.add_argument("percent")
    p.add_argument("--actor", required=True, metavar="NAME")
    p.add_argument("--reason", metavar="TEXT")
    p.add_argument("--override-reason", metavar="TEXT", help="admins: why a failing gate may be overridden")

    p = command("canary-abort", cmd_canary_abort, "stop the canary: weight 0, the stable version takes all traffic")
    p.add_argument("model")
    p.add_argument("env")
    p.add_argument("--actor", required=True, metavar="NAME")
    p.add_argument("--reason", metavar="TEXT")

    p = command("canary-promote", cmd_canary_promote,
                "make the canary the stable version (through the approval policy; prints a request id)")
    p.add_argument("model")
    p.add_argument("env")
    p.add_argument("--actor", required=True, metavar="NAME")
    p.add_argument("--reason", metavar="TEXT")


def _promotion_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    p.add_argument("ref")
    p.add_argument("env")
    p.add_argument("--actor", required=True, metavar="NAME")
    p.add_argument("--reason", metavar="TEXT")
    p.add_argument("--abort-canary", action="store_true",
                   help="abort a canary running in ENV first (otherwise the promotion is refused)")
    p.add_argument("--override-reason", metavar="TEXT", help="admins: why a failing gate may be overridden")
