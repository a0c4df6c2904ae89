"""How LangChain turns a prompt and a model into the strings its caches key on, and back.

Verified against langchain-core 0.1 - 1.7 (docs/layouts.md section 1): a chat prompt is
`langchain_core.load.dumps(messages)`, i.e. json.dumps with default separators and ensure_ascii
of the serialised message list; a plain LLM's prompt is the raw text. The llm_string is either
`str(sorted(params.items()))` or `json.dumps(serialized, sort_keys=True) + "---" + str(sorted(kwargs))`.
Nothing here imports langchain: decoding a cache must not need the app's dependencies, and a test
checks these strings byte for byte against langchain-core's own dumps().
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json

import orjson

_MESSAGE_CLASS = {"human": "HumanMessage", "system": "SystemMessage", "ai": "AIMessage"}
_ROLE_OF_CLASS = {
    "HumanMessage": "human",
    "SystemMessage": "system",
    "AIMessage": "ai",
    "ToolMessage": "tool",
    "FunctionMessage": "function",
    "ChatMessage": "chat",
    "HumanMessageChunk": "human",
    "AIMessageChunk": "ai",
    "SystemMessageChunk": "system",
}
_MODEL_PARAM_NAMES = ("model_name", "model", "model_id", "deployment_name", "azure_deployment", "repo_id")


def chat_prompt(text: str, system: str | None = None) -> str:
    """The prompt string a chat model's cache lookup receives for invoke(text) (with a system message)."""
    messages = []
    if system is not None:
        messages.append(_message("system", system))
    messages.append(_message("human", text))
    return json.dumps(messages)


def _message(role: str, content: str) -> dict:
    return {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "schema", "messages", _MESSAGE_CLASS[role]],
        "kwargs": {"content": content, "type": role},
    }


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_text(content) -> str:
    """Message content as text: a string, or the text blocks of a multimodal list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict):
                parts.append(block.get("text") or f"[{block.get('type', 'block')}]")
        return "".join(parts)
    return "" if content is None else str(content)


def read_prompt(prompt: str) -> tuple[list[tuple[str, str]] | None, str, list[str]]:
    """(messages, user_text, message_ids) of a stored prompt, from one JSON parse.

    messages is a list of (role, text) for a serialised chat prompt, None for a plain LLM prompt
    (then user_text is the prompt itself); user_text is the last human message (what a user typed);
    message_ids are the messages' own kwargs.id (langchain-core < 1.2.7 kept them in the cache key,
    >= 1.2.7 strips them), not tool-call ids."""
    if not prompt.startswith('[{"lc": 1'):
        return None, prompt, []
    try:
        items = orjson.loads(prompt)
    except orjson.JSONDecodeError:
        return None, prompt, []
    messages, ids = [], []
    human = None  # the last human message's text
    with_ids = '"id": "' in prompt
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        ident = item.get("id") or []
        kwargs = item.get("kwargs") or {}
        role = kwargs.get("type") or _ROLE_OF_CLASS.get(ident[-1] if ident else "", "message")
        text = content_text(kwargs.get("content"))
        messages.append((role, text))
        if role == "human":
            human = text
        if with_ids:
            msg_id = kwargs.get("id")
            if isinstance(msg_id, str) and msg_id:
                ids.append(msg_id)
    return messages, (human if human is not None else (messages[-1][1] if messages else "")), ids


def message_ids(prompt: str) -> list[str]:
    """The message ids a serialised chat prompt carries (see read_prompt)."""
    return read_prompt(prompt)[2]


@functools.lru_cache(maxsize=4096)
def parse_llm_string(llm_string: str) -> tuple[str | None, dict]:
    """(model name, parameters) from an llm_string. Parsed with json / ast.literal_eval, never eval."""
    params: dict = {}
    head, sep, tail = llm_string.partition("---")
    if sep and head.startswith("{"):
        try:
            serialized = json.loads(head)
            params = dict(serialized.get("kwargs") or {})
            params["_class"] = serialized.get("name") or (serialized.get("id") or [None])[-1]
        except ValueError:
            pass
        params.update(_literal_pairs(tail))
    else:
        params = _literal_pairs(llm_string)
    for name in _MODEL_PARAM_NAMES:
        if isinstance(params.get(name), str):
            return params[name], params
    return params.get("_type") or params.get("_class"), params


def _literal_pairs(text: str) -> dict:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return {}
    if isinstance(value, list) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        return {str(k): v for k, v in value}
    return {}


def _kwargs(obj) -> dict:
    return (obj.get("kwargs") or {}) if isinstance(obj, dict) else {}


def parse_generation(gen) -> dict:
    """A serialised Generation / ChatGeneration -> {text, type, usage, response_metadata, generation_info}."""
    kwargs = _kwargs(gen)
    message = _kwargs(kwargs.get("message"))
    return _generation_dict(gen, kwargs, message, _generation_text(kwargs, message))


def _generation_text(kwargs: dict, message: dict) -> str:
    text = kwargs.get("text")
    if not text and message:
        text = content_text(message.get("content"))
    return text or ""


def _generation_dict(gen, kwargs: dict, message: dict, text: str) -> dict:
    ident = (gen.get("id") or ["", ""]) if isinstance(gen, dict) else None
    out = {"type": ident[-1] if isinstance(ident, (list, str)) else None, "text": text}
    if message.get("usage_metadata"):
        out["usage"] = message["usage_metadata"]
    out.update(_stop_metadata(kwargs, message))
    return out


def _model_of(meta) -> str | None:
    if meta:
        for name in ("model_name", "model", "model_id"):
            if isinstance(meta.get(name), str):
                return meta[name]
    return None


def usage_from_generations(gens: list[dict]) -> dict | None:
    for gen in gens:
        if gen.get("usage"):
            return gen["usage"]
        token_usage = (gen.get("response_metadata") or {}).get("token_usage")
        if token_usage:
            return token_usage
    return None


def read_generations(
    raw_gens: list, full: bool = True, stops: bool = True
) -> tuple[str, str | None, list[dict] | None, dict | None]:
    """(answer, model, generations, usage) of serialised generations, in one pass.

    answer joins the generations' texts; model comes from their response_metadata/generation_info.
    generations (parse_generation of each) and usage are built only when full: a listing shows
    the answer and model, `show` the rest. A listing keeps only why each generation stopped:
    its generation_info, response_metadata and tool_calls (references, not copies), which
    `suspects` judges (finish/stop reasons, tool-call-only generations) at listing speed;
    stops=False (a listing row, which prints none of them) leaves them out too."""
    texts, model = [], None
    gens: list[dict] = []
    for gen in raw_gens:
        kwargs = _kwargs(gen)
        message = _kwargs(kwargs.get("message"))
        text = _generation_text(kwargs, message)
        texts.append(text)
        if model is None:
            model = _model_of(message.get("response_metadata") or kwargs.get("generation_info"))
        if full:
            gens.append(_generation_dict(gen, kwargs, message, text))
        elif stops:
            gens.append(_stop_metadata(kwargs, message))
    return "\n".join(texts), model, gens, usage_from_generations(gens) if full and gens else None


def _stop_metadata(kwargs: dict, message: dict) -> dict:
    """Why a generation stopped (what a listing keeps; a full generation adds its type, text, usage)."""
    out = {}
    if message.get("response_metadata"):
        out["response_metadata"] = message["response_metadata"]
    if kwargs.get("generation_info"):
        out["generation_info"] = kwargs["generation_info"]
    if message.get("tool_calls"):
        out["tool_calls"] = message["tool_calls"]
    return out
