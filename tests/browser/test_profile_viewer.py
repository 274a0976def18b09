"""The profile viewer (/ui/) in headless chromium against a worker that processed the demo
sample: what a person sees and does on the page, checked against the JSON API."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from tests.browser.conftest import TOKEN, Viewer, wait
from tests.integration.support import envelope, ident

pytestmark = pytest.mark.integration

# Browser log entries of the worker's expected answers: the token probe's 401 and the
# bad queries' 400/404 (chromium logs every 4xx a fetch gets).
EXPECTED_NETWORK = ("status of 400", "status of 401", "status of 404")


@pytest.fixture(scope="module")
def page(viewer: Viewer, browser: WebDriver) -> WebDriver:
    """The page, given the token once (it stays in the tab's session storage)."""
    browser.get(viewer.url())
    token = wait(browser, lambda d: d.find_element(By.ID, "token"), "the token prompt")
    wait(browser, lambda d: token.is_displayed(), "the token prompt shown")
    token.send_keys(TOKEN, Keys.ENTER)
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#namespace option"), "the namespaces")
    return browser


def text(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


# Read in one script: the page may re-render (live updates) between two WebDriver calls.
ROWS = """return [...document.querySelectorAll(arguments[0] + ' tbody tr')]
  .filter((row) => row.getClientRects().length)
  .map((row) => [...row.querySelectorAll('td, th')].map((cell) => cell.innerText.trim()));"""


def rows(driver: WebDriver, css: str) -> list[list[str]]:
    """The cells of the displayed rows of a table's body."""
    return list(driver.execute_script(ROWS, css))


def open_profile(driver: WebDriver, viewer: Viewer, query: dict[str, str]) -> str:
    """Opens the page on a query (as a shared link would) and waits for the profile."""
    driver.get(viewer.url("?" + urllib.parse.urlencode(query)))
    return str(wait(driver, lambda d: text(d, "#profile-id"), f"the profile of {query}"))


def leaves(node: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in node.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def shown(value: Any) -> str:
    """An attribute value as the page writes it (strings bare, the rest as JSON)."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def test_lookup_by_a_mixed_case_email_shows_its_identities_and_attributes(
    page: WebDriver, viewer: Viewer, artefacts: Path
) -> None:
    person = viewer.sample.people[1]  # shares the family tablet, which follows them
    typed = f"  {person.email.title()} "
    Select(page.find_element(By.ID, "namespace")).select_by_value("email")
    field = page.find_element(By.ID, "value")
    field.clear()
    field.send_keys(typed, Keys.ENTER)  # the keyboard alone does it
    wait(page, lambda d: text(d, "#profile-id"), "the profile")

    status, doc = viewer.api(f"/v1/profiles?namespace=email&id={person.email}")
    assert status == 200
    assert text(page, "#profile-id") == doc["profile_id"]
    assert [r[:2] for r in rows(page, "#identities")] == [
        [i["namespace"], i["id"]] for i in doc["identities"]
    ]
    attributes = {r[0]: r[1] for r in rows(page, "#attributes")}
    expected = dict(leaves(doc["attributes"]))
    assert expected and {p: attributes.get(p) for p in expected} == {
        p: shown(v) for p, v in expected.items()
    }
    assert text(page, "#profile-version") == str(doc["version"])
    query = urllib.parse.parse_qs(urllib.parse.urlparse(page.current_url).query)
    assert query == {"namespace": ["email"], "id": [typed]}

    page.set_window_size(1400, page.execute_script("return document.body.scrollHeight") + 40)
    page.save_screenshot(str(artefacts / "profile-viewer.png"))
    page.set_window_size(1400, 1100)


def test_the_graph_has_a_node_per_identity_and_a_row_per_node(
    page: WebDriver, viewer: Viewer
) -> None:
    person = viewer.sample.people[1]
    open_profile(page, viewer, {"namespace": "crm_id", "id": person.crm_id})
    _, doc = viewer.api(f"/v1/profiles?namespace=crm_id&id={person.crm_id}")
    _, graph = viewer.api(f"/v1/graph?namespace=crm_id&id={person.crm_id}")
    keys = {f"{i['namespace']}:{i['id']}" for i in doc["identities"]}
    nodes = page.execute_script("return viewer.view.cy.nodes().map((n) => n.id())")
    assert set(nodes) == keys and len(nodes) == len(keys)
    assert page.execute_script("return viewer.view.cy.edges().length") == len(graph["links"])
    assert {f"{r[1]}:{r[2]}" for r in rows(page, "#graph-identities")} == keys

    Select(page.find_element(By.ID, "ns-filter")).select_by_value("device_id")
    shown_rows = rows(page, "#graph-identities")
    assert shown_rows and {r[1] for r in shown_rows} == {"device_id"}
    Select(page.find_element(By.ID, "ns-filter")).select_by_value("")


def test_clicking_an_edge_shows_its_event(page: WebDriver, viewer: Viewer) -> None:
    person = viewer.sample.people[1]
    open_profile(page, viewer, {"namespace": "crm_id", "id": person.crm_id})
    _, graph = viewer.api(f"/v1/graph?namespace=crm_id&id={person.crm_id}")
    # The longest edge: its middle is furthest from any node and its label.
    edge = page.execute_script(
        """const cy = viewer.view.cy;
        const length = (e) => {
          const [s, t] = [e.renderedSourceEndpoint(), e.renderedTargetEndpoint()];
          return Math.hypot(s.x - t.x, s.y - t.y);
        };
        const e = cy.edges().max(length).ele;
        const box = cy.container().getBoundingClientRect();
        const mid = e.renderedMidpoint();
        return {source: e.source().id(), target: e.target().id(),
                x: mid.x - box.width / 2, y: mid.y - box.height / 2};"""
    )
    container = page.find_element(By.ID, "graph")
    page.execute_script("arguments[0].scrollIntoView({block: 'center'})", container)
    ActionChains(page).move_to_element_with_offset(
        container, round(edge["x"]), round(edge["y"])
    ).click().perform()
    link = next(
        ln
        for ln in graph["links"]
        if {f"{ln['a']['namespace']}:{ln['a']['id']}", f"{ln['b']['namespace']}:{ln['b']['id']}"}
        == {edge["source"], edge["target"]}
    )
    wait(page, lambda d: link["event"]["event_id"] in text(d, "#evidence"), "the link's evidence")
    evidence = text(page, "#evidence")
    assert link["event"]["topic"] in evidence
    assert f"Partition\n{link['event']['partition']}" in evidence
    assert f"Offset\n{link['event']['offset']}" in evidence


def test_picking_two_identities_asks_explain_and_highlights_the_path(
    page: WebDriver, viewer: Viewer
) -> None:
    person = viewer.sample.people[1]
    open_profile(page, viewer, {"namespace": "crm_id", "id": person.crm_id})
    a, b = f"crm_id:{person.crm_id}", "device_id:dev-family-tablet-0001"
    for key in (a, b):
        page.find_element(By.CSS_SELECTOR, f'#graph-identities tr[data-key="{key}"] input').click()
    _, answer = viewer.api(f"/v1/explain?a={a}&b={b}")
    assert answer["linked"]
    wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#explain-path li"), "the path")
    assert len(page.find_elements(By.CSS_SELECTOR, "#explain-path li")) == len(answer["path"])
    on_path = page.execute_script("return viewer.view.cy.edges('.on-path').length")
    assert on_path == len(answer["path"])


def test_the_policy_switch_changes_a_winning_attribute(page: WebDriver, viewer: Viewer) -> None:
    viewer.send(
        (
            "crm",
            envelope(
                ident("crm_id", "UI-POLICY-1"), at=1, kind="record", attributes={"tier": "gold"}
            ),
        ),
        ("web", envelope(ident("crm_id", "UI-POLICY-1"), at=2, attributes={"tier": "bronze"})),
    )
    viewer.wait_api(
        "/v1/profiles?namespace=crm_id&id=UI-POLICY-1",
        lambda status, doc: status == 200 and doc["events"]["count"] == 2,
        "both events stitched",
    )
    open_profile(page, viewer, {"namespace": "crm_id", "id": "UI-POLICY-1"})

    def tier(d: WebDriver) -> list[str]:
        return next((r[1:3] for r in rows(d, "#attributes") if r[0] == "tier"), [])

    assert tier(page) == ["bronze", "web"]  # timestamp: the latest event wins
    page.find_element(By.CSS_SELECTOR, '#policy input[value="source_precedence"]').click()
    wait(page, lambda d: tier(d) == ["gold", "crm"], "the crm value winning")
    assert "merge_policy=source_precedence" in page.current_url
    page.find_element(By.CSS_SELECTOR, 'tr[data-path="tier"] button').click()
    assert [r[1:3] for r in rows(page, "#attributes") if r[0] == "lost"] == [["bronze", "web"]]


def test_an_event_produced_while_the_page_is_open_appears_without_reload(
    page: WebDriver, viewer: Viewer
) -> None:
    person = viewer.sample.people[3]
    open_profile(page, viewer, {"namespace": "crm_id", "id": person.crm_id})
    page.execute_script("window.sameDocument = true")
    event = envelope(
        ident("crm_id", person.crm_id),
        at=3540,  # a minute ago (T0 is an hour ago): the newest, first in its timeline
        event={"type": "ui.live-check"},
    )
    viewer.send(("web", event))
    selector = f'#timeline li[data-event-id="{event["event_id"]}"]'
    wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, selector), "the new event")
    assert page.execute_script("return window.sameDocument") is True
    assert ["ui.live-check", "1"] in rows(page, "#by-type")
    assert "Updated to version" in text(page, "#live")


def test_a_merge_is_seen_live(page: WebDriver, viewer: Viewer) -> None:
    viewer.send(("web", envelope(ident("ecid", "ui-merge-cookie"), at=10)))
    older = viewer.wait_api(
        "/v1/profiles?namespace=ecid&id=ui-merge-cookie", lambda s, _: s == 200, "the cookie"
    )
    viewer.send(
        (
            "crm",
            envelope(
                ident("crm_id", "UI-MERGE-1"),
                ident("email", "ui.merge@example.org"),
                at=11,
                kind="record",
            ),
        )
    )
    viewer.wait_api(
        "/v1/profiles?namespace=email&id=ui.merge@example.org",
        lambda s, _: s == 200,
        "the crm profile",
    )
    shown_id = open_profile(page, viewer, {"namespace": "email", "id": "ui.merge@example.org"})
    assert shown_id != older["profile_id"]

    viewer.send(
        (
            "web",
            envelope(
                ident("ecid", "ui-merge-cookie"), ident("email", "ui.merge@example.org"), at=12
            ),
        )
    )
    wait(page, lambda d: "merged" in text(d, "#live"), "the merge announced")
    wait(
        page,
        lambda d: "ecid:ui-merge-cookie" in {f"{r[0]}:{r[1]}" for r in rows(d, "#identities")},
        "the joined cookie",
    )
    assert text(page, "#profile-id") == older["profile_id"]  # the older id survives


def test_delete_with_the_token_shows_the_receipt_and_the_profile_is_gone(
    page: WebDriver, viewer: Viewer
) -> None:
    person = viewer.sample.people[2]
    lookup = f"/v1/profiles?namespace=crm_id&id={person.crm_id}"
    open_profile(page, viewer, {"namespace": "crm_id", "id": person.crm_id})

    page.find_element(By.ID, "delete-profile").click()
    wait(
        page,
        lambda d: d.find_element(By.ID, "confirm").get_attribute("open") is not None,
        "the dialog",
    )
    page.find_element(By.CSS_SELECTOR, '#confirm button[value="cancel"]').click()
    assert viewer.api(lookup)[0] == 200, "cancelled: nothing deleted"

    page.find_element(By.ID, "delete-profile").click()
    wait(page, lambda d: d.find_element(By.ID, "confirm-delete").is_displayed(), "the dialog")
    page.find_element(By.ID, "confirm-delete").click()
    receipt = wait(page, lambda d: text(d, "#receipt-panel"), "the receipt")
    assert "Status\ndeleted" in receipt and "delete_profile" in receipt
    assert f"crm_id:{person.crm_id}" in receipt
    assert viewer.api(lookup)[0] == 404
    wait(page, lambda d: "no longer exists" in text(d, "#live"), "the page saying it is gone")


def test_a_bad_query_shows_an_error_message_never_a_blank_page(
    page: WebDriver, viewer: Viewer
) -> None:
    for query, expected in [
        (
            "?namespace=email&id=not-an-email",
            viewer.api("/v1/profiles?namespace=email&id=not-an-email"),
        ),
        ("?namespace=shoe_size&id=42", viewer.api("/v1/profiles?namespace=shoe_size&id=42")),
        ("?profile=p_ffffffffff", viewer.api("/v1/profiles/p_ffffffffff")),
    ]:
        status, body = expected
        assert status in (400, 404)
        page.get(viewer.url(query))
        message = wait(
            page,
            lambda d: d.find_element(By.ID, "message").is_displayed() and text(d, "#message"),
            "an error",
        )
        assert body["error"] in message
        assert page.find_element(By.ID, "lookup").is_displayed()
        assert not page.find_element(By.ID, "profile").is_displayed()


def test_the_overview_shows_the_workers_counts(page: WebDriver, viewer: Viewer) -> None:
    page.get(viewer.url())
    _, overview = viewer.api("/v1/overview")
    wait(
        page, lambda d: text(d, "#overview-profiles .big") == str(overview["profiles"]), "the count"
    )
    table = {r[0]: r[1] for r in rows(page, "#overview-body table:nth-of-type(1)")}
    assert table == {ns: str(n) for ns, n in overview["identities"]["by_namespace"].items()}


def test_without_a_token_on_the_worker_the_page_offers_no_delete(
    page: WebDriver, viewer: Viewer
) -> None:
    # Its own consumer group: it serves the same Redis without taking the first's partitions.
    open_worker = viewer.start_worker(CDP_APP_ID=viewer.settings.app_id + "-open")
    person = viewer.sample.people[1]
    page.get(f"{open_worker.url}/ui/?namespace=crm_id&id={person.crm_id}")
    wait(page, lambda d: text(d, "#profile-id"), "the profile, with no token asked")
    assert not page.find_element(By.ID, "auth").is_displayed()
    assert not page.find_element(By.ID, "delete-profile").is_displayed()
    assert page.find_elements(By.CSS_SELECTOR, "#identities button") == []
    assert "Deleting from this page is off" in text(page, "#privacy-note")


def test_no_console_errors(page: WebDriver) -> None:
    """Last: the browser's log of the whole module (reading it empties it)."""
    errors = [
        entry
        for entry in page.get_log("browser")
        if entry["level"] == "SEVERE"
        and not (
            entry["source"] == "network" and any(s in entry["message"] for s in EXPECTED_NETWORK)
        )
    ]
    assert errors == []
