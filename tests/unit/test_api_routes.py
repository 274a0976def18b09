"""The API's aiohttp handlers (pipeline.api.routes): methods, HEAD, JSON errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from pipeline.api.handlers import Reply
from pipeline.api.routes import Handler, _handler, json_errors, metrics_view


async def alive(query: Mapping[str, str], match: Mapping[str, str]) -> Reply:
    return 200, {"status": "alive"}


@asynccontextmanager
async def serving(
    route: str, handlers: dict[str, Handler], token: str = ""
) -> AsyncIterator[TestClient]:
    app = web.Application(middlewares=[json_errors])
    app.router.add_route("*", route, _handler(route, handlers, token))
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    async with serving("/healthz", {"get": alive}) as test_client:
        yield test_client


async def test_head_answers_as_get_without_the_body(client: TestClient) -> None:
    got = await client.get("/healthz")
    head = await client.head("/healthz")
    assert (head.status, head.headers["Content-Type"]) == (200, got.headers["Content-Type"])
    assert await head.read() == b""
    assert await got.json() == {"status": "alive"}


async def test_a_method_no_handler_serves_is_a_json_405(client: TestClient) -> None:
    answer = await client.post("/healthz")
    assert answer.status == 405
    assert "error" in await answer.json()
    # RFC 9110 15.5.6: a 405 lists the methods the route serves.
    assert answer.headers["Allow"] == "GET, HEAD"


async def test_a_405_lists_every_method_of_its_route() -> None:
    async with serving("/v1/profiles", {"get": alive, "delete": alive}) as test_client:
        answer = await test_client.put("/v1/profiles")
        assert (answer.status, answer.headers["Allow"]) == (405, "DELETE, GET, HEAD")


async def test_a_query_parameter_given_twice_is_a_400(client: TestClient) -> None:
    """Which of two values was meant is a guess (the first was taken): say so instead."""
    answer = await client.get("/healthz?id=a&id=b")
    assert answer.status == 400
    assert await answer.json() == {"error": "query parameter 'id' is given 2 times, at most once"}


async def test_metrics_say_which_exposition_format_they_are() -> None:
    """Prometheus 3 refuses a scrape whose Content-Type names no format it knows unless
    the job sets fallback_scrape_protocol; text/plain with version 0.0.4 is the classic
    text format prometheus_client writes."""
    app = web.Application()
    app.router.add_get("/metrics", metrics_view(lambda: b"cdp_ready 1.0\n"))
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        answer = await test_client.get("/metrics")
        assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert await answer.read() == b"cdp_ready 1.0\n"


@pytest.fixture
async def guarded() -> AsyncIterator[TestClient]:
    async with serving("/healthz", {"get": alive}, token="s3cret") as test_client:
        yield test_client


async def _raw_status(test_client: TestClient, authorization: bytes) -> tuple[int, bytes]:
    """The status and head of an answer to a request whose header bytes go as given (an
    HTTP client would refuse to send non-ASCII)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", test_client.port)
    writer.write(
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: "
        + authorization
        + b"\r\n\r\n"
    )
    answer = await reader.read()
    writer.close()
    head = answer.partition(b"\r\n\r\n")[0]
    return int(head.split()[1]), head


@pytest.mark.parametrize("authorization", [b"Bearer \xe9t\xe9", b"Bearer \xff", b"\xe9"])
async def test_a_token_of_bytes_no_text_holds_is_a_401_not_a_503(
    guarded: TestClient, authorization: bytes
) -> None:
    """Found from outside: a non-ASCII Authorization header was a 503 and a traceback in
    the log (its text could not be encoded to compare)."""
    status, head = await _raw_status(guarded, authorization)
    assert status == 401
    assert b"WWW-Authenticate: Bearer" in head


async def test_the_bearer_scheme_is_case_insensitive(guarded: TestClient) -> None:
    """RFC 9110 11.1: 'bearer' names the scheme as 'Bearer' does; the token is exact."""
    for given, status in (("bearer s3cret", 200), ("BEARER s3cret", 200), ("Bearer S3CRET", 401)):
        answer = await guarded.get("/healthz", headers={"Authorization": given})
        assert answer.status == status, given


async def test_a_401_names_the_scheme_it_takes(guarded: TestClient) -> None:
    """RFC 9110 15.5.2: a 401 carries WWW-Authenticate."""
    answer = await guarded.get("/healthz")
    assert (answer.status, answer.headers["WWW-Authenticate"]) == (401, "Bearer")
