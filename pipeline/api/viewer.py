"""The profile viewer (``/ui/``): static files from package data (pipeline/api/ui).

The files are read once, when the routes are mounted: a request can only name one of
them (no path reaches the file system), and they hold no data, so they need no token;
every call the page makes to /v1/ does.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

from aiohttp import web as aiohttp_web

PREFIX = "/ui/"
TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".md": "text/markdown",
    ".LICENSE": "text/plain",
}
HEADERS = {
    # Nothing but this worker: no CDN, no beacon, no framing by another site. Cytoscape
    # sets style attributes itself, hence 'unsafe-inline' for styles only.
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _walk(node: Traversable, prefix: str = "") -> dict[str, Traversable]:
    files: dict[str, Traversable] = {}
    for child in node.iterdir():
        name = prefix + child.name
        if child.is_dir():
            files.update(_walk(child, name + "/"))
        elif any(name.endswith(suffix) for suffix in TYPES):
            files[name] = child
    return files


def viewer_files() -> dict[str, tuple[bytes, str]]:
    """Path below /ui/ -> (content, media type), from the installed package."""
    root = resources.files("pipeline") / "api" / "ui"
    files = {
        name: (f.read_bytes(), next(t for s, t in TYPES.items() if name.endswith(s)))
        for name, f in _walk(root).items()
    }
    files[""] = files["index.html"]
    return files


def mount_viewer(web_app: aiohttp_web.Application) -> None:
    files = viewer_files()

    async def serve(request: aiohttp_web.Request) -> aiohttp_web.Response:
        found = files.get(request.match_info["name"])
        if found is None:
            raise aiohttp_web.HTTPNotFound()  # the JSON error middleware answers it
        body, media = found
        return aiohttp_web.Response(body=body, content_type=media, charset="utf-8", headers=HEADERS)

    async def to_index(request: aiohttp_web.Request) -> aiohttp_web.Response:
        raise aiohttp_web.HTTPMovedPermanently(PREFIX)

    web_app.router.add_get(PREFIX.rstrip("/"), to_index)
    web_app.router.add_get(PREFIX + "{name:.*}", serve)
