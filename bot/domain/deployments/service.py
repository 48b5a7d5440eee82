"""The deployment rule book: every decision about what serves an environment, one method each.

    promotion.py  request_promotion
    votes.py      vote (approve, reject, override), check_override, cancel
    rollback.py   plan_rollback, rollback
    canary.py     set_canary (start, step), abort_canary, promote_canary
    expiry.py     expire_due (expired and moot requests)
    reads.py      get_request, list_requests, pending_for

Each takes the actor and returns an outcome, or raises a typed refusal (`Forbidden`,
`Conflict`) whose sentence says why; every decision and every refusal leaves one audit row.
Slack, the shell, the CLI and the REST API call these and nothing else.
"""

from __future__ import annotations

from bot.domain.deployments.canary import Canaries
from bot.domain.deployments.expiry import Expiry
from bot.domain.deployments.promotion import Promotions
from bot.domain.deployments.reads import Reads
from bot.domain.deployments.rollback import Rollbacks
from bot.domain.deployments.votes import Votes


class Deployments(Promotions, Votes, Rollbacks, Canaries, Expiry, Reads):
    """Policy-aware changes to what serves: built once per process by `bot.services`."""
