"""The profile viewer's files (pipeline.api.viewer): served from package data, nothing
else reachable, nothing loaded from beyond the worker."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from pipeline.api.routes import json_errors
from pipeline.api.viewer import mount_viewer, viewer_files


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = web.Application(middlewares=[json_errors])
    mount_viewer(app)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


def test_the_package_ships_the_page_the_scripts_and_the_graph_library_with_its_licence() -> None:
    files = viewer_files()
    assert {"index.html", "viewer.css", "js/main.js", "vendor/cytoscape.min.js"} <= set(files)
    assert b"Permission is hereby granted" in files["vendor/cytoscape.LICENSE"][0]


def test_every_file_the_page_names_is_served_and_none_is_remote() -> None:
    files = viewer_files()
    html = files["index.html"][0].decode()
    for name in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert name == "data:," or name in files, name
    for name, (body, _) in files.items():
        if name.endswith((".html", ".css", ".js")) and not name.startswith("vendor/"):
            assert not re.search(rb"https?://", body), f"{name} names a remote address"
    imports = re.findall(
        r"from '\./([\w.]+)'",
        "".join(body.decode() for name, (body, _) in files.items() if name.startswith("js/")),
    )
    assert imports and all(f"js/{name}" in files for name in imports)


async def test_files_are_served_with_their_type_and_a_strict_policy(client: TestClient) -> None:
    page = await client.get("/ui/")
    assert page.status == 200 and page.content_type == "text/html"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    script = await client.get("/ui/js/main.js")
    assert (script.status, script.content_type) == (200, "text/javascript")
    moved = await client.get("/ui", allow_redirects=False)
    assert (moved.status, moved.headers["Location"]) == (301, "/ui/")


@pytest.mark.parametrize("path", ["/ui/nope.js", "/ui/../pyproject.toml", "/ui/%2e%2e/routes.py"])
async def test_anything_else_is_a_json_404(client: TestClient, path: str) -> None:
    answer = await client.get(path)
    assert answer.status == 404
    assert "error" in await answer.json()
