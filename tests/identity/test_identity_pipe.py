"""The pipelined path (pipeline/identity/pipe.py) of the reads and the stitch call:
concurrent callers get their own answers, and a lost connection or a flushed script
cache costs no answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import hiredis
import pytest
import redis.asyncio

from pipeline.identity.commands import GraphStore
from pipeline.identity.pipe import ScriptPipe, _Replies
from tests.identity.support import DEFAULTS, make_event, redis_url

# A real Redis at CDP_REDIS_URL (`make test` starts it).
pytestmark = pytest.mark.integration

NAME = "cdp-pipe-test"
PEOPLE = 60  # concurrent calls: fewer than the fallback's redis-py pool holds (100)


@pytest.fixture
def target_url() -> str:
    """One Redis only: on a cluster redis-py's client makes the calls (no pipe)."""
    return redis_url()


@pytest.fixture
async def store(client: redis.asyncio.Redis) -> AsyncIterator[GraphStore]:
    own = redis.asyncio.Redis.from_url(redis_url(), client_name=NAME)
    store = GraphStore(own, DEFAULTS)
    await store.stitch(
        [
            make_event(f"e{i}", 1000 + i, f"email:p{i}@example.org", f"crm_id:C{i}")
            for i in range(PEOPLE)
        ]
    )
    yield store
    await own.aclose()


async def _answers(store: GraphStore) -> list[tuple[str | None, str]]:
    """(profile id by lookup, crm id of the profile read) of every person, concurrently."""
    keys = [f"email:p{i}@example.org" for i in range(PEOPLE)]
    pids = await asyncio.gather(*(store.lookup(k) for k in keys))
    profiles = await asyncio.gather(*(store.read_profile_of(k) for k in keys))
    return [
        (pid, next(m.key for m in p.members if m.key.startswith("crm_id:")) if p else "")
        for pid, p in zip(pids, profiles, strict=True)
    ]


async def _kill_connections(client: redis.asyncio.Redis) -> None:
    """Close the store's connections from the Redis side, as a restart would."""
    for line in (await client.execute_command("CLIENT", "LIST")).decode().splitlines():
        fields = dict(f.split("=", 1) for f in line.split(" ") if "=" in f)
        if fields.get("name") == NAME:
            await client.execute_command("CLIENT", "KILL", "ID", fields["id"])


async def test_concurrent_callers_get_their_own_answers(store: GraphStore) -> None:
    answers = await _answers(store)
    assert len({pid for pid, _ in answers}) == PEOPLE
    assert [crm for _, crm in answers] == [f"crm_id:C{i}" for i in range(PEOPLE)]


async def test_a_killed_connection_and_a_flushed_script_cache_cost_no_answer(
    store: GraphStore, client: redis.asyncio.Redis
) -> None:
    before = await _answers(store)
    await _kill_connections(client)
    assert await _answers(store) == before
    await client.script_flush()
    assert await _answers(store) == before
    assert await _answers(store) == before  # and the pipe again, with the script reloaded


async def test_a_stitch_goes_through_the_pipe_and_loses_nothing_to_a_restart(
    store: GraphStore, client: redis.asyncio.Redis
) -> None:
    """Without CDP_REDIS_MIN_REPLICAS a batch is one call on the pipe (the fixture's
    stitch opened it); a killed connection or a flushed script cache costs it nothing,
    a batch sent again replays its outputs, and a script error still reaches the caller
    (the stitch stage bisects the batch on it)."""
    assert store._pipe is not None and store._pipe._current is not None
    event = make_event("n1", 5000, "email:new@example.org", "crm_id:N1")
    await _kill_connections(client)
    first = await store.stitch([event])
    assert first.outcomes == ["ok"] and first.dirty
    await client.script_flush()
    again = await store.stitch([event])
    assert again.outcomes == ["duplicate"] and again.dirty == first.dirty
    assert store._pipe._current is not None  # the pipe again, with the script reloaded
    with pytest.raises(redis.exceptions.ResponseError, match="user_script"):
        await store._call("stitch", ["not", "a", 3])


async def test_error_replies_raise_what_redis_py_raises(client: redis.asyncio.Redis) -> None:
    # LOADING after a restart must read as BusyLoadingError: callers wait that one out.
    pipe = ScriptPipe(client)
    sha = await client.script_load("return redis.error_reply('LOADING Redis is loading')")
    with pytest.raises(redis.exceptions.BusyLoadingError):
        await pipe.evalsha(sha, [], [])
    sha = await client.script_load("return redis.error_reply('ERR something else')")
    with pytest.raises(redis.exceptions.ResponseError, match="something else"):
        await pipe.evalsha(sha, [], [])
    assert await pipe.evalsha(await client.script_load("return 'ok'"), [], []) == b"ok"


SLOW, SILENT = "0" * 40, "1" * 40  # scripts the fake Redis below answers late, or never


@pytest.fixture
async def fake_redis() -> AsyncIterator[int]:
    """The port of a Redis that takes the connection, answers SLOW after 0.2 s and hangs
    at SILENT (stopped, a script that never ends): nothing after it is answered."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests, hung = hiredis.Reader(), False
        while data := await reader.read(65536):
            requests.feed(data)
            while (command := requests.gets()) is not False:
                hung = hung or command[1:2] == [SILENT.encode()]
                if hung:
                    continue
                if command[0].upper() != b"EVALSHA":
                    writer.write(b"+OK\r\n")
                else:
                    asyncio.get_running_loop().call_later(0.2, writer.write, b"+OK\r\n")

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def test_a_silent_redis_times_out_as_the_client_says(fake_redis: int) -> None:
    """A call Redis never answers fails after redis-py's default socket timeout (5 s)
    instead of hanging."""
    client = redis.asyncio.Redis.from_url(f"redis://127.0.0.1:{fake_redis}/0")
    try:
        async with asyncio.timeout(15):
            with pytest.raises(redis.exceptions.TimeoutError):
                await ScriptPipe(client).evalsha(SILENT, [], [])
    finally:
        await client.aclose()


async def test_the_timeout_counts_from_each_call_and_fails_every_caller_behind_it(
    fake_redis: int,
) -> None:
    """One timer per connection: calls answered within the timeout, one after another
    for longer than it, all succeed; a silent call fails with those queued behind it."""
    client = redis.asyncio.Redis.from_url(f"redis://127.0.0.1:{fake_redis}/0", socket_timeout=0.3)
    pipe = ScriptPipe(client)
    try:
        async with asyncio.timeout(15):
            for _ in range(4):  # 0.8 s in all
                assert await pipe.evalsha(SLOW, [], []) == b"OK"
            stuck = await asyncio.gather(
                pipe.evalsha(SILENT, [], []), pipe.evalsha(SLOW, [], []), return_exceptions=True
            )
            assert [type(e) for e in stuck] == [redis.exceptions.TimeoutError] * 2
            assert await pipe.evalsha(SLOW, [], []) == b"OK"  # on a new connection
    finally:
        await client.aclose()


async def test_a_reply_after_its_caller_timed_out_is_ignored() -> None:
    """A reply that arrives once a timeout failed every caller (and before the dropped
    connection is closed) has nobody to go to: it took from an empty queue."""

    class Pipe:
        def drop(self, replies: object) -> None:
            pass

    class Transport:
        def get_protocol(self) -> asyncio.Protocol:
            return asyncio.Protocol()

    replies = _Replies(Pipe(), Transport())  # type: ignore[arg-type]
    waiter = asyncio.get_running_loop().create_future()
    replies.expect(waiter, None)
    replies.fail(redis.exceptions.TimeoutError("no reply"))
    replies.data_received(b"+OK\r\n")
    with pytest.raises(redis.exceptions.TimeoutError):
        await waiter
