"""The documented schemas, installed as the package ``pipeline.schemas`` (see
pyproject.toml) so the runtime reads them as package data."""
