"""Mounts the API (pipeline.api.handlers) on the Faust worker's web server."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import cache

import faust
import orjson
from aiohttp import web as aiohttp_web
from prometheus_client import Histogram

from pipeline import metrics
from pipeline.api.handlers import Api, BadRequest, NotFound, Reply
from pipeline.api.viewer import mount_viewer

log = logging.getLogger(__name__)
Handler = Callable[[Mapping[str, str], Mapping[str, str]], Awaitable[Reply]]


def _json(
    body: Mapping[str, object], status: int, headers: Mapping[str, str] | None = None
) -> aiohttp_web.Response:
    # orjson: a fifth of json.dumps' time, bytes ready to send, the same JSON values.
    return aiohttp_web.Response(
        body=orjson.dumps(body),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


@cache
def _duration(route: str, method: str, status: int) -> Histogram:
    # The labelled child, kept: labels() takes a lock and builds its key on every call.
    return metrics.HTTP_DURATION.labels(route, method, str(status))


# What a 401 must name (RFC 9110 15.5.2): the scheme the routes take.
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _authorised(request: aiohttp_web.Request, token: str) -> bool:
    # The scheme is case-insensitive (RFC 9110 11.1), the token exact. aiohttp keeps
    # bytes that are no UTF-8 as surrogates: encoded back as they came, they never match.
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given_bytes = given.encode("utf-8", "surrogateescape")
    return scheme.lower() == "bearer" and hmac.compare_digest(given_bytes, token.encode())


def _handler(
    route: str, handlers: dict[str, Handler], token: str
) -> Callable[[aiohttp_web.Request], Awaitable[aiohttp_web.Response]]:
    """An aiohttp handler answering ``handlers``' methods, and HEAD where GET is one (as
    HTTP asks: load balancers probe with it); any other method is a JSON 405 with the
    Allow header HTTP asks of one."""
    served = {m.upper() for m in handlers} | ({"HEAD"} if "get" in handlers else set())
    allow = {"Allow": ", ".join(sorted(served))}

    async def respond(request: aiohttp_web.Request) -> aiohttp_web.Response:
        method = request.method.lower()
        if method == "head" and "get" in handlers:
            method = "get"  # aiohttp sends the headers of the answer without its body
        started = time.perf_counter()
        headers = None
        try:
            if token and not _authorised(request, token):
                status, body = 401, {"error": "missing or wrong bearer token"}
                headers = _CHALLENGE
            elif method not in handlers:
                status, body = 405, {"error": f"{request.method} is not allowed on {route}"}
                headers = allow
            else:
                status, body = await handlers[method](_query(request), request.match_info)
        except BadRequest as exc:
            status, body = 400, {"error": str(exc)}
        except NotFound as exc:
            status, body = 404, {"error": str(exc)}
        except Exception:
            # Internals stay in the log, not in the answer.
            log.exception("%s %s failed", request.method, route)
            status, body = 503, {"error": "the request could not be served now; retry"}
        _duration(route, request.method, status).observe(time.perf_counter() - started)
        return _json(body, status, headers)

    return respond


def _query(request: aiohttp_web.Request) -> dict[str, str]:
    """The query's parameters, each given at most once: of two values, which was meant
    would be a guess."""
    query = dict(request.query)
    if len(query) < len(request.query):
        name = next(n for n in query if len(request.query.getall(n)) > 1)
        given = len(request.query.getall(name))
        raise BadRequest(f"query parameter {name!r} is given {given} times, at most once")
    return query


@aiohttp_web.middleware
async def json_errors(
    request: aiohttp_web.Request,
    handler: Callable[[aiohttp_web.Request], Awaitable[aiohttp_web.StreamResponse]],
) -> aiohttp_web.StreamResponse:
    """What the router answers itself (no such route, a method no view serves) in the
    API's JSON error shape rather than aiohttp's text."""
    try:
        return await handler(request)
    except aiohttp_web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _json(
            {"error": f"{request.method} {request.path}: {exc.reason}"},
            exc.status,
            {k: v for k, v in exc.headers.items() if k == "Allow"},
        )


# prometheus_client's generate_latest writes the classic text format. Prometheus 3 fails a
# scrape whose Content-Type lacks the version (unless the job sets a fallback protocol).
EXPOSITION_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_view(
    exposition: Callable[[], bytes],
) -> Callable[[aiohttp_web.Request], Awaitable[aiohttp_web.Response]]:
    async def view(request: aiohttp_web.Request) -> aiohttp_web.Response:
        # The header as written: aiohttp's content_type= takes no parameters but charset.
        return aiohttp_web.Response(body=exposition(), headers={"Content-Type": EXPOSITION_TYPE})

    return view


def mount(
    app: faust.App,
    api: Api,
    *,
    token: str,
    ready: Callable[[], Mapping[str, bool]],
    why: Callable[[], Mapping[str, str]],
    exposition: Callable[[], bytes],
) -> None:
    def get(fn: Callable[[Mapping[str, str]], Awaitable[Reply]]) -> dict[str, Handler]:
        return {"get": lambda query, match: fn(query)}

    async def healthz(query: Mapping[str, str]) -> Reply:
        return 200, {"status": "alive"}

    async def readyz(query: Mapping[str, str]) -> Reply:
        checks = dict(ready())
        if all(checks.values()):
            return 200, {"ready": True, **checks}
        said = why()  # the failing checks a sentence explains
        return 503, {"ready": False, **checks, **({"why": dict(said)} if said else {})}

    routes: dict[str, tuple[dict[str, Handler], str]] = {
        "/v1/profiles": (
            {
                "get": lambda query, match: api.profile_by_identity(query),
                "delete": lambda query, match: api.delete_profile(query),
            },
            token,
        ),
        "/v1/profiles/{profile_id}": (
            {"get": lambda query, match: api.profile_by_id(match["profile_id"], query)},
            token,
        ),
        "/v1/profiles/{profile_id}/attributes": (
            {"get": lambda query, match: api.attribute_sources(match["profile_id"], query)},
            token,
        ),
        "/v1/graph": (get(api.graph), token),
        "/v1/explain": (get(api.explain), token),
        "/v1/identities": ({"delete": lambda query, match: api.delete_identity(query)}, token),
        "/v1/namespaces": (get(api.namespaces), token),
        "/v1/quarantine": (get(api.quarantined), token),
        "/v1/quarantine/release": ({"post": lambda query, match: api.release(query)}, token),
        "/v1/overview": (get(api.overview), token),
        "/healthz": (get(healthz), ""),
        "/readyz": (get(readyz), ""),
    }
    # Straight on Faust's aiohttp application: its View dispatch (and the sensors it
    # feeds) cost a seventh of a lookup; cdp_http_request_duration_seconds measures these.
    web_app: aiohttp_web.Application = app.web.web_app  # type: ignore[attr-defined]
    web_app.middlewares.append(json_errors)
    for route, (handlers, route_token) in routes.items():
        web_app.router.add_route("*", route, _handler(route, handlers, route_token))

    web_app.router.add_get("/metrics", metrics_view(exposition))
    # The viewer's files hold no data: they load without the token, then ask for it.
    mount_viewer(web_app)
