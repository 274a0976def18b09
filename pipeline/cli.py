"""The ``cdp`` console script."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

import click

from pipeline.model import POLICIES
from pipeline.settings import CHANNEL, VARIABLES, Settings, Topics


def env_settings() -> Settings:
    """The settings from the environment; a bad variable ends the command with its message."""
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _print(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


class _Main(click.Group):
    """Loads the tooling's command groups (package cdp_tools) only when they are asked for,
    so `cdp worker` never imports it."""

    LAZY: ClassVar[dict[str, str]] = {
        "stack": "cdp_tools.stack.cli:stack",
        "bench": "cdp_tools.bench.cli:bench",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.LAZY:
            module, _, attr = self.LAZY[cmd_name].partition(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        """An operator command whose Kafka or Redis is not there, or whose
        CDP_IDENTITY_CONFIG is bad, says so in a line, not a traceback."""
        from aiokafka.errors import KafkaConnectionError
        from redis.exceptions import ConnectionError as RedisConnectionError

        from pipeline.identity.config import ConfigError

        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        except RedisConnectionError as exc:
            from pipeline.worker.health import redis_address

            where = redis_address(env_settings().redis_url)  # without a password
            raise click.ClickException(_unreachable("Redis", where, "CDP_REDIS_URL", exc)) from None
        except KafkaConnectionError as exc:
            where = env_settings().kafka_bootstrap
            raise click.ClickException(
                _unreachable("Kafka", where, "CDP_KAFKA_BOOTSTRAP", exc)
            ) from None


def _unreachable(what: str, where: str, variable: str, exc: BaseException) -> str:
    """Where the command looked, what the client said (as /readyz does), and what to do."""
    from pipeline.worker.health import unreachable

    return (
        f"{unreachable(what, f'{where} ({variable})', exc).rstrip('.')}. Start it with "
        f"`cdp stack up`, or point {variable} at a running {what}."
    )


@click.group(cls=_Main)
def main() -> None:
    """Real-time identity stitching and unified customer profiles on Kafka and Redis."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # A brand-new channel topic refuses writes until its leaders are known; aiokafka
    # retries, and its warning about it would only alarm a person at the console.
    logging.getLogger("aiokafka.producer.sender").setLevel(logging.ERROR)


@main.command()
def worker() -> None:
    """Run a pipeline worker (Faust) until SIGTERM or Ctrl-C."""
    from pipeline.identity.config import ConfigError
    from pipeline.worker.run import StartupError, run

    try:
        run(env_settings())
    except (StartupError, ConfigError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@main.command("migrate-keys")
def migrate_keys() -> None:
    """Move a graph kept by an earlier version (keys cdp:<name>) to today's keys
    ({cdp}:<name>); stop every worker first."""
    from pipeline.identity.connect import connect
    from pipeline.identity.migrate import migrate

    async def run() -> int:
        client = connect(env_settings().redis_url)
        try:
            return await migrate(client)
        finally:
            await client.aclose()

    click.echo(f"renamed {asyncio.run(run())} keys")


@main.command()
def topology() -> None:
    """Print the data flow: which agent reads which topic, calls what and writes where."""
    from pipeline.identity import config as identity_config
    from pipeline.identity.commands import GraphStore
    from pipeline.identity.connect import connect
    from pipeline.worker.app import create_app
    from pipeline.worker.topology import render

    settings = env_settings()
    config = identity_config.load(settings.identity_config or None)
    # Wired as a worker would be, without connecting: the client connects on first use.
    store = GraphStore(connect(settings.redis_url), config)
    # Never started, so Faust creates nothing in its data directory.
    wiring = create_app(
        settings,
        config,
        store,
        [f"{settings.topic_prefix}events.<channel>"],
        datadir=Path(tempfile.gettempdir()),
    )
    click.echo(render(wiring.app, wiring.flows))


@main.group("config", invoke_without_command=True)
@click.pass_context
def config_cmd(ctx: click.Context) -> None:
    """List every environment variable with its default (markdown); `cdp config identity`
    shows identity configurations."""
    if ctx.invoked_subcommand is None:
        click.echo("| variable | default | meaning |\n| --- | --- | --- |")
        for v in VARIABLES:
            click.echo(f"| `{v.name}` | `{v.default}` | {v.doc} |")


@config_cmd.command("identity")
@click.argument("name", required=False)
@click.option("--list", "listing", is_flag=True, help="The packaged configurations by name.")
@click.option("--path", "path_only", is_flag=True, help="Print where the file is, not its text.")
def config_identity(name: str | None, listing: bool, path_only: bool) -> None:
    """Print the identity configuration NAME: a packaged one's name or a path, as
    CDP_IDENTITY_CONFIG takes them; without NAME, the one CDP_IDENTITY_CONFIG selects.
    It is checked as a worker checks it. `cdp config identity shared-devices > mine.toml`
    makes a copy to edit."""
    from pipeline.identity.config import parse, read
    from pipeline.resources import PACKAGED_CONFIGS, schema_path
    from pipeline.settings import env

    if listing and (name is not None or path_only):
        raise click.UsageError("--list takes no NAME and no --path: it lists every packaged one")
    if listing:
        for c in PACKAGED_CONFIGS:
            click.echo(f"{c.name}\t{c.summary}\t{schema_path(c.file)}")
        return
    where, text = read(name or env("CDP_IDENTITY_CONFIG"))
    parse(text, where)
    click.echo(where if path_only else text, nl=path_only)


@main.command()
@click.option(
    "--sample",
    "customers",
    # Two at least: the sample's shared family tablet needs two people.
    type=click.IntRange(min=2),
    default=None,
    help="Generate the realistic multi-channel sample for this many customers (2 or more).",
)
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="JSON lines: envelopes (channel from each 'channel' field or --channel).",
)
@click.option("--channel", default=None, help="Channel of --file events without one.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--encoding", type=click.Choice(["json", "msgpack"]), default="json", show_default=True
)
def produce(
    customers: int | None, path: str | None, channel: str | None, seed: int, encoding: str
) -> None:
    """Produce events to cdp.events.<channel> topics."""
    from cdp_tools.produce import produce as send
    from cdp_tools.sample import SampleGenerator

    if (customers is None) == (path is None):
        raise click.UsageError("give exactly one of --sample N or --file F")
    if channel is not None:
        _check_channel(channel, "--channel")
    if customers is not None:
        start = int(time.time() * 1000) - 6 * 3600 * 1000
        events = list(SampleGenerator(customers, seed, start).events())
    else:
        events = []
        with open(str(path), encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if line.strip():
                    envelope = _json_object(line, f"{path}, line {number}")
                    ch = envelope.get("channel") or channel
                    if not ch:
                        raise click.UsageError("an event has no channel; pass --channel")
                    _check_channel(ch, f"{path}, line {number}: channel")
                    events.append((ch, envelope))
    sent = asyncio.run(send(env_settings(), events, encoding=encoding))
    click.echo(f"produced {sent} events")


def _check_channel(channel: object, where: str) -> None:
    """A channel names its topic, cdp.events.<channel>: one that no worker subscribes to
    (or Kafka refuses) is refused before anything is produced."""
    if not (isinstance(channel, str) and CHANNEL.fullmatch(channel)):
        raise click.UsageError(
            f"{where} {channel!r} is not a channel name: [a-z0-9_-]+, as workers read "
            "cdp.events.<channel>"
        )


def _json_object(text: str, where: str) -> dict[str, Any]:
    """One envelope of a JSON-lines file, or a usage error saying where it is not one."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.UsageError(f"{where} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise click.UsageError(f"{where} is not a JSON object")
    return value


@main.group()
def profile() -> None:
    """Read profiles."""


@profile.command("get")
@click.option("--namespace", default=None)
@click.option("--id", "value", default=None)
@click.option("--profile-id", default=None)
@click.option("--merge-policy", type=click.Choice(POLICIES), default=None)
def profile_get(
    namespace: str | None, value: str | None, profile_id: str | None, merge_policy: str | None
) -> None:
    """One profile, by an identity or by profile id, read from Redis."""
    from cdp_tools.ops import api_call

    query = {"merge_policy": merge_policy} if merge_policy else {}
    by_identity = namespace is not None or value is not None
    if profile_id is not None and not by_identity:
        status, body = api_call(env_settings(), "profile_by_id", profile_id, query)
    elif namespace and value and profile_id is None:
        status, body = api_call(
            env_settings(), "profile_by_identity", {**query, "namespace": namespace, "id": value}
        )
    else:
        raise click.UsageError("give --namespace and --id, or --profile-id (not both)")
    _print(body)
    sys.exit(0 if status == 200 else 1)


@profile.command("tail")
@click.option("--follow", is_flag=True, help="Keep reading new records.")
def profile_tail(follow: bool) -> None:
    """The compacted profile topic, decoded for people."""
    from pipeline.publish.reader import read_to_end

    async def tail() -> None:
        s = env_settings()
        async for record in read_to_end(s, Topics(s.topic_prefix).profiles, follow=follow):
            shown = record.value if record.value is not None else "TOMBSTONE"
            click.echo(
                f"{record.partition}@{record.offset} {record.key} "
                f"{json.dumps(shown, ensure_ascii=False)}"
            )

    asyncio.run(tail())


@main.group()
def graph() -> None:
    """Inspect the identity graph."""


@graph.command("show")
@click.option("--namespace", required=True)
@click.option("--id", "value", required=True)
def graph_show(namespace: str, value: str) -> None:
    """The graph holding an identity, with each link's evidence."""
    from cdp_tools.ops import api_call

    status, body = api_call(env_settings(), "graph", {"namespace": namespace, "id": value})
    _print(body)
    sys.exit(0 if status == 200 else 1)


def _identity_ref(ctx: click.Context, param: click.Parameter, value: str) -> str:
    namespace, sep, rest = value.partition(":")
    if not (sep and namespace and rest):
        raise click.BadParameter(f"{value!r} is not namespace:id (e.g. email:evan@example.com)")
    return value


@graph.command("explain")
@click.argument("a", callback=_identity_ref)
@click.argument("b", callback=_identity_ref)
def graph_explain(a: str, b: str) -> None:
    """Why two identities (namespace:id) are in one profile, or why not."""
    from cdp_tools.ops import api_call

    status, body = api_call(env_settings(), "explain", {"a": a, "b": b})
    _print(body)
    sys.exit(0 if status == 200 else 1)


@main.group()
def quarantine() -> None:
    """The junk-identifier circuit breaker."""


@quarantine.command("list")
def quarantine_list() -> None:
    from cdp_tools.ops import with_store

    _print(asyncio.run(with_store(env_settings(), lambda store: store.quarantined())))


@quarantine.command("release")
@click.option("--namespace", required=True)
@click.option("--id", "value", required=True)
def quarantine_release(namespace: str, value: str) -> None:
    """Let a quarantined identity link again (through a running worker, which records the
    change on cdp.graph-changes)."""
    from cdp_tools.ops import WorkerUnreachable, worker_call

    query = {"namespace": namespace, "id": value}
    try:
        status, body = worker_call(env_settings(), "POST", "/v1/quarantine/release", query)
    except WorkerUnreachable as exc:
        raise click.ClickException(str(exc)) from None
    _print(body)
    sys.exit(0 if status == 200 else 1)


@main.group()
def privacy() -> None:
    """Privacy requests."""


@privacy.command("delete")
@click.option("--namespace", required=True)
@click.option("--id", "value", required=True)
@click.option(
    "--profile",
    "whole_profile",
    is_flag=True,
    help="Delete every identity of the profile holding this identity.",
)
@click.option(
    "--wait",
    "wait_s",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds to wait for the receipt (0: do not wait).",
)
def privacy_delete(namespace: str, value: str, whole_profile: bool, wait_s: float) -> None:
    """Send a request to the privacy topic and print its receipt; the exit status is 1
    when the request was rejected."""
    from cdp_tools.ops import privacy_request

    request = {
        "request_id": f"cli-{uuid.uuid4()}",
        "action": "delete_profile" if whole_profile else "delete_identity",
        "namespace": namespace,
        "id": value,
    }
    settings = env_settings()
    receipt = asyncio.run(privacy_request(settings, request, wait_s))
    _print(
        receipt if receipt is not None else {"request_id": request["request_id"], "status": "sent"}
    )
    if receipt is None and wait_s > 0:
        topics = Topics(settings.topic_prefix)
        click.echo(
            f"no receipt within {wait_s:g} s: the request waits on {topics.privacy_requests} "
            f"until a worker (`cdp worker`) carries it out; its receipt will be on "
            f"{topics.privacy_receipts}",
            err=True,
        )
    if receipt is not None and receipt.get("status") == "rejected":
        sys.exit(1)


@main.command()
@click.option(
    "--stay",
    is_flag=True,
    help="Keep the stack and the worker up for the profile viewer until Ctrl-C.",
)
def demo(stay: bool) -> None:
    """Start the stack and a worker, feed the sample, print profiles, stop everything."""
    from cdp_tools.demo import run_demo

    sys.exit(run_demo(env_settings(), stay=stay))
