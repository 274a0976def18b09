"""Argument errors and exit statuses of `cdp` commands: no Kafka or Redis needed
(the Redis URL below points nowhere; a usage error or a 400 never connects)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main

NOWHERE = {"CDP_REDIS_URL": "redis://127.0.0.1:1/0", "CDP_KAFKA_BOOTSTRAP": "127.0.0.1:1"}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=NOWHERE)
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--namespace", "email"],
        ["--id", "a@b.c"],
        ["--profile-id", "p_01", "--namespace", "email", "--id", "a@b.c"],
        ["--profile-id", "p_01", "--id", "a@b.c"],
    ],
)
def test_profile_get_needs_an_identity_or_a_profile_id(args: list[str]) -> None:
    code, output = run("profile", "get", *args)
    assert code == 2
    assert "give --namespace and --id, or --profile-id" in output


@pytest.mark.parametrize(
    ("line", "says"),
    [("not json", "line 2 is not JSON"), ("[1, 2]", "line 2 is not a JSON object")],
)
def test_produce_file_names_a_line_that_is_no_envelope(
    tmp_path: Path, line: str, says: str
) -> None:
    """Found from outside: a line that was not JSON ended `cdp produce --file` in a
    traceback. Nothing is produced (the file is read whole first)."""
    events = tmp_path / "events.jsonl"
    events.write_text(f'{{"channel": "web"}}\n{line}\n\n')
    code, output = run("produce", "--file", str(events))
    assert code == 2
    assert says in output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["profile", "get", "--namespace", "email", "--id", "a@b.co"], "cannot reach Redis"),
        (["quarantine", "list"], "cannot reach Redis"),
    ],
)
def test_a_command_without_its_services_says_so_in_a_line(args: list[str], says: str) -> None:
    """Found from outside: with the stack down these ended in a traceback."""
    code, output = run(*args)
    assert code == 1
    assert says in output and "Traceback" not in output


@pytest.mark.parametrize("customers", ["0", "1", "-3"])
def test_a_sample_needs_two_customers(customers: str) -> None:
    """Found from outside: fewer ended in an IndexError's traceback."""
    code, output = run("produce", "--sample", customers)
    assert code == 2
    assert "x>=2" in output and "Traceback" not in output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["privacy", "delete", "--namespace", "crm_id", "--id", "C1"], "Kafka at 127.0.0.1:1"),
        (["produce", "--sample", "2"], "Kafka at 127.0.0.1:1"),
        (["profile", "get", "--profile-id", "p_01"], "Redis at 127.0.0.1:1/0"),
        (["profile", "tail"], "Kafka at 127.0.0.1:1"),
    ],
)
def test_a_command_without_its_services_says_where_and_what_to_do(
    args: list[str], says: str
) -> None:
    """Found from outside: the line named the variable but not the address (Kafka's was
    aiokafka's tuple repr), and `privacy delete` went on with 'Unclosed AIOKafkaProducer'
    and an object's address. A process of its own: those
    came from the garbage collector as it ended."""
    env = {**os.environ, **NOWHERE, "CDP_REDIS_URL": "redis://:s3cret@127.0.0.1:1/0"}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert f"cannot reach {says}" in done.stderr, done.stderr
    assert "cdp stack up" in done.stderr
    assert "Unclosed" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "s3cret" not in done.stderr


@pytest.mark.parametrize(
    "args", [["profile", "get", "--namespace", "email", "--id", "a@b.co"], ["topology"]]
)
def test_a_bad_identity_configuration_is_one_line(tmp_path: Path, args: list[str]) -> None:
    """Found from outside: `cdp worker` said so in a line, the other commands in a
    traceback."""
    bad = tmp_path / "identity.toml"
    bad.write_text('[namespaces.x]\nkind = "person"\npriority = 1\nunique = true\nformat = "(["\n')
    result = CliRunner().invoke(main, args, env={**NOWHERE, "CDP_IDENTITY_CONFIG": str(bad)})
    assert result.exit_code == 1
    assert "line 5: namespace 'x': bad format regex" in result.output
    assert "Traceback" not in result.output


def test_profile_get_rejects_an_unknown_merge_policy() -> None:
    code, output = run("profile", "get", "--profile-id", "p_01", "--merge-policy", "newest")
    assert code == 2
    assert "'newest' is not one of" in output


@pytest.mark.parametrize(
    ("namespace", "value", "message"),
    [("shoe_size", "42", "not configured"), ("email", "nope", "not an email address: no '@'")],
)
def test_profile_get_answers_a_malformed_identity_with_the_api_error(
    namespace: str, value: str, message: str
) -> None:
    code, output = run("profile", "get", "--namespace", namespace, "--id", value)
    assert code == 1
    assert message in json.loads(output)["error"]


@pytest.mark.parametrize(
    "args", [["crm_id", "email:a@b.c"], ["email:a@b.c", ":x"], ["email:a@b.c", "crm_id:"]]
)
def test_graph_explain_needs_namespace_id_pairs(args: list[str]) -> None:
    code, output = run("graph", "explain", *args)
    assert code == 2
    assert "is not namespace:id" in output


def test_graph_explain_needs_two_identities() -> None:
    code, output = run("graph", "explain", "email:a@b.c")
    assert code == 2
    assert "Missing argument 'B'" in output


def test_graph_explain_answers_an_unknown_namespace_with_the_api_error() -> None:
    code, output = run("graph", "explain", "shoe:42", "email:a@b.c")
    assert code == 1
    assert "not configured" in json.loads(output)["error"]


@pytest.mark.parametrize(("status", "code"), [("deleted", 0), ("not_found", 0), ("rejected", 1)])
def test_privacy_delete_exits_1_when_the_request_was_rejected(
    monkeypatch: pytest.MonkeyPatch, status: str, code: int
) -> None:
    async def answered(settings: object, request: dict[str, str], wait_s: float) -> dict:
        return {"request_id": request["request_id"], "status": status}

    monkeypatch.setattr("cdp_tools.ops.privacy_request", answered)
    got, output = run("privacy", "delete", "--namespace", "email", "--id", "a@b.c")
    assert (got, json.loads(output)["status"]) == (code, status)


@pytest.mark.parametrize(("args", "stay"), [([], False), (["--stay"], True)])
def test_demo_ends_by_itself_unless_asked_to_stay(
    monkeypatch: pytest.MonkeyPatch, args: list[str], stay: bool
) -> None:
    seen: list[bool] = []
    monkeypatch.setattr("cdp_tools.demo.run_demo", lambda settings, stay: seen.append(stay) or 0)
    assert run("demo", *args)[0] == 0
    assert seen == [stay]


def test_privacy_delete_without_a_receipt_says_where_the_request_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found from outside: with no worker running, the command printed status 'sent' and
    nothing else, after its wait."""

    async def no_receipt(*_: object) -> None:
        return None

    monkeypatch.setattr("cdp_tools.ops.privacy_request", no_receipt)
    result = CliRunner().invoke(
        main,
        ["privacy", "delete", "--namespace", "crm_id", "--id", "C1", "--wait", "2"],
        env=NOWHERE,
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["status"] == "sent"
    assert result.stderr.strip() == (
        "no receipt within 2 s: the request waits on cdp.privacy-requests until a worker "
        "(`cdp worker`) carries it out; its receipt will be on cdp.privacy-receipts"
    )


@pytest.mark.parametrize(
    ("line", "option", "says"),
    [
        ('{"event_id": "e"}', "Kiosk!", "--channel 'Kiosk!'"),
        ('{"channel": "a.b"}', "web", "line 1: channel 'a.b'"),
        ('{"channel": "Web"}', "web", "line 1: channel 'Web'"),
    ],
)
def test_produce_refuses_a_channel_no_worker_reads(
    tmp_path: Path, line: str, option: str, says: str
) -> None:
    """Found from outside: 'Kiosk!' printed hundreds of aiokafka errors and a traceback,
    and 'a.b' was produced to cdp.events.a.b, a topic no worker subscribes to."""
    events = tmp_path / "events.jsonl"
    events.write_text(line + "\n")
    code, output = run("produce", "--file", str(events), "--channel", option)
    assert code == 2
    assert f"{says} is not a channel name" in output, output
    assert "[a-z0-9_-]" in output
