"""Promotions with approvals, rollbacks and canaries: the one place each deployment rule lives."""

from bot.domain.deployments.service import REQUEST_KINDS, Deployments, parse_percent
from bot.domain.deployments.views import RequestOutcome, RequestView, VoteOutcome

__all__ = ["REQUEST_KINDS", "Deployments", "RequestOutcome", "RequestView", "VoteOutcome", "parse_percent"]
