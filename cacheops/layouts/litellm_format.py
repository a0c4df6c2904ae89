"""LiteLLM's cached value: {"timestamp": float, "response": <ModelResponse JSON string>}.

The sync path writes the wrapper as a Python repr (str(dict)), the async path as JSON (docs/layouts.md
F1/F2). Read with json, falling back to ast.literal_eval, the way LiteLLM itself does: literal_eval
only builds literals, it never calls anything, so a stored value cannot run code.
"""

from __future__ import annotations

import ast
import json
import re

import orjson

_CONTENT_RE = re.compile(r'"content"\s*:\s*"((?:[^"\\]|\\.){0,400})')
_MODEL_RE = re.compile(r'"model"\s*:\s*"((?:[^"\\]|\\.){0,200})"')


def looks_like_wrapper(raw: bytes) -> str | None:
    """'json' or 'python-repr' if raw starts like LiteLLM's wrapper, else None."""
    if raw.startswith(b'{"timestamp": '):
        return "json"
    if raw.startswith(b"{'timestamp': "):
        return "python-repr"
    return None


def parse_wrapper(raw: bytes, encoding: str) -> dict | None:
    text = raw.decode("utf-8", "replace")
    try:
        value = orjson.loads(raw) if encoding == "json" else ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, orjson.JSONDecodeError):
        return None
    return value if isinstance(value, dict) and "response" in value else None


def decode_into(entry, raw: bytes, encoding: str) -> bool:
    """Fill entry.answer/model/usage/inserted_at from a wrapper value; False if it is not one."""
    entry.value_format = encoding
    wrapper = parse_wrapper(raw, encoding) if not entry.truncated else None
    if wrapper is None:
        if not entry.truncated:
            return False
        text = raw.decode("utf-8", "replace")  # cut at the read limit: previews only
        found = _CONTENT_RE.search(text.replace('\\"', '"'))
        entry.answer = found.group(1) if found else None
        model = _MODEL_RE.search(text.replace('\\"', '"'))
        entry.model = model.group(1) if model else None
        entry.notes.append("value too large to decode fully; answer is a preview")
        return True
    ts = wrapper.get("timestamp")
    entry.inserted_at = float(ts) if isinstance(ts, (int, float)) else None
    response = wrapper.get("response")
    if isinstance(response, str):
        try:
            response = json.loads(response)
        except ValueError:
            entry.answer = response
            return True
    if not isinstance(response, dict):
        entry.answer = None if response is None else str(response)
        return True
    entry.model = response.get("model") if isinstance(response.get("model"), str) else None
    entry.usage = response.get("usage") if isinstance(response.get("usage"), dict) else None
    entry.generations = [response]
    choices = response.get("choices")
    if isinstance(choices, list) and choices:
        texts = []
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            message = choice.get("message")
            content = message.get("content") if isinstance(message, dict) else None
            texts.append(content if isinstance(content, str) else str(choice.get("text") or ""))
        entry.answer = "\n".join(texts)
    elif isinstance(response.get("data"), list):  # embedding() responses
        data = response["data"]
        dims = len(data[0].get("embedding") or []) if data and isinstance(data[0], dict) else 0
        entry.answer = f"{len(data)} embedding(s), {dims} dims"
    return True
