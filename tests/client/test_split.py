"""Canary splitting: deterministic per key, and the shares match the weight (a property test)."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from modelbot_client import Snapshot, bucket, on_canary, salt_for

KEYS = [f"user-{i}" for i in range(100_000)]


def snapshot(weight: int, canary: int | None = 8) -> Snapshot:
    return Snapshot(model="churn", environment="production", stable=7, stable_artifact_uri="s3://m/7", previous=6,
                    previous_artifact_uri="s3://m/6", canary=canary,
                    canary_artifact_uri=f"s3://m/{canary}" if canary else None, canary_weight=weight,
                    revision=12, updated_at=None)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(weight=st.integers(min_value=0, max_value=100), salt=st.text(min_size=1, max_size=30))
def test_the_canary_share_over_100k_keys_is_within_one_percent_of_the_weight(weight: int, salt: str) -> None:
    share = sum(on_canary(key, weight, salt) for key in KEYS) / len(KEYS)
    assert abs(share - weight / 100) <= 0.01


@settings(max_examples=50, deadline=None, derandomize=True)
@given(key=st.one_of(st.text(max_size=200), st.binary(max_size=200)), weight=st.integers(min_value=0, max_value=100))
def test_the_same_key_lands_on_the_same_side_while_the_weight_holds(key: str | bytes, weight: int) -> None:
    state = snapshot(weight)
    first = state.choose(key)
    assert all(state.choose(key) == first for _ in range(3))
    assert snapshot(weight).choose(key) == first  # another replica, another object: the same answer
    assert first.side == ("canary" if on_canary(key, weight, salt_for("churn", "production", 8)) else "stable")
    assert (first.version, first.artifact_uri) == ((8, "s3://m/8") if first.side == "canary" else (7, "s3://m/7"))


def test_raising_the_weight_only_moves_keys_to_the_canary() -> None:
    salt = salt_for("churn", "production", 8)
    before = {k for k in KEYS[:20_000] if on_canary(k, 5, salt)}
    after = {k for k in KEYS[:20_000] if on_canary(k, 25, salt)}
    assert before < after


def test_the_bucket_is_the_documented_formula() -> None:
    """What another language must compute to split the same way."""
    salt = salt_for("churn", "production", 8)
    assert salt == "churn/production/v8/"
    digest = hashlib.blake2b(b"churn/production/v8/" + b"user-42", digest_size=8).digest()
    assert bucket("user-42", salt) == int.from_bytes(digest, "big") % 10_000


def test_no_canary_means_stable_and_weights_at_the_ends_are_exact() -> None:
    assert {snapshot(50, canary=None).choose(k).side for k in KEYS[:1000]} == {"stable"}
    assert {snapshot(0).choose(k).side for k in KEYS[:1000]} == {"stable"}
    assert {snapshot(100).choose(k).side for k in KEYS[:1000]} == {"canary"}
