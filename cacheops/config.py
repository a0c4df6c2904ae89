"""The config file: named connection profiles and per-cache settings (typed, validated)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError
from .paths import config_file


class Profile(BaseModel):
    """How to reach one Redis. Prefer password_env over password so the file holds no secret."""

    model_config = ConfigDict(extra="forbid")
    url: str = "redis://localhost:6379"
    username: str | None = None
    password: str | None = None
    password_env: str | None = None
    db: int | None = None
    tls_ca_file: str | None = None
    cluster: bool | None = None  # None: detected from the server; true forces Redis Cluster mode
    read_from_replicas: bool = False  # inspection scans replicas instead of primaries


class CacheSettings(BaseModel):
    """What cacheops must know about one cache that Redis does not record (e.g. its embedding model)."""

    model_config = ConfigDict(extra="forbid")
    embedding: str | None = None  # a vectorizer SPEC, e.g. "hf:sentence-transformers/all-MiniLM-L6-v2"
    distance_threshold: float | None = None


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_profile: str | None = None
    profiles: dict[str, Profile] = {}
    caches: dict[str, CacheSettings] = {}


def load_config(path: Path | None = None) -> Config:
    path = path or config_file()
    if not path.exists():
        return Config()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {loc}: {first['msg']}") from None
