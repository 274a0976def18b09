"""Validation against the documented JSON Schemas in ``schemas/``, with the first error
turned into a reason code and a sentence a person can act on."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from pipeline.model import Rejected
from pipeline.resources import schema_text

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "object": "an object",
    "array": "an array",
    "boolean": "true or false",
}
_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),  # before int: bool is an int in Python
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (dict, "an object"),
    (list, "an array"),
    (type(None), "null"),
)


class SchemaCheck:
    """One schema file, compiled once.

    ``reasons`` maps a top-level field (``"timestamp"``) or a field and keyword
    (``"identities/maxItems"``) to its reason code; other violations give
    ``missing_field``, ``wrong_type`` or ``invalid_envelope``. ``expected`` describes
    in words what a field's pattern asks for. ``vouch``, if given, answers True only for
    documents the schema accepts, patterns aside (they are re-checked anyway): a cheap
    check of the common shape that spares the compiled schema; False says nothing.
    """

    def __init__(
        self,
        filename: str,
        reasons: Mapping[str, str],
        expected: Mapping[str, str],
        vouch: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> None:
        self.schema: dict[str, Any] = json.loads(schema_text(filename))
        Draft202012Validator.check_schema(self.schema)
        self._validator = Draft202012Validator(self.schema)
        # The same schema compiled to Python code: ~10x faster on the hot path. The
        # schemas use no keyword newer than draft 7, which it implements; jsonschema
        # still explains every rejection (tests check that both agree).
        self._fast = fastjsonschema.compile(self.schema)
        self._reasons = reasons
        self._expected = expected
        self.vouch = vouch
        # jsonschema applies a pattern with re.search, where "$" also matches before a
        # final newline; JSON Schema (ECMA-262) means the end, so values are re-checked.
        self.patterns: dict[str, re.Pattern[str]] = {
            name: re.compile(spec["pattern"])
            for name, spec in self.schema["properties"].items()
            if "pattern" in spec
        }

    def validate(self, doc: Mapping[str, Any]) -> None:
        """Return if ``doc`` fits the schema, else raise ``Rejected`` for its first error."""
        if self.vouch is None or not self.vouch(doc):
            try:
                self._fast(doc)
            except fastjsonschema.JsonSchemaException:
                self._explain(doc)
        self._check_patterns(doc)

    def accepts(self, doc: Mapping[str, Any]) -> tuple[bool, bool]:
        """(fast, full) verdicts, each with the end-anchored pattern re-check: the tests
        check they agree."""
        try:
            self._fast(doc)
            fast = True
        except fastjsonschema.JsonSchemaException:
            fast = False
        try:
            self._check_patterns(doc)
            patterns = True
        except Rejected:
            patterns = False
        return fast and patterns, self._validator.is_valid(doc) and patterns

    def _explain(self, doc: Mapping[str, Any]) -> None:
        errors = list(self._validator.iter_errors(doc))
        if errors:
            # Shallowest first, a missing field before a wrong one: the order a person
            # would fix them in, and stable whatever order jsonschema yields.
            first = min(errors, key=_rank)
            raise self._reject(
                list(first.absolute_path),
                str(first.validator),
                first.validator_value,
                first.instance,
            )

    def _check_patterns(self, doc: Mapping[str, Any]) -> None:
        for name, pattern in self.patterns.items():
            value = doc.get(name)
            if isinstance(value, str) and not pattern.fullmatch(value):
                raise self._reject([name], "pattern", pattern.pattern, value)

    def _reject(self, path: list[str | int], keyword: str, limit: Any, value: Any) -> Rejected:
        where = _render(path)
        if keyword == "required":
            missing = next(name for name in limit if name not in value)
            return Rejected("missing_field", f"{_render([*path, missing])} is required")
        field = path[0] if len(path) == 1 else None
        reason = self._reasons.get(f"{field}/{keyword}") or self._reasons.get(str(field))
        if reason is None:
            reason = "wrong_type" if keyword == "type" else "invalid_envelope"
        return Rejected(reason, _sentence(where, keyword, limit, value, self._expected.get(where)))


def _rank(error: ValidationError) -> tuple[int, bool, str]:
    return (len(error.absolute_path), error.validator != "required", _render(error.absolute_path))


def _render(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _json_type(value: Any) -> str:
    return next((word for kind, word in _JSON_TYPES if isinstance(value, kind)), "unknown")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _sentence(where: str, keyword: str, limit: Any, value: Any, expected: str | None) -> str:
    if keyword == "type":
        kinds = [limit] if isinstance(limit, str) else [k for k in limit if k != "null"]
        wanted = " or ".join(_TYPE_WORDS.get(kind, kind) for kind in kinds)
        return f"{where} must be {wanted}, not {_json_type(value)}"
    if keyword == "maxItems":
        return f"{len(value)} {where}, at most {limit}"
    if keyword == "minItems":
        return f"{where} has {len(value)}, at least {limit} needed"
    if keyword == "minLength":
        return f"{where} is empty" if not value else f"{where} is shorter than {limit}"
    if keyword == "maxLength":
        return f"{where} has {len(value)} characters, at most {limit}"
    if keyword == "enum":
        return f"{where} must be one of {', '.join(map(str, limit))}, not {_show(value)}"
    if keyword == "pattern":
        return f"{where} must be {expected or 'like ' + limit}, not {_show(value)}"
    return f"{where}: {keyword} {_show(limit)} violated by {_show(value)}"
