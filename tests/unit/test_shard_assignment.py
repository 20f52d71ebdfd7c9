"""Shard parsing and the stable sha256 assignment of KPIs to shards."""

from __future__ import annotations

import pytest
from support.sharding import NAMES, sha_owner

from exporter.runtime.sharding import Shard


def test_shard_parse_and_stable_assignment() -> None:
    assert Shard.parse("1/3") == Shard(1, 3)
    for bad in ("3/3", "1", "a/b", "-1/3", "0/0"):
        with pytest.raises(ValueError):
            Shard.parse(bad)
    # the hash is a property of the name alone: fixed values, whatever the process
    owners = [next(i for i in range(3) if Shard(i, 3).owns(n)) for n in NAMES]
    assert owners == [sha_owner(n, 3) for n in NAMES]
    assert all(sum(Shard(i, 3).owns(n) for i in range(3)) == 1 for n in NAMES)
