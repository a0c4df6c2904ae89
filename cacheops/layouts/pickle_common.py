"""Shared decoding for hand-rolled caches that store Python pickles (never loaded, see pickle_peek)."""

from __future__ import annotations

from .base import Entry
from .pickle_peek import is_pickle, peek

PROMPT_KEYS = ("prompt", "question", "query", "input", "messages")
ANSWER_KEYS = ("response", "answer", "content", "text", "output", "completion", "result")
MODEL_KEYS = ("model", "model_name")


def decode_pickle(entry: Entry, raw: bytes) -> bool:
    """Fill the entry from the pickle's opcode stream; False if raw is not a pickle."""
    if not is_pickle(raw):
        return False
    seen = peek(raw)
    if seen.error and not seen.strings and not seen.globals and not entry.truncated:
        return False
    entry.value_format = "pickle"
    entry.prompt = seen.value_after(*PROMPT_KEYS)
    entry.answer = seen.value_after(*ANSWER_KEYS)
    entry.model = seen.value_after(*MODEL_KEYS)
    if entry.answer is None and seen.strings:
        entry.answer = max(seen.strings, key=len)  # a bare pickled string, or the longest constant
    entry.metadata = {"pickle": seen.to_dict()}
    entry.notes.append(
        "Python pickle: cacheops never loads it (loading a pickle runs code); shown from "
        "its opcode stream (string constants only)"
    )
    if seen.runs_code:
        entry.notes.append(
            "WARNING: loading this value would import and call " + ", ".join(sorted(set(seen.runs_code)))
        )
    if not seen.complete:
        entry.notes.append("pickle stream incomplete (value read in part)")
    return True
