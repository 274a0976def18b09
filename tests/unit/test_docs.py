"""README and schemas state what the code does (CONTRACT: they must say the same)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from pipeline import metrics
from pipeline.ingest.reasons import REJECT_REASONS
from pipeline.records import BROKER_MAX_RECORD_BYTES, OUTPUT_MAX_RECORD_BYTES
from pipeline.settings import VARIABLES

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
CONTRACT = (ROOT / "docs" / "contract.md").read_text()


def test_every_setting_is_documented_with_its_default() -> None:
    for v in VARIABLES:
        assert f"| `{v.name}` | `{v.default}` | {v.doc} |" in README, v.name  # `cdp config`'s row


def test_readme_shows_the_two_commands_first() -> None:
    first_block = README.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def test_every_metric_is_listed_in_the_readme() -> None:
    names = {m.describe()[0].name for m in metrics.REGISTRY._collector_to_names}  # type: ignore[attr-defined]
    for name in names:
        assert name in README, name


def test_every_dead_letter_reason_is_documented() -> None:
    for reason in REJECT_REASONS:
        assert f"`{reason}`" in README, reason


def test_profile_schema_requires_the_contract_fields() -> None:
    schema = json.loads((ROOT / "schemas" / "profile.schema.json").read_text())
    assert set(schema["required"]) == {
        "profile_id",
        "identities",
        "attributes",
        "events",
        "updated_at",
        "version",
    }


def test_the_contract_channel_pattern_is_the_one_the_worker_uses() -> None:
    from pipeline.settings import Topics

    assert Topics("cdp.").events_pattern == r"^cdp\.events\.[a-z0-9_-]+$"
    assert re.match(Topics("cdp.").events_pattern, "cdp.events.kiosk")


def test_the_contract_lists_every_setting_with_its_default() -> None:
    listed = re.findall(r"^\| `(CDP_[A-Z_]+)` \| `([^`]*)` \|$", CONTRACT, re.M)
    assert listed == [(v.name, v.default) for v in VARIABLES]


def test_the_contract_names_every_topic_the_pipeline_uses() -> None:
    from pipeline.settings import Topics

    topics = Topics("cdp.")
    owned = {v for k, v in vars(topics).items() if isinstance(v, str) and k != "prefix"}
    table = CONTRACT.split("## 2. Topics")[1].split("## 3.")[0]
    for name in owned:
        assert f"`{name}`" in table, name


def test_the_contract_lists_the_default_namespaces_as_configured() -> None:
    from pipeline.identity.config import load

    rows = re.findall(r"^\| `([a-z_]+)` \| (\w+) \| (yes|no) \| (\d+) \|$", CONTRACT, re.M)
    configured = [
        (n.name, n.kind, "yes" if n.unique else "no", str(n.priority))
        for n in sorted(load().namespaces.values(), key=lambda n: n.priority)
    ]
    assert rows == configured


def test_the_contract_routes_are_the_documented_api() -> None:
    import yaml

    paths = set(yaml.safe_load((ROOT / "schemas" / "openapi.yaml").read_text())["paths"])
    section = CONTRACT.split("## 6. HTTP")[1].split("## 7.")[0]
    named = {p.split("?")[0] for p in re.findall(r"`(?:GET|POST|DELETE) (/[^`]*)`", section)}
    assert named == paths


def test_docs_and_readme_link_nothing_outside_the_repository() -> None:
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text()
        assert "../shared" not in text and "shared/spec" not in text, doc
        for target in re.findall(r"\]\(([^)#]+)", text):
            if "://" not in target:
                assert (doc.parent / target).exists(), f"{doc.name}: {target}"


def test_every_route_of_the_openapi_document_is_in_the_readme() -> None:
    doc = yaml.safe_load((ROOT / "schemas" / "openapi.yaml").read_text())
    for route in doc["paths"]:
        assert route in README, route


def test_the_documented_record_sizes_are_the_ones_configured() -> None:
    for text in (README, CONTRACT):
        assert f"message.max.bytes={BROKER_MAX_RECORD_BYTES}" in text
        assert f"max.message.bytes={OUTPUT_MAX_RECORD_BYTES}" in text
