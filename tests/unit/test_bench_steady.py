"""`cdp bench e2e`'s split of each steady event's time into hops, from record timestamps."""

from __future__ import annotations

import os

import pytest

from cdp_tools.bench import cpu
from cdp_tools.bench.cpu import CpuWindow, cpu_pressure_us
from cdp_tools.bench.e2e import thread_split
from cdp_tools.bench.steady import Hops, describe, split


def test_each_visitor_is_split_by_its_channel_record_and_its_first_profile_record() -> None:
    sent = {"v1": 100.0, "v2": 100.5, "lost": 101.0}
    appended = {"v1": 100_001, "v2": 100_502, "lost": 101_001}
    # The document's updated_at (its stitch script) and the record's timestamp.
    published = {"v1": (100_010, 100_020), "v2": (100_530, 100_560)}  # "lost": never
    hops = split(sent, appended, published)
    assert [(h.append, h.to_script, h.publish) for h in hops] == [
        pytest.approx((0.001, 0.009, 0.010)),
        pytest.approx((0.002, 0.028, 0.030)),
    ]
    assert [h.total for h in hops] == [pytest.approx(0.020), pytest.approx(0.060)]


def test_the_description_names_each_hop_and_the_slowest_events_share() -> None:
    hops = [Hops(0.001, 0.002, 0.004)] * 99 + [Hops(0.001, 0.050, 0.004)]
    text = describe(hops)
    assert "to_script 2.0/" in text and text.endswith("publish 4.0/4.0/4.0")
    assert "/50.0, publish" in text  # the slowest 1% (one event) waited 50 ms for its script
    assert describe(hops[:1]) == "too few samples"


def test_each_figure_comes_with_the_machine_s_load_and_contention() -> None:
    line = CpuWindow({}).machine()
    assert line.startswith("load average ")
    if cpu_pressure_us() is not None:  # Linux with PSI: the share of time a task waited
        assert line.endswith("% of the time")


def test_a_main_thread_s_time_splits_into_running_waiting_for_a_core_and_asleep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert cpu.main_thread_seconds(os.getpid())[0] > 0  # this process's main thread ran
    readings = iter([(10.0, 1.0), (16.0, 3.0)])  # schedstat's seconds at open and at close
    monkeypatch.setattr(cpu, "main_thread_seconds", lambda pid: next(readings))
    window = CpuWindow({"worker1": 1234})
    assert window.main_threads(["worker1"], wall=10.0) == (
        "worker1 on a core 60%, waiting for one 20%, asleep 20%"
    )


def test_a_worker_s_cpu_splits_into_its_main_thread_s_and_its_other_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readings = iter([(10.0, 1.0), (12.5, 2.0)])  # schedstat's seconds at open and at close
    monkeypatch.setattr(cpu, "main_thread_seconds", lambda pid: next(readings))
    window = CpuWindow({"worker1": 1234})
    assert window.main_thread_spent("worker1") == 2.5
    assert thread_split(4.0, 2.5, 1000) == (
        "worker1 us/event: main thread 2500, other threads 1500"
    )


def test_a_process_s_age_is_read_from_proc() -> None:
    age = cpu.age_seconds(os.getpid())
    assert age is not None and 0 <= age < 3600  # this test process started moments ago
    assert cpu.age_seconds(2**22 + 1) is None  # above Linux's largest pid: gone
