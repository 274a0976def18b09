"""Changes made by an operator leave through a worker like any other (issue 10): a
quarantine release is a record on cdp.graph-changes and counted in the metrics; and every
output record names its encoding in a content-type header."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from pipeline.resources import DEFAULT_IDENTITY_CONFIG, schema_text
from tests.integration.support import envelope, ident, records, send, settle

pytestmark = pytest.mark.integration
# A placeholder number typed at the till for every customer: a junk identifier. (A
# device would not do: following the last person is its rule, 4.2, not a junk sign.)
JUNK = ("phone", "+14155550100")


def _strict_breaker(tmp_path: Path) -> str:
    """The default identity configuration with a breaker that trips on the second move."""
    text = schema_text(DEFAULT_IDENTITY_CONFIG).replace(
        "max_reassignments = 5", "max_reassignments = 1"
    )
    assert "max_reassignments = 1" in text
    path = tmp_path / "identity.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _cdp(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    cli = [sys.executable, "-m", "pipeline", *args]
    return subprocess.run(cli, env={**os.environ, **env}, capture_output=True, text=True)


def test_a_released_quarantine_is_a_graph_change_counted_by_the_worker(
    pipeline_env, start_worker, tmp_path
):
    worker = start_worker(CDP_IDENTITY_CONFIG=_strict_breaker(tmp_path))
    topics = pipeline_env.topics
    junk = ident(*JUNK)
    # The number moves from A to B to C: two reassignments, one more than allowed. One at
    # a time: the channel's partitions could deliver them in another order.
    for n, person in enumerate("ABC"):
        send(pipeline_env.settings, [("web", envelope(ident("crm_id", person), junk, at=n))])
        settle(pipeline_env.settings)
    env = {**pipeline_env.env, "CDP_HTTP_PORT": str(worker.port)}
    listed = _cdp(env, "quarantine", "list")
    assert "phone:+14155550100" in listed.stdout, listed.stderr

    released = _cdp(env, "quarantine", "release", "--namespace", JUNK[0], "--id", JUNK[1])
    assert released.returncode == 0, released.stderr
    answer = json.loads(released.stdout)
    assert answer["released"] is True
    assert [c["type"] for c in answer["changes"]] == ["identity_released"]

    changes = [r.value for r in records(pipeline_env.settings, topics.graph_changes)]
    assert [c for c in changes if c["type"] == "identity_released"] == answer["changes"]
    with urllib.request.urlopen(worker.url + "/metrics", timeout=10) as page:
        text = page.read().decode()
    assert 'cdp_graph_changes_total{type="identity_released"} 1.0' in text

    again = _cdp(env, "quarantine", "release", "--namespace", JUNK[0], "--id", JUNK[1])
    assert json.loads(again.stdout)["released"] is False


def test_without_a_worker_release_says_what_to_do(pipeline_env):
    from cdp_tools.workerproc import free_port

    env = {**pipeline_env.env, "CDP_HTTP_PORT": str(free_port())}
    result = _cdp(env, "quarantine", "release", "--namespace", JUNK[0], "--id", JUNK[1])
    assert result.returncode != 0
    assert "no worker answers" in result.stderr and "cdp worker" in result.stderr


@pytest.mark.parametrize("encoding", ["msgpack", "json"])
def test_every_output_record_names_its_encoding(pipeline_env, start_worker, encoding):
    start_worker(CDP_OUTPUT_ENCODING=encoding)
    settings, topics = pipeline_env.settings, pipeline_env.topics
    media = f"application/{encoding}".encode()
    send(
        settings,
        [
            ("web", envelope(ident("crm_id", "H-1"), ident("ecid", "h1"), at=1)),
            ("web", envelope(ident("crm_id", "H-2"), ident("ecid", "h1"), at=2)),
        ],
    )
    send_bad = [("web", {"event_id": "bad", "identities": []})]
    send(settings, send_bad)
    settle(settings)
    expected = {
        topics.profiles: media,
        topics.graph_changes: media,
        topics.deadletter: b"application/octet-stream",
    }
    for topic, content_type in expected.items():
        found = records(settings, topic, decoded=False)
        assert found, topic
        assert {r.headers.get("content-type") for r in found} == {content_type}, topic
        if topic in (topics.profiles, topics.graph_changes):
            assert all(r.raw is None or r.raw[:1] == b"{" for r in found) == (encoding == "json")
