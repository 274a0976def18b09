"""Logging set-up: plain text for people, one JSON object per line for machines."""

from __future__ import annotations

import json
import logging
from typing import Any

from pipeline.timefmt import iso_ms

# Fields a log call may pass with ``extra=`` that the JSON lines carry (event id on errors).
_CONTEXT = ("event_id", "topic", "partition", "offset", "reason")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": iso_ms(int(record.created * 1000)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _CONTEXT:
            value = getattr(record, name, None)
            if value not in (None, ""):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def logging_config(fmt: str, level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict (Faust's worker applies it)."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if fmt == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "default"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }
