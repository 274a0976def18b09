"""Kafka's default partitioning (murmur2 of the key), with the hash cached per key.

The worker sends the same key several times (a profile id on the graph-changes, updates
and profiles topics), so the hash is cached per key; a new visitor's keys still miss.
``murmur2`` is the Java client's (``Utils.murmur2``) in fewer Python operations than
aiokafka's: the key's 32-bit words unpacked at once, masks only where a shift needs
them; 2.5-3 us a 32-byte key against aiokafka's 6-7.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence
from functools import cache, lru_cache

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


@cache
def _words(count: int) -> Callable[[bytes], tuple[int, ...]]:
    """Unpacks the first ``count`` little-endian 32-bit words of a key."""
    return struct.Struct(f"<{count}I").unpack_from


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (seed 0x9747b28c) of ``data``, unsigned 32 bits."""
    length = len(data)
    h = 0x9747B28C ^ length
    for k in _words(length >> 2)(data):
        k = (k * _M) & _MASK
        h = ((h * _M) ^ ((k ^ (k >> 24)) * _M)) & _MASK
    if length & 3:  # the last 1-3 bytes, little-endian, as the Java switch falls through
        h = ((h ^ int.from_bytes(data[length & ~3 :], "little")) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


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
