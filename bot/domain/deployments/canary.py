"""Canaries: a version beside the stable one, taking a share of traffic that people step up,
then promote (through `approvals`) or abort.

Starting one obeys what a promotion obeys — the version is ready, has served the environment
the policy `requires`, passes the gates (or an admin overrides them) — and needs
`canary_approvals` approvals when the environment asks for them. Stepping needs a deployer.
"""

from __future__ import annotations

from bot.domain import names
from bot.domain.deployments import rules
from bot.domain.deployments.base import Attempt, DeploymentsBase
from bot.domain.deployments.views import CanaryOutcome, RequestOutcome, RequestView
from bot.domain.entities import EnvironmentState
from bot.domain.errors import Conflict
from bot.domain.refs import VersionRef
from storage.queries import registry as queries


class Canaries(DeploymentsBase):
    def set_canary(
        self,
        model: str,
        ref: str | VersionRef | None,
        environment: str,
        percent: int | str,
        *,
        actor: str,
        reason: str | None = None,
        override_reason: str | None = None,
        origin_channel: str | None = None,
        expected_canary: int | None = None,
    ) -> CanaryOutcome:
        """Start a canary of `ref` beside the stable version, or move the running one's weight
        (`ref` None or the running version) to `percent` (1–99)."""
        env = names.environment(environment, self.registry.environments)
        actor = names.actor(actor)
        weight = rules.parse_percent(percent)
        reason = names.text(reason, "reason")
        override_reason = names.text(override_reason, "override reason")
        roles = self.roles(actor)
        attempt = Attempt(actor, "canary_start" if ref is not None else "canary_weight", env, weight=weight)
        now = self.clock()
        with self.deciding_on(attempt, model, roles, deployers_only=None, ref=ref) as it:
            session, row, pending, dep, target = it.session, it.model, it.pending, it.dep, it.target
            running = dep.canary_version
            stepping = target is None or target.version == running
            if stepping:  # naming the running canary's version steps it too (the CLI always names it)
                attempt.action, attempt.version = "canary_weight", running
            self.require_deployer(roles, f"run canaries in {env}")
            self.check_canary_card(row, dep, expected_canary)
            if stepping:
                if running is None:
                    raise Conflict(f"No canary is running for {row.name} in {env}.")
                if dep.canary_weight == weight:
                    raise Conflict(f"The canary of {row.name} in {env} already takes {weight} %.")
                state = self.set_canary_weight(session, row, dep, pending, running, weight, actor=actor, reason=reason,
                                               now=now)
                return CanaryOutcome(state=state)
            if running is not None:
                raise rules.CanaryRunning(row.name, env, running, dep.canary_weight)
            if dep.stable_version is None:
                raise Conflict(f"Nothing serves {env} yet, so there is no stable version to run a canary beside: "
                               "promote a version first.")
            env_policy = self.policy.env(env)
            self.check_target(session, row, target.version, target.status, dep, env_policy)
            gates = self.gates(session, row, target.version, dep, env_policy, kind="canary_start")
            decided = self.ask_or_go(it, kind="canary_start", version=target.version, roles=roles, reason=reason,
                                     override_reason=override_reason, gates=gates, now=now,
                                     origin_channel=origin_channel, weight=weight)
            if isinstance(decided, RequestView):
                return CanaryOutcome(request=decided)
            return CanaryOutcome(state=self.set_canary_weight(session, row, dep, pending, target.version, weight,
                                                              actor=actor, reason=decided, now=now))

    def abort_canary(
        self, model: str, environment: str, *, actor: str, reason: str | None = None,
        expected_canary: int | None = None,
    ) -> EnvironmentState:
        """Weight 0: the stable version takes all traffic. Deployers, or modelbot itself when an
        alert rule aborts a failing canary."""
        env = names.environment(environment, self.registry.environments)
        actor = names.actor(actor)
        reason = names.text(reason, "reason")
        roles = self.roles(actor)
        attempt = Attempt(actor, "canary_abort", env, weight=0)
        now = self.clock()
        with self.deciding_on(attempt, model, roles, deployers_only=f"abort canaries in {env}") as it:
            self.check_canary_card(it.model, it.dep, expected_canary)
            if it.dep.canary_version is None:
                raise Conflict(f"No canary is running for {it.model.name} in {env}.")
            attempt.version = it.dep.canary_version
            return self.end_canary(it.session, it.model, it.dep, it.pending, actor=actor, reason=reason, now=now)

    def promote_canary(
        self, model: str, environment: str, *, actor: str, reason: str | None = None,
        origin_channel: str | None = None, expected_canary: int | None = None,
    ) -> RequestOutcome:
        """100 %: the canary becomes the stable version, through the environment's `approvals`."""
        env = names.environment(environment, self.registry.environments)
        actor = names.actor(actor)
        reason = names.text(reason, "reason")
        roles = self.roles(actor)
        attempt = Attempt(actor, "canary_promote", env)
        now = self.clock()
        with self.deciding_on(attempt, model, roles, deployers_only=f"promote canaries in {env}") as it:
            row, dep = it.model, it.dep
            self.check_canary_card(row, dep, expected_canary)
            if dep.canary_version is None:
                raise Conflict(f"No canary is running for {row.name} in {env}: start one first.")
            attempt.version = dep.canary_version
            target = queries.version(it.session, row.id, dep.canary_version)  # type: ignore[arg-type]
            assert target is not None
            env_policy = self.policy.env(env)
            self.check_target(it.session, row, target.version, target.status, dep, env_policy)
            gates = self.gates(it.session, row, target.version, dep, env_policy, kind="canary_promote")
            return self.move_or_ask(it, kind="canary_promote", version=target.version, roles=roles, reason=reason,
                                    override_reason=None, gates=gates, now=now, origin_channel=origin_channel)

    def next_canary_step(self, weight: int, environment: str) -> int | None:
        for step in self.policy.env(environment).canary_steps:
            if step > weight:
                return step
        return None
