"""Promotions with approvals, rollbacks and canaries: the one place each deployment rule lives."""

from bot.domain.deployments.rules import REQUEST_KINDS, CanaryRunning, parse_percent
from bot.domain.deployments.service import Deployments
from bot.domain.deployments.views import CanaryOutcome, RequestOutcome, RequestView, RollbackPlan, VoteOutcome

__all__ = ["REQUEST_KINDS", "CanaryOutcome", "CanaryRunning", "Deployments", "RequestOutcome", "RequestView",
           "RollbackPlan", "VoteOutcome", "parse_percent"]
