"""The config file: named connection profiles and per-cache settings (typed, validated)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
