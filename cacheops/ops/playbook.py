"""Warm playbooks: a labelled set (labelled.py) plus a `warm:` section naming the caches to fill.

One file format serves both `cacheops audit --labels` and `cacheops warm`: the prompts (prompt,
answer, system, paraphrases, tags) are the labelled set's; the `warm:` section says which caches
the app reads, with which model, so warmed entries sit exactly where the app looks them up:

    warm:
      name: faq                      # tag playbook=faq on every entry written (default: file stem)
      tags: {source: warmup}         # more tags for every entry
      ttl: 86400                     # default TTL in seconds for every cache (default: none)
      models:                        # how the app builds its model (constructed, never called)
        - import: langchain_openai:ChatOpenAI
          kwargs: {model: gpt-4o-mini, temperature: 0, api_key: unused}
        - llm_string: "[('_type', 'fake-list-chat-model'), ('stop', None)]"   # verbatim, from `cacheops show`
      caches:
        - type: langchain_exact      # langchain-redis RedisCache
          prefix: redis
        - type: langchain_semantic   # langchain-redis RedisSemanticCache (one model: it keys on the prompt)
          name: llmcache
          embedding: hf:sentence-transformers/all-MiniLM-L6-v2   # a vectorizer SPEC, or an import
          distance_threshold: 0.2
        - type: redisvl_semantic     # RedisVL SemanticCache used directly
          name: support_cache
          embedding: {import: cacheops.demo:hashing_embeddings, kwargs: {dims: 256}}
          filters: {tier: pro}       # values of the cache's filterable fields
          metadata: {source: faq}

Loading resolves nothing: imports and embedding models are built by warm.py when it runs. Errors
name the file, line and field (yamlfile.py), and exit with code 9.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ..layouts import langchain_exact, langchain_semantic, redisvl_semantic
from ..ownkeys import valid_tag_name
from ..semantic.labelled import LabelledSet
from ..yamlfile import load_yaml_model

_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
Scalar = str | int | float | bool


def _check_import(value: str) -> str:
    if not _IMPORT_PATH.match(value):
        raise ValueError(f"{value!r} is not an import path like package.module:name")
    return value


def _check_tags(value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if not valid_tag_name(name):
            raise ValueError(f"tag name {name!r}: use letters, digits, '_', '-' or '.'")
    return value


class ImportRef(BaseModel):
    """A callable named by its import path, called with kwargs (a class or a factory function)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    import_: str = Field(alias="import")
    kwargs: dict[str, Any] = {}

    @field_validator("import_")
    @classmethod
    def _path(cls, value: str) -> str:
        return _check_import(value)


class ModelRef(BaseModel):
    """The app's model: built from an import path (constructed; only --generate calls it) for its llm_string,
    or the llm_string itself, verbatim (as `cacheops show` prints it)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    import_: str | None = Field(None, alias="import")
    kwargs: dict[str, Any] = {}
    llm_string: str | None = Field(None, min_length=1)
    chat: bool = True  # with llm_string: a chat model (prompt = serialised messages) or a plain LLM (raw text)
    stop: list[str] | None = None  # the stop sequences the app passes to invoke (part of the llm_string)
    label: str | None = None  # shown in reports; default: the model name found in kwargs, else the import

    @model_validator(mode="after")
    def _one_source(self) -> ModelRef:
        if (self.import_ is None) == (self.llm_string is None):
            raise ValueError("give either import (with kwargs) or llm_string")
        if self.import_ is not None:
            _check_import(self.import_)
        elif self.kwargs or self.stop is not None:
            raise ValueError("kwargs and stop only go with import (an llm_string already holds the stop list)")
        return self

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        for key in ("model_name", "model", "model_id", "deployment_name", "azure_deployment", "repo_id"):
            if isinstance(self.kwargs.get(key), str):
                return self.kwargs[key]
        if self.import_:
            return self.import_.rpartition(":")[2]
        from ..layouts.langchain_format import parse_llm_string

        return parse_llm_string(self.llm_string)[0] or "llm_string"


# An embedding model: a vectorizer SPEC (hf:..., openai:...) or an import path, as a string, or an
# import with kwargs (see appmodel.load_embedding).
EmbeddingRef = str | ImportRef


def is_vectorizer_spec(text: str) -> bool:
    from ..semantic.vectorizers import ALIASES, PROVIDERS

    provider = text.partition(":")[0].lower()
    return ALIASES.get(provider, provider) in PROVIDERS


def _check_embedding(value):
    if isinstance(value, str) and not is_vectorizer_spec(value) and not _IMPORT_PATH.match(value):
        raise ValueError(
            f"{value!r} is neither a vectorizer SPEC (hf:sentence-transformers/all-MiniLM-L6-v2) "
            f"nor an import path (package.module:function)"
        )
    return value


# A target's default threshold is its library's own (the layout says which).
LANGCHAIN_DEFAULT_THRESHOLD: float = langchain_semantic.LangChainSemanticLayout.default_threshold or 0.2
REDISVL_DEFAULT_THRESHOLD: float = redisvl_semantic.RedisVLSemanticLayout.default_threshold or 0.1


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ttl: int | None = Field(None, ge=1)  # default: warm.ttl
    system: str | None = None  # the app's system message for prompts that have none of their own


class LangchainExactTarget(_Target):
    """langchain-redis RedisCache."""

    type: langchain_exact.PlaybookType
    prefix: str = "redis"
    models: list[ModelRef] | None = None  # default: warm.models

    @property
    def display(self) -> str:
        return self.prefix


class LangchainSemanticTarget(_Target):
    """langchain-redis RedisSemanticCache. Its entries key on the prompt only, so one model."""

    type: langchain_semantic.PlaybookType
    name: str = "llmcache"
    prefix: str = "llmcache"
    embedding: EmbeddingRef
    distance_threshold: float = Field(LANGCHAIN_DEFAULT_THRESHOLD, ge=0, le=2)

    _embedding = field_validator("embedding")(_check_embedding)
    models: list[ModelRef] | None = Field(None, max_length=1)

    @property
    def display(self) -> str:
        # langchain-redis >= 0.2.4 names the index (and key prefix) like this (docs/layouts.md B)
        if self.prefix and self.prefix != "llmcache":
            return f"{self.name}:{self.prefix}" if self.name not in ("llmcache", self.prefix) else self.prefix
        return self.name


class RedisvlSemanticTarget(_Target):
    """RedisVL SemanticCache used directly: the raw prompt, no model, no system message."""

    type: redisvl_semantic.PlaybookType
    name: str = "llmcache"
    embedding: EmbeddingRef
    distance_threshold: float = Field(REDISVL_DEFAULT_THRESHOLD, ge=0, le=2)

    _embedding = field_validator("embedding")(_check_embedding)
    filterable_fields: list[dict[str, Any]] | None = None  # default: the existing index's
    filters: dict[str, Scalar] = {}
    metadata: dict[str, Any] = {}

    @property
    def display(self) -> str:
        return self.name

    @model_validator(mode="after")
    def _no_system(self) -> RedisvlSemanticTarget:
        if self.system is not None:
            raise ValueError("RedisVL SemanticCache stores the raw prompt; a system message does not apply")
        return self


CacheTarget = Annotated[
    LangchainExactTarget | LangchainSemanticTarget | RedisvlSemanticTarget, Field(discriminator="type")
]


class WarmSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1)
    tags: dict[str, str] = {}
    ttl: int | None = Field(None, ge=1)
    system: str | None = None
    models: list[ModelRef] = []
    caches: list[CacheTarget] = Field(min_length=1)

    @field_validator("tags")
    @classmethod
    def _tag_names(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_tags(value)

    @field_validator("caches")
    @classmethod
    def _models_for_langchain(cls, caches: list, info: ValidationInfo) -> list:
        # a field validator (not a model one), so the error points at the caches list's line
        for target in caches:
            if isinstance(target, (LangchainExactTarget, LangchainSemanticTarget)):
                models = target.models if target.models is not None else info.data.get("models") or []
                if not models:
                    raise ValueError(
                        f"cache {target.display!r} ({target.type}) needs a model: set warm.models or the cache's models"
                    )
                if isinstance(target, LangchainSemanticTarget) and len(models) > 1:
                    raise ValueError(
                        f"cache {target.display!r}: a {target.type} cache keys on the prompt "
                        f"only, so warm it for one model (set its own models: [...])"
                    )
        return caches


class Playbook(LabelledSet):
    """A labelled set with a warm section."""

    warm: WarmSection  # type: ignore[assignment]  # the labelled set's untyped section, validated here


def load_playbook(path: str | Path) -> Playbook:
    return load_yaml_model(path, Playbook)


def playbook_name(playbook: Playbook, path: str | Path) -> str:
    return playbook.warm.name or Path(path).stem


def models_of(playbook: Playbook, target) -> list[ModelRef]:
    if isinstance(target, RedisvlSemanticTarget):
        return []  # RedisVL SemanticCache keys on the prompt (and filters), never on a model
    return list(target.models if getattr(target, "models", None) is not None else playbook.warm.models)


def ttl_of(playbook: Playbook, target) -> int | None:
    return target.ttl if target.ttl is not None else playbook.warm.ttl
