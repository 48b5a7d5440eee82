"""Rollback: put back a version that served the environment before, in one step or through
`rollback_approvals`. Never a version new to the environment: that is a promotion."""

from __future__ import annotations

from bot.domain import names
from bot.domain.deployments.base import Attempt, DeploymentsBase
from bot.domain.deployments.views import RequestOutcome, RollbackPlan
from bot.domain.errors import Conflict
from bot.domain.refs import VersionRef
from bot.domain.registry import state_of
from storage.queries import registry as queries


class Rollbacks(DeploymentsBase):
    def plan_rollback(
        self, model: str, environment: str, *, actor: str, to: str | VersionRef | None = None
    ) -> RollbackPlan:
        """What a rollback would do now, without doing it (Slack's first tap shows this). A
        rollback that would be refused is refused here already, and recorded."""
        env = names.environment(environment, self.registry.environments)
        actor = names.actor(actor)
        roles = self.roles(actor)
        attempt = Attempt(actor, "rollback", env)
        with self.refusals(attempt), self.registry.reading() as session:
            row = self.registry.model_row(session, model)
            attempt.model_id = row.id
            self.require_deployer(roles, f"roll back {env}")
            dep = queries.deployment(session, row.id, env)  # type: ignore[arg-type]
            target = self.registry.rollback_target(session, row, dep, env, to)
            return RollbackPlan(state=state_of(session, row, env, dep), target=target)

    def rollback(
        self,
        model: str,
        environment: str,
        *,
        actor: str,
        to: str | VersionRef | None = None,
        reason: str | None = None,
        origin_channel: str | None = None,
        expected_stable: int | None = None,
    ) -> RequestOutcome:
        """Immediate for deployers (blue-green: the previous version is kept warm), unless the
        environment sets `rollback_approvals`; always announced. Gates do not apply: a rollback
        returns to a version this environment has already run. `expected_stable` is what the
        person saw when they asked (a stale confirmation must not act on a changed environment)."""
        env = names.environment(environment, self.registry.environments)
        actor = names.actor(actor)
        reason = names.text(reason, "reason")
        roles = self.roles(actor)
        attempt = Attempt(actor, "rollback", env)
        now = self.clock()
        with self.deciding_on(attempt, model, roles, deployers_only=f"roll back {env}") as it:
            row, dep = it.model, it.dep
            if expected_stable is not None and dep.stable_version != expected_stable:
                serving = f"v{dep.stable_version}" if dep.stable_version is not None else "nothing"
                raise Conflict(f"{row.name} {env} changed since you asked: it serves {serving} now, not "
                               f"v{expected_stable}. Run the rollback again to see what it would do.")
            target = self.registry.rollback_target(it.session, row, dep, env, to)
            attempt.version = target
            return self.move_or_ask(it, kind="rollback", version=target, roles=roles, reason=reason,
                                    override_reason=None, gates=[], now=now, origin_channel=origin_channel)
