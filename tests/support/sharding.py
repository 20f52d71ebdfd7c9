"""KPI names and an independent sha256 reference for the shard assignment tests."""

from __future__ import annotations

import hashlib

NAMES = [f"shard_kpi_{i:02d}" for i in range(15)]


def sha_owner(name: str, count: int) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:16], 16) % count
