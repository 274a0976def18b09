"""EVALSHA calls of many concurrent callers pipelined on one Redis connection.

A redis-py call takes a pooled connection (pool lock, bookkeeping, retry wrapper, a
task for its write timeout, a timeout context for its read): that was half of a
lookup's CPU. Here a call is one write and one future, and replies are parsed (by
hiredis) as they arrive, in order, for every caller.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

import hiredis
import redis.asyncio
from redis import exceptions as redis_errors
from redis._parsers import BaseParser
from redis.asyncio.connection import AbstractConnection


def _command(*args: bytes) -> bytes:
    """A command in RESP, as Redis reads it."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts += (b"$%d\r\n" % len(arg), arg, b"\r\n")
    return b"".join(parts)


class _Replies(asyncio.Protocol):
    """One connection's replies, parsed as they arrive and handed to its callers in order."""

    def __init__(self, pipe: ScriptPipe, stream: asyncio.BaseProtocol) -> None:
        self.pipe = pipe
        self.stream = stream  # redis-py's protocol, which this one replaced
        # Error replies become redis-py's exceptions (LOADING: BusyLoadingError, ...).
        self.parser = hiredis.Reader(
            protocolError=redis_errors.InvalidResponse, replyError=BaseParser.parse_error
        )
        # Callers in the order of their commands, each with the time its reply is due by.
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.timeout: float | None = None
        self.watchdog: asyncio.TimerHandle | None = None

    def expect(self, waiter: asyncio.Future[Any], timeout: float | None) -> None:
        """Queue ``waiter`` for the next reply, failed if none comes within ``timeout``.
        Replies come in order, so only the oldest caller's time needs a timer: one per
        connection rather than a timeout context per call (~10 us, 3-5% of a lookup's CPU)."""
        loop = waiter.get_loop()
        self.timeout = timeout
        self.waiting.append((waiter, loop.time() + (timeout or 0)))
        if timeout is not None and self.watchdog is None:
            self.watchdog = loop.call_at(self.waiting[0][1], self._check)

    def _check(self) -> None:
        self.watchdog = None
        if not self.waiting:
            return
        waiter, due = self.waiting[0]
        loop = waiter.get_loop()
        if loop.time() < due:
            self.watchdog = loop.call_at(due, self._check)
        else:  # a stuck connection: give it up, as redis-py does
            self.fail(redis_errors.TimeoutError(f"no reply from Redis within {self.timeout}s"))

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        while (reply := self.parser.gets()) is not False:
            if not self.waiting:  # late, for callers failed by a timeout: being dropped
                return
            waiter, _ = self.waiting.popleft()
            if waiter.done():  # its caller gave up
                continue
            if isinstance(reply, redis_errors.RedisError):
                waiter.set_exception(reply)
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stream.connection_lost(exc)  # redis-py's disconnect() waits for it
        self.fail(redis_errors.ConnectionError(f"Redis connection lost ({exc!r})"))

    def fail(self, error: Exception) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        while self.waiting:
            waiter, _ = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        self.pipe.drop(self)


class ScriptPipe:
    """Pipelined EVALSHA (and SCRIPT LOAD). Raises what redis-py would for an error reply
    (NoScriptError when Redis lost the script, BusyLoadingError while it loads, ...),
    ConnectionError when the connection breaks (the next call reconnects), TimeoutError
    after the client's socket timeout (to every caller waiting on the connection then)."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._pool = client.connection_pool
        self._connecting = asyncio.Lock()
        self._current: tuple[AbstractConnection, asyncio.WriteTransport, _Replies] | None = None

    async def evalsha(self, sha: str, keys: Sequence[bytes], args: Sequence[bytes]) -> Any:
        return await self._send(b"EVALSHA", sha.encode(), b"%d" % len(keys), *keys, *args)

    async def load(self, script: bytes) -> None:
        """SCRIPT LOAD, on the pipe: what redis-py's Script does on NOSCRIPT (a restarted
        Redis, a flushed script cache), without a pooled connection a restart may have
        closed (redis-py 8.1 hands those out unchecked)."""
        await self._send(b"SCRIPT", b"LOAD", script)

    async def _send(self, *command: bytes) -> Any:
        conn, transport, replies = self._current or await self._connect()
        waiter = asyncio.get_running_loop().create_future()
        # redis-py's default (5 s) is set on the connection, not in the URL's kwargs.
        replies.expect(waiter, conn.socket_timeout)
        transport.write(_command(*command))
        return await waiter

    async def _connect(self) -> tuple[AbstractConnection, asyncio.WriteTransport, _Replies]:
        async with self._connecting:
            if self._current is None:
                # redis-py connects (TLS, AUTH, SELECT, HELLO as the URL says); then the
                # socket's bytes come here instead of to its stream reader.
                conn = await self._pool.get_connection()
                transport = conn._writer.transport
                replies = _Replies(self, transport.get_protocol())
                transport.set_protocol(replies)
                self._current = (conn, transport, replies)
            return self._current

    def drop(self, replies: _Replies) -> None:
        """Give up the connection of ``replies`` (the next call connects anew)."""
        if self._current is not None and self._current[2] is replies:
            conn = self._current[0]
            self._current = None
            asyncio.get_running_loop().create_task(self._release(conn))

    async def _release(self, conn: AbstractConnection) -> None:
        await conn.disconnect(nowait=True)
        await self._pool.release(conn)
