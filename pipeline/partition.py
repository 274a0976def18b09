"""Kafka's default partitioning (murmur2 of the key), with the hash cached per key.

aiokafka's murmur2 is pure Python (several microseconds a key) and the worker sends the
same key several times (a profile id on the graph-changes, updates and profiles
topics), so caching the hash per key saves most of that work.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import lru_cache

from aiokafka.partitioner import murmur2


@lru_cache(maxsize=1 << 16)
def _positive_hash(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


def cached_partitioner(
    key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
) -> int:
    """Same partition as aiokafka's DefaultPartitioner for every key."""
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[_positive_hash(key) % len(all_partitions)]
