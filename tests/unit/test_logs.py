"""Structured logs: one JSON object per line, with the event's coordinates on errors."""

from __future__ import annotations

import json
import logging
import logging.config

from pipeline.logs import JsonFormatter, logging_config


def test_json_lines_carry_the_event_id_and_origin() -> None:
    record = logging.LogRecord(
        "pipeline.x", logging.WARNING, __file__, 1, "dead letter %s", ("why",), None
    )
    record.event_id, record.topic, record.offset = "e-1", "cdp.events.web", 7
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "dead letter why"
    assert (line["level"], line["event_id"], line["topic"], line["offset"]) == (
        "warning",
        "e-1",
        "cdp.events.web",
        7,
    )
    assert line["ts"].endswith("Z")


def test_logging_config_is_valid_for_both_formats() -> None:
    for fmt in ("json", "text"):
        logging.config.dictConfig(logging_config(fmt, "info"))
    logging.config.dictConfig(logging_config("text", "warning"))
