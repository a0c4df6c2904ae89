"""The config file: named connection profiles and per-cache settings (typed, validated)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError
from .paths import config_file
from .yamlfile import read_yaml


class Profile(BaseModel):
    """How to reach one Redis. Prefer password_env over password so the file holds no secret."""

    model_config = ConfigDict(extra="forbid")
    url: str = "redis://localhost:6379"
    username: str | None = None
    password: str | None = None
    password_env: str | None = None
    db: int | None = None
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None  # client certificate and key, for servers that ask for one
    tls_key_file: str | None = None
    tls_insecure: bool = False  # do not verify the server's certificate (testing only; warned about)
    connect_timeout: float | None = None  # seconds to connect and handshake (default 5)
    timeout: float | None = None  # seconds to wait for one reply (default 60)
    cluster: bool | None = None  # None: detected from the server; true forces Redis Cluster mode
    read_from_replicas: bool = False  # inspection scans replicas instead of primaries


class CacheSettings(BaseModel):
    """What cacheops must know about one cache that Redis does not record (e.g. its embedding model)."""

    model_config = ConfigDict(extra="forbid")
    embedding: str | None = None  # a vectorizer SPEC, e.g. "hf:sentence-transformers/all-MiniLM-L6-v2"
    distance_threshold: float | None = None
    # Whether the app filters this semantic cache's lookups by a user or tenant field (None: judged
    # from the fields its entries and index carry). `suspects` calls unscoped secrets a leak risk.
    user_scoped: bool | None = None


Severity = Literal["info", "low", "medium", "high", "critical"]


class CustomSuspectRule(BaseModel):
    """A team's own `suspects` rule: a regular expression on the prompt and/or the answer."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    pattern: str
    fields: list[Literal["prompt", "answer"]] = ["prompt", "answer"]
    severity: Severity = "medium"
    secret: bool = False  # matches are masked in every output, like the built-in secrets
    why: str | None = None  # shown with each finding; default: "matches <pattern>"

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class SuspectSettings(BaseModel):
    """What `cacheops suspects` cannot know from Redis: retired models, the longest acceptable TTL of a
    time-sensitive answer, the team's own rules."""

    model_config = ConfigDict(extra="forbid")
    retired_models: list[str] = []
    volatile_ttl_seconds: int = Field(default=3600, gt=0)
    rules: list[CustomSuspectRule] = []


class ModelPrice(BaseModel):
    """A model's list price, per the price table's `per_tokens` tokens (a million by default)."""

    model_config = ConfigDict(extra="forbid")
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    provider: str | None = None


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_profile: str | None = None
    profiles: dict[str, Profile] = {}
    caches: dict[str, CacheSettings] = {}
    # Overrides and additions to the shipped price table (pricing.py): model name -> price.
    prices: dict[str, ModelPrice] = {}
    suspects: SuspectSettings = SuspectSettings()


def load_config(path: Path | None = None) -> Config:
    path = path or config_file()
    if not path.exists():
        return Config()
    data = read_yaml(path)[0] or {}
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {loc}: {first['msg']}") from None
