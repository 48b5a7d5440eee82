"""Canary splitting without a mesh: which side a request key falls on at a given weight.

    bucket = int.from_bytes(blake2b(salt + key, digest_size=8).digest(), "big") % 10_000
    canary  ⇔  bucket < weight × 100          (weight in percent, 0–100)
    salt    = f"{model}/{environment}/v{canary_version}/"

The same key lands on the same side for as long as the weight and the canary hold, on every
replica and in any language that has BLAKE2b. Raising the weight only moves keys towards
the canary (a key on the canary at 5 % is still there at 25 %). A new canary version draws a
fresh sample of keys, so the same users are not always the first to get a new model.
"""

from __future__ import annotations

import hashlib

BUCKETS = 10_000


def bucket(key: str | bytes, salt: str) -> int:
    """The key's place in [0, 10 000)."""
    data = key.encode("utf-8") if isinstance(key, str) else key
    digest = hashlib.blake2b(salt.encode("utf-8") + data, digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def on_canary(key: str | bytes, weight: int, salt: str) -> bool:
    """True when `key` goes to the canary at `weight` percent."""
    if weight <= 0:
        return False
    if weight >= 100:
        return True
    return bucket(key, salt) < weight * (BUCKETS // 100)


def salt_for(model: str, environment: str, canary_version: int) -> str:
    return f"{model}/{environment}/v{canary_version}/"
