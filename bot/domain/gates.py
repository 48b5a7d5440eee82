"""Promotion gates: small arithmetic comparisons over a candidate's metrics.

    auc >= current.auc - 0.005
    latency_p95_ms <= 250

A bare NAME is the candidate's metric; `current.NAME` is the metric of the version serving
the environment now. Parsed once (a bad gate stops start-up); evaluated without `eval`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.domain.errors import InvalidInput

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt,
}
_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_.:/-]*)"
                    r"|(?P<op><=|>=|==|!=|<|>)|(?P<sign>[-+]))")
SCOPES = ("current", "candidate")


@dataclass(frozen=True)
class Term:
    sign: int
    number: float | None = None
    scope: str = "candidate"
    metric: str | None = None


@dataclass(frozen=True)
class Gate:
    text: str
    left: tuple[Term, ...]
    op: str
    right: tuple[Term, ...]

    def metrics(self) -> set[tuple[str, str]]:
        return {(t.scope, t.metric) for t in (*self.left, *self.right) if t.metric}


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    left: float | None
    right: float | None
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"gate": self.gate, "passed": self.passed, "left": self.left, "right": self.right, "note": self.note}


def parse_gate(text: str) -> Gate:
    tokens: list[tuple[str, str]] = []
    position = 0
    source = text.strip()
    while position < len(source):
        match = _TOKEN.match(source, position)
        if not match or match.end() == position:
            raise InvalidInput(f"Gate '{text}': cannot read '{source[position:position + 10]}'; write for example "
                               "\"auc >= current.auc - 0.005\".")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    ops = [i for i, (kind, _) in enumerate(tokens) if kind == "op"]
    if len(ops) != 1:
        raise InvalidInput(f"Gate '{text}' needs exactly one comparison (<, <=, >, >=, ==, !=).")
    index = ops[0]
    return Gate(text=source, left=_terms(tokens[:index], text), op=tokens[index][1], right=_terms(tokens[index + 1:], text))


def _terms(tokens: list[tuple[str, str]], text: str) -> tuple[Term, ...]:
    terms: list[Term] = []
    sign = 1
    expect_value = True
    for kind, value in tokens:
        if kind == "sign":
            if not expect_value and terms:
                sign = -1 if value == "-" else 1
                expect_value = True
                continue
            if expect_value:
                sign = -sign if value == "-" else sign
                continue
        if not expect_value:
            raise InvalidInput(f"Gate '{text}': '{value}' needs a + or - before it.")
        if kind == "num":
            terms.append(Term(sign=sign, number=float(value)))
        else:
            scope, _, metric = value.partition(".")
            if metric and scope in SCOPES:
                terms.append(Term(sign=sign, scope=scope, metric=metric))
            else:
                terms.append(Term(sign=sign, metric=value))
        sign = 1
        expect_value = False
    if expect_value:
        raise InvalidInput(f"Gate '{text}': a side of the comparison is empty or ends with + or -.")
    return tuple(terms)


def evaluate(gate: Gate, candidate: Mapping[str, float], current: Mapping[str, float] | None) -> GateResult:
    """`current` is None when nothing serves the environment yet: gates that need it are skipped."""
    sides: list[float] = []
    for side in (gate.left, gate.right):
        total = 0.0
        for term in side:
            if term.number is not None:
                total += term.sign * term.number
                continue
            assert term.metric is not None
            if term.scope == "current":
                if current is None:
                    return GateResult(gate.text, True, None, None, "skipped: nothing serves yet")
                source = current
            else:
                source = candidate
            if term.metric not in source:
                who = "the serving version" if term.scope == "current" else "the candidate"
                return GateResult(gate.text, False, None, None, f"{term.metric} missing on {who}")
            total += term.sign * float(source[term.metric])
        sides.append(total)
    left, right = sides
    if not (math.isfinite(left) and math.isfinite(right)):
        return GateResult(gate.text, False, left, right, "not a finite number")
    return GateResult(gate.text, OPERATORS[gate.op](left, right), left, right)
