"""`cdp stack up|down|status`: the click group the `cdp` console script mounts."""

from __future__ import annotations

import sys

import click

from cdp_tools.stack import control
from cdp_tools.stack.errors import StackError

ONLY = click.option(
    "--only",
    type=click.Choice(["kafka", "redis"]),
    default=None,
    help="Act on one service only.",
)


class _StackFailed(click.ClickException):
    exit_code = 2

    def show(self, file: object = None) -> None:
        click.echo(f"error: {self.message}", err=True)


@click.group()
def stack() -> None:
    """The local Kafka and Redis at CDP_KAFKA_BOOTSTRAP and CDP_REDIS_URL."""


@stack.command()
@ONLY
@click.option("--fresh", is_flag=True, help="Stop and empty the services' data first.")
@click.option(
    "--redis-cluster",
    type=click.IntRange(min=3),
    default=None,
    metavar="N",
    help="Instead of one Redis, a Redis Cluster of N masters on CDP_REDIS_URL's port and "
    "the N-1 after it (a CDP_REDIS_URL of redis+cluster://host:port starts 3 by itself).",
)
@click.option(
    "--redis-replicas",
    type=click.IntRange(min=0),
    default=0,
    metavar="R",
    help="With a Redis Cluster: R replicas of each master, on the ports after the masters.",
)
def up(only: control.Only, fresh: bool, redis_cluster: int | None, redis_replicas: int) -> None:
    """Start Kafka (KRaft) and Redis; succeeds if they already run."""
    try:
        control.up(
            only, fresh=fresh, redis_cluster=redis_cluster or 0, redis_replicas=redis_replicas
        )
    except StackError as error:
        raise _StackFailed(str(error)) from None


@stack.command()
@ONLY
@click.option("--wipe", is_flag=True, help="Also remove their data (keeps downloaded jars).")
def down(only: control.Only, wipe: bool) -> None:
    """Stop what `up` started."""
    try:
        control.down(only, wipe=wipe)
    except StackError as error:
        raise _StackFailed(str(error)) from None


@stack.command()
@ONLY
def status(only: control.Only) -> None:
    """Say what runs; exit 0 if everything does, else 3."""
    try:
        states = control.status(only)
    except StackError as error:
        raise _StackFailed(str(error)) from None
    for state in states:
        click.echo(state.describe())
    if not all(state.running for state in states):
        sys.exit(3)
