"""Promotion: make a version the stable one of an environment, at once or through approvals."""

from __future__ import annotations

from bot.domain import names
from bot.domain.deployments import rules
from bot.domain.deployments.base import Attempt, DeploymentsBase
from bot.domain.deployments.views import RequestOutcome
from bot.domain.refs import VersionRef


class Promotions(DeploymentsBase):
    def request_promotion(
        self,
        model: str,
        ref: str | VersionRef,
        environment: str,
        *,
        requester: str,
        reason: str | None = None,
        origin_channel: str | None = None,
        override_reason: str | None = None,
        abort_canary: bool = False,
        expected_canary: int | None = None,
    ) -> RequestOutcome:
        """Deployers promote; the environment's policy says whether approvals are needed.

        A running canary is never dropped silently: the promotion is refused, unless the
        requester asks to abort the canary first (`abort_canary`), which is audited;
        `expected_canary` is the canary they saw (a stale button must not abort another one).
        """
        env = names.environment(environment, self.registry.environments)
        requester = names.actor(requester)
        reason = names.text(reason, "reason")
        override_reason = names.text(override_reason, "override reason")
        roles = self.roles(requester)
        attempt = Attempt(requester, "promote", env)
        now = self.clock()
        with self.deciding_on(attempt, model, roles, deployers_only=f"request a promotion to {env}", ref=ref) as it:
            target, dep = it.target, it.dep
            assert target is not None
            env_policy = self.policy.env(env)
            self.check_target(it.session, it.model, target.version, target.status, dep, env_policy)
            self.check_canary_card(it.model, dep, expected_canary)
            if dep.canary_version is not None:
                if not abort_canary:
                    raise rules.CanaryRunning(it.model.name, env, dep.canary_version, dep.canary_weight)
                self.end_canary(it.session, it.model, dep, it.pending, actor=requester, now=now,
                                reason=f"aborted to promote v{target.version}")
            gates = self.gates(it.session, it.model, target.version, dep, env_policy, kind="promote")
            return self.move_or_ask(it, kind="promote", version=target.version, roles=roles, reason=reason,
                                    override_reason=override_reason, gates=gates, now=now,
                                    origin_channel=origin_channel)
