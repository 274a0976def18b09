"""The API's aiohttp handlers (pipeline.api.routes): methods, HEAD, JSON errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from pipeline.api.handlers import Reply
from pipeline.api.routes import _handler, json_errors


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
