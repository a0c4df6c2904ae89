"""One cache of a playbook, opened with its own library the way the app opens it.

warm writes through it, `warm --verify` and `replay` look prompts up through it: all three must build
the very cache object the app builds (same prefix, index name, vectorizer, filterable fields), or
their answers would not be the app's. One opener, so they cannot drift apart.

Opening never slides a TTL: the semantic cache objects are built without one (RedisVL's check()
EXPIREs every key it returns when its cache has a TTL), and the client is CLIENT NO-TOUCH. Opening a
RedisVL or langchain-redis semantic cache creates its index when it is missing, so a missing index
is only created when the caller asks for it (warm writing); otherwise open() returns None.
"""

from __future__ import annotations

from typing import Any

import redis

from ..errors import CacheopsError, ConfigError
from ..server.connection import library_client, translate_redis_error
from ..server.indexes import list_indexes
from .appmodel import AppModel, as_langchain_embeddings, as_redisvl_vectorizer, prompt_string
from .playbook import LangchainExactTarget, LangchainSemanticTarget, Playbook


def failure_reason(exc: Exception) -> str:
    """One prompt's failure, as one line for the report."""
    if isinstance(exc, redis.RedisError):
        translated = translate_redis_error(exc)
        if translated is not None:
            return translated.message
    if isinstance(exc, CacheopsError):
        return exc.message
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def is_fatal(exc: Exception) -> bool:
    """Errors that end the whole run: the server is gone or refuses us, not one entry's problem."""
    return isinstance(exc, (redis.ConnectionError, redis.TimeoutError, redis.AuthenticationError))


# RedisVL SemanticCache's own fields; any other index field is a filterable field
STANDARD_FIELDS = {"prompt", "response", "inserted_at", "updated_at", "prompt_vector", "entry_id", "metadata", "key"}


class AppCache:
    """A playbook target with what the app needs to reach it: its models, embedding and system prompt."""

    def __init__(self, client, playbook: Playbook, target, models: list[AppModel], embedding):
        self.client, self.playbook, self.target, self.models = client, playbook, target, models
        # a RedisCluster too: langchain-redis and RedisVL take one, though their hints say Redis only
        self.lib_client: Any = library_client(client)
        self.embedding = embedding
        self.display = target.display

    @property
    def models_or_none(self) -> list[AppModel | None]:
        """The models the cache is used with; [None] for a cache that keys on no model (RedisVL)."""
        return list(self.models) or [None]

    def system_of(self, prompt) -> str | None:
        if prompt.system is not None:
            return prompt.system
        return self.target.system if self.target.system is not None else self.playbook.warm.system

    def index_exists(self, name: str) -> bool:
        return any(idx.name == name for idx in list_indexes(self.client))

    def existing_filterable_fields(self, name: str) -> list[dict] | None:
        """The filterable fields of an existing RedisVL cache index, so that opening it matches."""
        from redisvl.index import SearchIndex

        if not self.index_exists(name):
            return None
        schema = SearchIndex.from_existing(name, redis_client=self.lib_client).schema.to_dict()
        return [f for f in schema["fields"] if f["name"] not in STANDARD_FIELDS]

    def open_cache(self, exact_ttl: int | None = None, create: bool = False):
        """The library's cache object; None for a semantic cache whose index is missing, unless create.
        Only the exact cache gets a TTL (its update() sets it; its lookup() refreshes nothing)."""
        t = self.target
        if isinstance(t, LangchainExactTarget):
            from langchain_redis import RedisCache

            return RedisCache(redis_client=self.lib_client, prefix=t.prefix, ttl=exact_ttl)
        if not create and not self.index_exists(t.display):
            return None
        if isinstance(t, LangchainSemanticTarget):
            from langchain_redis import RedisSemanticCache

            return RedisSemanticCache(
                embeddings=as_langchain_embeddings(self.embedding),
                redis_client=self.lib_client,
                distance_threshold=t.distance_threshold,
                ttl=None,
                name=t.name,
                prefix=t.prefix,
            )
        from redisvl.extensions.cache.llm import SemanticCache

        fields = t.filterable_fields if t.filterable_fields is not None else self.existing_filterable_fields(t.name)
        unknown = sorted(set(t.filters) - {f["name"] for f in fields or []})
        if unknown:  # checked before opening: opening a missing cache creates its index
            raise ConfigError(
                f"filters {', '.join(unknown)} are not filterable fields of {t.name}; declare them "
                f"in the cache's filterable_fields"
            )
        return SemanticCache(
            name=t.name,
            redis_client=self.lib_client,
            vectorizer=as_redisvl_vectorizer(self.embedding),
            distance_threshold=t.distance_threshold,
            ttl=None,
            filterable_fields=fields or None,
        )

    def lookup(self, cache, model: AppModel | None, p, asked: str) -> str | None:
        """The answer the app would be served for `asked`, or None (a miss)."""
        t = self.target
        if isinstance(t, (LangchainExactTarget, LangchainSemanticTarget)):
            assert model is not None  # the playbook requires a model for LangChain caches
            generations = cache.lookup(prompt_string(asked, self.system_of(p), model.chat), model.llm_string)
            return generations[0].text if generations else None
        hits = cache.check(prompt=asked, num_results=1, filter_expression=self.filter_expression())
        return hits[0].get("response") if hits else None

    def filter_expression(self):
        """The app's filter: the playbook's filters for this RedisVL cache, ANDed (None: no filter)."""
        from redisvl.query.filter import Num, Tag

        expression = None
        for name, value in self.target.filters.items():
            term = Num(name) == value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
            term = term if term is not None else Tag(name) == str(value)
            expression = term if expression is None else expression & term
        return expression
