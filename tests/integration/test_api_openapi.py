"""schemas/openapi.yaml against a real worker: every route answers every documented status
(but 503) with a body its documented schema accepts, and malformed queries get a JSON
error, never a 5xx."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from cdp_tools.workerproc import WorkerProcess
from tests.integration.support import envelope, ident, send, settle

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
TOKEN = "s3cret-token"
METHODS = ("get", "delete", "post", "put", "patch")


class OpenApi:
    """The document, with its response schemas as jsonschema validators."""

    def __init__(self, path: Path = SCHEMAS / "openapi.yaml") -> None:
        self.uri = path.as_uri()
        self.doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        resources = [(self.uri, Resource.from_contents(self.doc, DRAFT202012))]
        for schema_file in SCHEMAS.glob("*.schema.json"):
            resource = Resource.from_contents(json.loads(schema_file.read_text(encoding="utf-8")))
            resources += [(schema_file.as_uri(), resource), (resource.id() or "", resource)]
        self.registry: Registry[Any] = Registry().with_resources(resources)

    def operations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for route, item in self.doc["paths"].items():
            for method, operation in item.items():
                if method in METHODS:
                    yield route, method, operation

    def statuses(self, route: str, method: str) -> set[int]:
        return {int(s) for s in self.doc["paths"][route][method]["responses"]}

    def response(self, route: str, method: str, status: int) -> tuple[str, dict[str, Any]]:
        """The JSON pointer of a response object (an OpenAPI ``$ref`` followed) and it."""
        escaped = route.replace("~", "~0").replace("/", "~1")
        pointer = f"/paths/{escaped}/{method}/responses/{status}"
        answer = self.doc["paths"][route][method]["responses"][str(status)]
        if "$ref" in answer:
            pointer = answer["$ref"].removeprefix("#")
            _, _, kind, name = pointer.split("/")
            answer = self.doc["components"][kind][name]
        return pointer, answer

    def validator(self, route: str, method: str, status: int, media: str) -> Any:
        pointer, answer = self.response(route, method, status)
        assert media in answer["content"], f"{method} {route} {status} is not {media}"
        ref = f"{self.uri}#{pointer}/content/{media.replace('/', '~1')}/schema"
        return jsonschema.Draft202012Validator(
            {"$ref": ref},
            registry=self.registry,
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )


@cache
def openapi() -> OpenApi:
    return OpenApi()


def call(
    worker: WorkerProcess, method: str, target: str, token: str | None = TOKEN
) -> tuple[int, str, bytes]:
    request = urllib.request.Request(worker.url + target, method=method.upper())
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers.get_content_type(), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get_content_type(), error.read()


# --- the document itself (no worker needed) ------------------------------------------


def test_the_document_covers_contract_section_6() -> None:
    doc = openapi().doc
    assert doc["openapi"].startswith("3.1")
    assert {(r, m) for r, m, _ in openapi().operations()} == {
        ("/v1/profiles", "get"),
        ("/v1/profiles/{profile_id}", "get"),
        ("/v1/graph", "get"),
        ("/v1/explain", "get"),
        ("/v1/identities", "delete"),
        ("/v1/quarantine", "get"),
        ("/v1/quarantine/release", "post"),
        ("/v1/profiles", "delete"),
        ("/v1/profiles/{profile_id}/attributes", "get"),
        ("/v1/namespaces", "get"),
        ("/v1/overview", "get"),
        ("/ui/", "get"),
        ("/metrics", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    }
    assert doc["components"]["securitySchemes"]["bearer"] == {
        **doc["components"]["securitySchemes"]["bearer"],
        "type": "http",
        "scheme": "bearer",
    }
    policy = doc["components"]["parameters"]["merge_policy"]["schema"]
    assert policy["enum"] == ["timestamp", "source_precedence"]
    for route, method, _ in openapi().operations():
        for status in openapi().statuses(route, method):
            if status >= 400 and route != "/readyz":  # not ready is an answer, not an error
                schema = openapi().response(route, method, status)[1]["content"]
                assert schema["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"
                }, f"{method} {route} {status}"


def test_every_schema_in_the_document_is_valid_json_schema() -> None:
    for route, method, _ in openapi().operations():
        for status in openapi().statuses(route, method):
            _, answer = openapi().response(route, method, status)
            for media in answer["content"]:
                validator = openapi().validator(route, method, status, media)
                resolved = validator._resolver.lookup(validator.schema["$ref"]).contents
                jsonschema.Draft202012Validator.check_schema(resolved)


def test_the_profile_response_is_the_published_profile_schema() -> None:
    validator = openapi().validator("/v1/profiles", "get", 200, "application/json")
    resolved = validator._resolver.lookup(validator.schema["$ref"]).contents
    assert resolved == {"$ref": "./profile.schema.json"}
    profile = validator._resolver.lookup((SCHEMAS / "profile.schema.json").as_uri()).contents
    assert profile == json.loads((SCHEMAS / "profile.schema.json").read_text(encoding="utf-8"))


# --- a real worker --------------------------------------------------------------------


def _feed(s: Any) -> None:
    send(
        s,
        [
            (
                "web",
                envelope(
                    ident("ecid", "OA-COOKIE"),
                    ident("email", "oa@example.com"),
                    at=1,
                    event={"type": "web.login"},
                ),
            ),
            (
                "crm",
                envelope(
                    ident("crm_id", "OA-1", True),
                    ident("email", "oa@example.com"),
                    at=2,
                    kind="record",
                    attributes={"firstName": "Oa", "loyalty": {"tier": "gold"}},
                ),
            ),
            ("pos", envelope(ident("crm_id", "OB-1"), at=3, kind="record")),
            ("pos", envelope(ident("crm_id", "OC-1"), at=4, kind="record")),
        ],
    )
    settle(s)


# (method, route template, target, expected status)
CASES: list[tuple[str, str, str, int]] = [
    ("get", "/v1/profiles", "/v1/profiles?namespace=crm_id&id=OA-1", 200),
    (
        "get",
        "/v1/profiles",
        "/v1/profiles?namespace=email&id=OA@example.com&merge_policy=source_precedence",
        200,
    ),
    ("get", "/v1/profiles", "/v1/profiles?namespace=crm_id&id=NOBODY", 404),
    ("get", "/v1/profiles", "/v1/profiles?namespace=shoe&id=1", 400),
    ("get", "/v1/profiles", "/v1/profiles?namespace=crm_id", 400),
    ("get", "/v1/profiles/{profile_id}", "/v1/profiles/p_ffffffffff", 404),
    ("get", "/v1/profiles/{profile_id}", "/v1/profiles/" + "p" * 65, 400),
    ("get", "/v1/profiles/{profile_id}", "/v1/profiles/p_0000000001?merge_policy=x", 400),
    ("get", "/v1/graph", "/v1/graph?namespace=crm_id&id=OA-1", 200),
    ("get", "/v1/graph", "/v1/graph?namespace=crm_id&id=NOBODY", 404),
    ("get", "/v1/graph", "/v1/graph?namespace=email&id=not-an-email", 400),
    ("get", "/v1/explain", "/v1/explain?a=crm_id:OA-1&b=ecid:OA-COOKIE", 200),
    ("get", "/v1/explain", "/v1/explain?a=crm_id:OA-1&b=crm_id:OB-1", 200),
    ("get", "/v1/explain", "/v1/explain?a=crm_id:OA-1&b=crm_id:NOBODY", 200),
    ("get", "/v1/explain", "/v1/explain?a=crm_id-OA-1&b=crm_id:OB-1", 400),
    ("delete", "/v1/identities", "/v1/identities?namespace=crm_id&id=OC-1&request_id=r1", 200),
    ("delete", "/v1/identities", "/v1/identities?namespace=crm_id&id=NEVER-SEEN", 200),
    ("delete", "/v1/identities", "/v1/identities?namespace=crm_id", 400),
    ("get", "/v1/quarantine", "/v1/quarantine", 200),
    ("post", "/v1/quarantine/release", "/v1/quarantine/release?namespace=ecid&id=OA-COOKIE", 200),
    ("post", "/v1/quarantine/release", "/v1/quarantine/release?namespace=ecid", 400),
    ("delete", "/v1/profiles", "/v1/profiles?namespace=crm_id&id=OB-1&request_id=r2", 200),
    ("delete", "/v1/profiles", "/v1/profiles?namespace=email&id=x", 400),
    ("get", "/v1/profiles/{profile_id}/attributes", "/v1/profiles/p_ffffffffff/attributes", 404),
    (
        "get",
        "/v1/profiles/{profile_id}/attributes",
        "/v1/profiles/p_1/attributes?merge_policy=",
        400,
    ),
    ("get", "/v1/namespaces", "/v1/namespaces", 200),
    ("get", "/v1/overview", "/v1/overview", 200),
    ("get", "/ui/", "/ui/", 200),
    ("get", "/healthz", "/healthz", 200),
    ("get", "/readyz", "/readyz", 200),
    ("get", "/metrics", "/metrics", 200),
]


@pytest.mark.integration
def test_every_route_answers_as_documented(pipeline_env, start_worker):
    worker = start_worker(CDP_API_TOKEN=TOKEN)
    _feed(pipeline_env.settings)
    status, _, body = call(worker, "get", "/v1/profiles?namespace=crm_id&id=OA-1")
    assert status == 200
    profile_id = json.loads(body)["profile_id"]
    cases = [
        *CASES,
        ("get", "/v1/profiles/{profile_id}", f"/v1/profiles/{profile_id}", 200),
        (
            "get",
            "/v1/profiles/{profile_id}/attributes",
            f"/v1/profiles/{profile_id}/attributes?merge_policy=source_precedence",
            200,
        ),
    ]
    # Without a token, every route but the probes and the metrics is a 401.
    cases += [(m, r, t, 401) for m, r, t, _ in CASES if r.startswith("/v1/")]
    seen: set[tuple[str, str, int]] = set()
    for method, route, target, expected in cases:
        token = None if expected == 401 else TOKEN
        status, media, body = call(worker, method, target, token)
        assert status == expected, (method, target, status, body[:300])
        assert status in openapi().statuses(route, method), (method, route, status)
        decoded = body.decode() if media.startswith("text/") else json.loads(body)
        errors = list(openapi().validator(route, method, status, media).iter_errors(decoded))
        assert not errors, (method, target, [e.message for e in errors])
        seen.add((route, method, status))
    # Every documented status was produced, but 503 (Redis or Kafka down: tests/faults).
    documented = {
        (route, method, status)
        for route, method, _ in openapi().operations()
        for status in openapi().statuses(route, method)
        if status != 503
    }
    assert documented - seen == set()


MAX_TARGET = 8000  # aiohttp reads request lines up to 8190 bytes
_ROUTES = [
    "/v1/profiles",
    "/v1/graph",
    "/v1/explain",
    "/v1/identities",
    "/v1/profiles/{}",
    "/v1/profiles/{}/attributes",
    "/v1/namespaces",
    "/v1/quarantine",
    "/v1/overview",
]
_NAMES = ["namespace", "id", "a", "b", "merge_policy", "request_id"]
_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["crm_id", "email", "phone", "ecid", "crm_id:", ":", "a:b:c", "null"]),
    st.builds(lambda ns, v: f"{ns}:{v}", st.sampled_from(["crm_id", "email", "x"]), st.text()),
    st.integers(min_value=60, max_value=3000).map(lambda n: "x" * n),
)
_queries = st.dictionaries(st.one_of(st.sampled_from(_NAMES), st.text(max_size=8)), _values)
_raw_queries = st.text(
    alphabet=st.sampled_from("=&%:;?#+ aZ0\x00\u00e9\U0001f600"), max_size=40
).map(lambda q: urllib.parse.quote(q, safe="=&%:;+"))


@pytest.mark.integration
def test_malformed_queries_never_get_a_5xx(pipeline_env, start_worker):
    worker = start_worker(CDP_API_TOKEN=TOKEN)
    _feed(pipeline_env.settings)

    @settings(
        max_examples=400,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        route=st.sampled_from(_ROUTES),
        method=st.sampled_from(METHODS),
        segment=st.text(max_size=80),
        query=st.one_of(_queries.map(urllib.parse.urlencode), _raw_queries),
        token=st.sampled_from([TOKEN, TOKEN, TOKEN, None, "wrong"]),
    )
    def probe(route: str, method: str, segment: str, query: str, token: str | None) -> None:
        target = route.format(urllib.parse.quote(segment, safe=""))
        target = f"{target}?{query}"[:MAX_TARGET]  # longer: the HTTP server's own 400
        status, media, body = call(worker, method, target, token)
        assert status < 500, (method, target, query, status, body[:300])
        assert media == "application/json", (method, target, query, media)
        answer = json.loads(body)
        if status != 200:
            assert isinstance(answer.get("error"), str) and answer["error"], answer

    probe()
    # A request line past aiohttp's limit never reaches the API: a 4xx all the same.
    status, _, _ = call(worker, "get", "/v1/profiles?namespace=crm_id&id=" + "x" * 9000)
    assert 400 <= status < 500
