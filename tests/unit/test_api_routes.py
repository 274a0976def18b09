"""The API's aiohttp handlers (pipeline.api.routes): methods, HEAD, JSON errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from pipeline.api.handlers import Reply
from pipeline.api.routes import _handler, json_errors, metrics_view


async def alive(query: Mapping[str, str], match: Mapping[str, str]) -> Reply:
    return 200, {"status": "alive"}


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = web.Application(middlewares=[json_errors])
    app.router.add_route("*", "/healthz", _handler("/healthz", {"get": alive}, ""))
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
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
    app = web.Application(middlewares=[json_errors])
    handlers = {"get": alive, "delete": alive}
    app.router.add_route("*", "/v1/profiles", _handler("/v1/profiles", handlers, ""))
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
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
