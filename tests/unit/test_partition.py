"""pipeline/partition.py's murmur2 is the Java client's: known vectors, and aiokafka's
reference implementation over random keys of every length up to 100 bytes."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from pipeline.partition import cached_partitioner, murmur2

# Kafka's UtilsTest.testMurmur2 (Java's signed ints).
JAVA_HASHES = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}
# The Java producer's partition of each key among 1,000 partitions.
JAVA_PARTITIONS = {b"": 681, b"a": 524, b"ab": 434, b"abc": 107, b"123456789": 566, b"\x00 ": 742}


@pytest.mark.parametrize(("key", "expected"), JAVA_HASHES.items())
def test_murmur2_gives_the_java_clients_hash(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected & 0xFFFFFFFF


@pytest.mark.parametrize(("key", "expected"), JAVA_PARTITIONS.items())
def test_keys_go_to_the_java_producers_partition(key: bytes, expected: int) -> None:
    partitions = list(range(1000))
    assert cached_partitioner(key, partitions, partitions) == expected


def test_murmur2_agrees_with_aiokafkas_over_random_keys() -> None:
    rng = random.Random(12)
    for length in range(101):
        for _ in range(50):
            key = rng.randbytes(length)
            assert murmur2(key) == aiokafka_murmur2(key)
