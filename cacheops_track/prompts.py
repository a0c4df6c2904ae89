"""Reading what an app passes a cache: LangChain prompt strings, llm_strings and generations.

No LangChain import: these are the strings and objects LangChain hands every BaseCache. (cacheops'
readers parse the same strings with layouts/langchain_format.py; this is the app-side minimum.)
"""

from __future__ import annotations

import ast
import json

from .recorder import prompt_sha256

_MODEL_PARAMS = ("model_name", "model", "model_id", "deployment_name", "azure_deployment")
_ROLE_OF = {"SystemMessage": "system", "HumanMessage": "human", "AIMessage": "ai", "ChatMessage": "chat"}
_models: dict[str, str | None] = {}


def model_of(llm_string: str | None) -> str | None:
    """The model name in a LangChain llm_string (remembered: an app has few llm_strings)."""
    if not llm_string:
        return None
    found = _models.get(llm_string, ...)
    if found is not ...:
        return found
    params: dict = {}
    head, sep, tail = llm_string.partition("---")
    try:
        if sep and head.startswith("{"):
            params = dict(json.loads(head).get("kwargs") or {})
            params.update(_pairs(tail))
        else:
            params = _pairs(llm_string)
    except (ValueError, AttributeError):
        params = {}
    model = next((params[n] for n in _MODEL_PARAMS if isinstance(params.get(n), str)), None)
    model = model or (params.get("_type") if isinstance(params.get("_type"), str) else None)
    if len(_models) > 4096:
        _models.clear()
    _models[llm_string] = model
    return model


def _pairs(text: str) -> dict:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return {}
    if isinstance(value, list) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        return {str(k): v for k, v in value}
    return {}


def _content(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            c if isinstance(c, str) else str(c.get("text", "")) for c in content if isinstance(c, (str, dict))
        )
    return ""


def split_prompt(prompt: str) -> tuple[str, str | None]:
    """(human text, system text) of a LangChain prompt string: a chat prompt is its serialised
    message list; anything else is the raw LLM prompt."""
    if prompt.startswith("[{"):
        try:
            messages = json.loads(prompt)
        except ValueError:
            return prompt, None
        human: list[str] = []
        system: list[str] = []
        for message in messages if isinstance(messages, list) else []:
            if not isinstance(message, dict):
                continue
            role = _ROLE_OF.get((message.get("id") or [""])[-1], "")
            text = _content((message.get("kwargs") or {}).get("content"))
            (system if role == "system" else human).append(text)
        return "\n".join(human), ("\n".join(system) or None)
    return prompt, None


def prompt_fields(prompt: str, mode: str) -> tuple[str | None, str | None, str | None]:
    """(prompt, system, sha256) to record under record_prompts=`mode` ("text" | "hash" | "off")."""
    if mode == "off":
        return None, None, None
    human, system = split_prompt(prompt)
    digest = prompt_sha256(human if system is None else f"{system}\n{human}")
    if mode == "hash":
        return None, None, digest
    return human, system, digest


def usage_of(generations) -> tuple[int, int] | None:
    """(input, output) tokens the generations report (usage_metadata, or the provider's token_usage
    in response_metadata / generation_info); None when none reports any."""
    total_in = total_out = 0
    found = False
    for gen in generations or ():
        # vars(): a missing attribute on a pydantic model goes through its slow __getattr__
        attrs = vars(gen) if hasattr(gen, "__dict__") else {}
        message = attrs.get("message")
        usage = vars(message).get("usage_metadata") if message is not None and hasattr(message, "__dict__") else None
        if isinstance(usage, dict) and ("input_tokens" in usage or "output_tokens" in usage):
            total_in += int(usage.get("input_tokens") or 0)
            total_out += int(usage.get("output_tokens") or 0)
            found = True
            continue
        meta = (
            (vars(message).get("response_metadata") if message is not None else None)
            or attrs.get("generation_info")
            or {}
        )
        usage = meta.get("token_usage") or meta.get("usage") if isinstance(meta, dict) else None
        if isinstance(usage, dict) and usage:
            total_in += int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0)
            total_out += int(usage.get("completion_tokens") or usage.get("output_tokens") or 0)
            found = True
    return (total_in, total_out) if found else None


def estimate_tokens(text: str) -> int:
    """About four characters a token for English text: the label says it is an estimate."""
    return max(1, (len(text) + 3) // 4) if text else 0


def text_of(generations) -> str:
    return "".join(str(getattr(g, "text", "") or "") for g in generations or ())
