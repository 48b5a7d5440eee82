"""The deployment rules that need no database: who may approve, when an override is allowed,
when a request has become moot, and the sentences that say why not.

Every door (Slack, shell, CLI, REST) meets these through the decisions in this package, so a
refusal reads the same wherever it is met.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain import names
from bot.domain.errors import Conflict, Forbidden, InvalidInput
from bot.domain.gates import GateResult
from bot.domain.policy import EnvironmentPolicy, Roles

# promote / rollback / canary_promote move the stable pointer; canary_start starts a canary
REQUEST_KINDS = ("promote", "rollback", "canary_promote", "canary_start")


class CanaryRunning(Conflict):
    """A promotion meets a running canary. Slack offers "abort it and promote" on this refusal."""

    def __init__(self, model: str, environment: str, version: int, weight: int) -> None:
        super().__init__(f"A canary of v{version} runs at {weight} % in {environment}: promote or abort it first.")
        self.model, self.environment, self.version, self.weight = model, environment, version, weight


def require_deployer(roles: Roles, deployers: str, what: str) -> None:
    if not roles.deployer:
        raise Forbidden(f"You may not {what}: only deployers ({deployers}) and admins may.")


def approval_refusal(roles: Roles, env_policy: EnvironmentPolicy, requester: str, number: int) -> str | None:
    """Why this person may not approve or reject request `number`; None if they may."""
    if not roles.may_approve(env_policy.name):
        return (f"You are not an approver for {env_policy.name}: approvers are {env_policy.approvers.describe()}. "
                f"Nothing changed on request {number}.")
    if roles.actor == requester and not env_policy.allow_self_approval:
        return (f"You requested this change, so you cannot approve it yourself (four-eyes rule for "
                f"{env_policy.name}).")
    return None


def check_override(roles: Roles, number: int, gates: Sequence[GateResult], override_by: str | None) -> None:
    """An admin's override of a failing gate belongs to the request and is given once."""
    if override_by is not None:
        raise Conflict(f"The failing gate of request #{number} was already overridden by {override_by}: approve "
                       "it without an override.")
    if all(g.passed for g in gates):
        raise Conflict(f"Every gate of request #{number} passes: approve it normally, no override is needed.")
    if not roles.admin:
        raise Forbidden("Only an admin may override a failing gate.")


def check_gates_for_approval(gates: Sequence[GateResult], overridden: bool) -> None:
    """A failing gate blocks every plain approval until an admin overrides it."""
    if overridden or all(g.passed for g in gates):
        return
    raise Conflict(f"A gate fails, so this cannot be approved: {failing(gates)}. An admin may override with a "
                   "written reason.")


def check_gates_for_change(roles: Roles, gates: Sequence[GateResult], override_reason: str | None) -> bool:
    """A change that needs no approvals still obeys the gates, unless an admin overrides them with a
    reason. True when the change goes ahead on an override."""
    if all(g.passed for g in gates):
        return False
    if not override_reason:
        raise Conflict(f"A gate fails: {failing(gates)}. Fix the candidate, or an admin may override with a reason.")
    if not roles.admin:
        raise Forbidden(f"A gate fails ({failing(gates)}) and only an admin may override it.")
    return True


def moot_reason(kind: str, version: int, environment: str, stable: int | None, canary: int | None) -> str | None:
    """Why a pending request can no longer do anything (it would change nothing); None if it still can."""
    if version == stable:
        return f"v{version} already serves {environment}"
    if kind == "canary_promote" and canary != version:
        return f"the canary of v{version} no longer runs in {environment}"
    if kind == "canary_start" and canary == version:
        return f"a canary of v{version} already runs in {environment}"
    return None


def failing(gates: Sequence[GateResult]) -> str:
    return "; ".join(gate_text(g) for g in gates if not g.passed)


def gate_text(result: GateResult) -> str:
    if result.note:
        return f"{result.gate} ({result.note})"
    return f"{result.gate} ({result.left:.6g} vs {result.right:.6g})"


def with_override(reason: str | None, override: str | None) -> str | None:
    """The reason recorded on a move that went ahead on an override."""
    if not override:
        return reason
    return f"{reason + ' — ' if reason else ''}gate override: {override}"


def parse_percent(raw: int | str) -> int:
    text = str(raw).strip().rstrip("%").strip()
    try:
        value = int(text)
    except ValueError:
        raise InvalidInput(f"'{names.preview(str(raw))}' is not a percentage: write a whole number from 1 to 99, "
                           "like 5 or 25.") from None
    if value == 0:
        raise InvalidInput("A canary at 0 % takes no traffic: use `canary abort` to stop it.")
    if value == 100:
        raise InvalidInput("A canary at 100 % is a promotion: use `canary promote` (it follows the approval policy).")
    if not 1 <= value <= 99:
        raise InvalidInput(f"A canary takes between 1 and 99 % of traffic, not {value}.")
    return value


def request_number(raw: int | str) -> int:
    text = str(raw).strip().lstrip("#")
    if not text.isdigit() or len(text) > 12:
        raise InvalidInput(f"'{names.preview(str(raw))}' is not a request id: use the number shown on the card, "
                           "like 42.")
    return int(text)
