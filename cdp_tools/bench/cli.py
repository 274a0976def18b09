"""`cdp bench ...`: the click group the `cdp` console script mounts when it is asked for.

Benchmarks print figures and assert nothing; each imports what it runs only when run.
"""

from __future__ import annotations

import asyncio
import sys

import click

from pipeline.cli import env_settings


@click.group()
def bench() -> None:
    """Benchmarks (they print figures; they assert nothing)."""


_worker_python = click.option(
    "--worker-python",
    default=sys.executable,
    show_default="this environment's",
    help="Python that runs the workers (another checkout's venv, for paired runs).",
)


@bench.command("e2e")
@click.option("--events", type=int, default=20_000, show_default=True)
@click.option(
    "--rates", default="100,1000", show_default=True, help="Steady rates for latency (events/s)."
)
@click.option("--seconds", type=float, default=10.0, show_default=True, help="Per steady rate.")
@click.option(
    "--steady-only", is_flag=True, help="Only the steady rates: no passthroughs, no drains."
)
@_worker_python
def bench_e2e(
    events: int, rates: str, seconds: float, steady_only: bool, worker_python: str
) -> None:
    """Workers end to end (one, two, steady rates), next to raw aiokafka passthroughs."""
    from cdp_tools.bench.e2e import main as run

    rate_list = tuple(float(r) for r in rates.split(",") if r)
    run(env_settings(), events, rate_list, seconds, steady_only, worker_python)


@bench.command("stages")
@click.option("--events", type=int, default=20_000, show_default=True)
@click.option("--rounds", type=int, default=7, show_default=True)
def bench_stages(events: int, rounds: int) -> None:
    """CPU of ingest and profile documents in-process (no Kafka or Redis)."""
    from cdp_tools.bench.stages import main as run

    run(events, rounds)


@bench.command("identity")
@click.option("--events", type=int, default=200_000, show_default=True)
@click.option("--batch", type=int, default=500, show_default=True)
@click.option("--identities", type=int, default=1_000_000, show_default=True)
@click.option("--yes", is_flag=True, help="Confirm that the Redis DB may be wiped.")
@click.option(
    "--cluster/--no-cluster",
    default=True,
    show_default=True,
    help="Then the same traffic on a temporary local 3-master Redis Cluster.",
)
def bench_identity(events: int, batch: int, identities: int, yes: bool, cluster: bool) -> None:
    """The Redis identity operations alone. WIPES the Redis DB at CDP_REDIS_URL."""
    from cdp_tools.bench import cluster as on_cluster
    from cdp_tools.bench.identity import report, run

    if not yes:
        raise click.UsageError("this wipes the Redis DB at CDP_REDIS_URL: pass --yes")
    click.echo(report(asyncio.run(run(env_settings().redis_url, events, batch, identities))))
    if cluster:
        click.echo(on_cluster.report(asyncio.run(on_cluster.run(events, batch))))


@bench.command("slots")
@click.option("--events", type=int, default=100_000, show_default=True)
@click.option("--batch", type=int, default=500, show_default=True)
@click.option("--graphs", type=int, default=20_000, show_default=True)
def bench_slots(events: int, batch: int, graphs: int) -> None:
    """What a slot per graph would cost Redis (docs/redis-cluster.md section 4): the
    common event's reads and writes without the rules, on a temporary local cluster."""
    from cdp_tools.bench import slots

    click.echo(slots.report(slots.run(events, batch, graphs)))


@bench.command("quality")
@click.option("--people", type=int, default=1500, show_default=True)
@click.option("--seed", type=int, default=None, help="Default: a random seed (printed).")
@click.option("--duplicates", is_flag=True, help="Deliver every event twice.")
@click.option("--kill", is_flag=True, help="Two workers; SIGKILL one three times mid-stream.")
@click.option(
    "--identity-config",
    "configs",
    multiple=True,
    help="An identity configuration to score, a file or a packaged name as "
    "CDP_IDENTITY_CONFIG takes (repeatable). Default: default and shared-devices, one run "
    "each on the same data.",
)
@click.option("--yes", is_flag=True, help="Confirm that the Redis DB may be wiped.")
def bench_quality(
    people: int, seed: int | None, duplicates: bool, kill: bool, configs: tuple[str, ...], yes: bool
) -> None:
    """Stitching quality against ground truth. WIPES the Redis DB at CDP_REDIS_URL."""
    import random

    from cdp_tools.quality.run import SHIPPED
    from cdp_tools.quality.run import main as run

    if not yes:
        raise click.UsageError("this wipes the Redis DB at CDP_REDIS_URL: pass --yes")
    from pipeline.identity import config as identity_config

    for config in configs:
        try:
            identity_config.read(config)
        except identity_config.ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--identity-config") from exc
    chosen = {config: config for config in configs} or SHIPPED
    seed = random.randrange(1 << 30) if seed is None else seed
    run(env_settings(), people, seed, duplicates, kill, chosen)


@bench.command("lookup")
@click.option("--profiles", type=int, default=100_000, show_default=True)
@click.option("--seconds", type=float, default=10.0, show_default=True)
@_worker_python
def bench_lookup(profiles: int, seconds: float, worker_python: str) -> None:
    """Lookups per second and latency against a worker's HTTP API."""
    from cdp_tools.bench.lookup import main as run

    run(env_settings(), profiles, seconds, worker_python=worker_python)
