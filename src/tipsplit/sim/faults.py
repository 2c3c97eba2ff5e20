"""Injected faults: what the network and Blink do to a client on a bad day.

A rule names a GraphQL root field (or "*") and optionally the recipient it
applies to, so a test can make one tip recipient fail once and then recover.
Draws come from their own seeded RNG, so adding faults never changes ledger ids.
"""

import random
from dataclasses import dataclass, field

ANY_OPERATION = "*"


@dataclass
class FaultRule:
    """One configured fault; `remaining` counts down each time it fires (None = forever)."""

    operation: str
    latency_ms: int = 0
    error_rate: float = 0.0
    error_status: int = 503
    lose_answer: bool = False
    lose_answer_delay_ms: int = 0
    pending: bool = False
    resolve_after_ms: int = 1000
    failure: bool = False
    wallet_id: str | None = None
    username: str | None = None
    remaining: int | None = None
    fired: int = 0
    id: str = ""

    def __post_init__(self) -> None:
        if not self.operation:
            raise ValueError("operation is required (a GraphQL root field name or '*')")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("errorRate must be between 0 and 1")
        if not 500 <= self.error_status <= 599:
            raise ValueError("errorStatus must be a 5xx status")
        if min(self.latency_ms, self.lose_answer_delay_ms, self.resolve_after_ms) < 0:
            raise ValueError("delays must not be negative")
        if self.remaining is not None and self.remaining < 1:
            raise ValueError("count must be at least 1")


@dataclass(frozen=True)
class Target:
    """Who an operation is aimed at: the recipient of a payment, the owner of a wallet, a username."""

    wallet_ids: frozenset[str] = frozenset()
    username: str | None = None


@dataclass
class FaultPlan:
    """The merged effect of every rule that fired for one operation."""

    latency_ms: int = 0
    error_status: int | None = None
    lose_answer: bool = False
    lose_answer_delay_ms: int = 0
    pending: bool = False
    resolve_after_ms: int = 0
    failure: bool = False
    fired: list[str] = field(default_factory=list)


class FaultBook:
    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(f"faults:{seed}")
        self._rules: dict[str, FaultRule] = {}
        self._next_id = 1

    def add(self, rule: FaultRule) -> FaultRule:
        """Register a rule and give it an id that DELETE /sim/faults/{id} can use."""
        rule.id = f"fault-{self._next_id}"
        self._next_id += 1
        self._rules[rule.id] = rule
        return rule

    def remove(self, rule_id: str) -> bool:
        return self._rules.pop(rule_id, None) is not None

    def clear(self) -> int:
        count = len(self._rules)
        self._rules.clear()
        return count

    def rules(self) -> list[FaultRule]:
        return list(self._rules.values())

    def plan(self, operation: str, target: Target) -> FaultPlan:
        """Decide which rules fire for this call and use up their counts."""
        plan = FaultPlan()
        for rule in self._rules.values():
            if not self._matches(rule, operation, target):
                continue
            if rule.error_rate and self._rng.random() >= rule.error_rate:
                continue
            rule.fired += 1
            if rule.remaining is not None:
                rule.remaining -= 1
            plan.fired.append(rule.id)
            plan.latency_ms += rule.latency_ms
            if rule.error_rate:
                plan.error_status = plan.error_status or rule.error_status
            if rule.lose_answer:
                plan.lose_answer = True
                plan.lose_answer_delay_ms = max(plan.lose_answer_delay_ms, rule.lose_answer_delay_ms)
            plan.failure = plan.failure or rule.failure
            if rule.pending:
                plan.pending = True
                plan.resolve_after_ms = max(plan.resolve_after_ms, rule.resolve_after_ms)
        return plan

    @staticmethod
    def _matches(rule: FaultRule, operation: str, target: Target) -> bool:
        if rule.remaining == 0:
            return False
        if rule.operation not in (ANY_OPERATION, operation):
            return False
        if rule.wallet_id is not None and rule.wallet_id not in target.wallet_ids:
            return False
        if rule.username is not None and (target.username or "").lower() != rule.username.lower():
            return False
        return True
