"""What the app builds, built the same way: its model's llm_string, its prompt strings, the
generations its cache stores, its embedding model. Used by cache warming (warm.py) so that a warmed
entry sits exactly where the app's own lookup goes (docs/layouts.md section 1).

A model named by import path is constructed, and only asked for its llm_string; nothing here calls
it. Imports of the app's classes happen here, at run time: cacheops does not depend on them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .playbook import ImportRef, ModelRef, is_vectorizer_spec


def build_import(ref: str, kwargs: dict, what: str, source: str):
    """Import package.module:name and call it with kwargs. ConfigError (exit 9) naming the fix."""
    module_name, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except ImportError as exc:
        raise ConfigError(
            f"{source}: {what} {ref}: cannot import {module_name} ({exc}); install the package the app uses"
        ) from None
    except AttributeError:
        raise ConfigError(f"{source}: {what} {ref}: {module_name} has no {attr}") from None
    try:
        return obj(**kwargs)
    except Exception as exc:  # the library's own validation (missing API key, bad parameter, ...)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{source}: {what} {ref} with {kwargs}: {type(exc).__name__}: {first}") from None


@dataclass
class AppModel:
    label: str
    llm_string: str
    chat: bool
    model: Any = None  # the LangChain model, when built from an import (--generate asks it)
    stop: list[str] | None = None


def resolve_model(ref: ModelRef, source: str) -> AppModel:
    """The llm_string the app's model caches under: computed by the model itself, or given."""
    if ref.llm_string is not None:
        return AppModel(ref.name, ref.llm_string, ref.chat)
    from langchain_core.language_models import BaseChatModel, BaseLLM

    assert ref.import_ is not None  # a ModelRef is an llm_string or an import
    model = build_import(ref.import_, ref.kwargs, "model", source)
    if not isinstance(model, (BaseChatModel, BaseLLM)):
        raise ConfigError(
            f"{source}: model {ref.import_} built a {type(model).__name__}, not a LangChain chat model or LLM"
        )
    llm_string = model._get_llm_string(stop=ref.stop)  # type: ignore[union-attr]  # BaseLLM's is untyped
    return AppModel(ref.name, llm_string, isinstance(model, BaseChatModel), model, ref.stop)


def prompt_string(text: str, system: str | None, chat: bool) -> str:
    """What LangChain passes to cache.lookup/update for invoke(text) (after a system message)."""
    from langchain_core.load import dumps
    from langchain_core.messages import HumanMessage, SystemMessage, get_buffer_string

    messages = ([SystemMessage(content=system)] if system is not None else []) + [HumanMessage(content=text)]
    if chat:
        return dumps(messages)
    return text if system is None else get_buffer_string(messages)


def generations(answer: str, chat: bool) -> list:
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, Generation

    return [ChatGeneration(message=AIMessage(content=answer))] if chat else [Generation(text=answer)]


def load_embedding(ref, source: str):
    """A vectorizer SPEC -> RedisVL vectorizer (vectorizers.py); an import -> whatever it builds
    (LangChain Embeddings or a RedisVL vectorizer)."""
    from ..semantic.vectorizers import load_vectorizer

    if isinstance(ref, str):
        if is_vectorizer_spec(ref):
            return load_vectorizer(ref)
        ref = ImportRef.model_validate({"import": ref})
    return build_import(ref.import_, ref.kwargs, "embedding", source)


def as_langchain_embeddings(obj):
    from langchain_core.embeddings import Embeddings

    if isinstance(obj, Embeddings):
        return obj
    vectorizer = obj

    class VectorizerEmbeddings(Embeddings):
        """A RedisVL vectorizer seen as LangChain Embeddings (langchain-redis wraps it back)."""

        def embed_query(self, text: str) -> list[float]:
            return list(vectorizer.embed(text))

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [list(v) for v in vectorizer.embed_many(texts)]

    return VectorizerEmbeddings()


def as_redisvl_vectorizer(obj):
    from langchain_core.embeddings import Embeddings
    from redisvl.utils.vectorize import CustomVectorizer

    if isinstance(obj, Embeddings):
        return CustomVectorizer(embed=obj.embed_query, embed_many=obj.embed_documents)
    return obj
