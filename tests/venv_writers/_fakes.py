"""Deterministic stand-ins shared by the writer scripts (no model download, no API).

The hashing embedding is the same bag-of-words hash as cacheops.demo.hashing_embeddings, kept
standalone because these scripts run in venvs that do not have cacheops installed."""

import hashlib
import json
import math
import re


def embed(text: str, dims: int = 8) -> list[float]:
    vec = [0.0] * dims
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        h = int.from_bytes(hashlib.md5(word.encode()).digest()[:4], "little")
        vec[h % dims] += 1.0 if h & 1 << 31 else -1.0
    if not any(vec):
        vec[0] = 1.0
    norm = math.sqrt(sum(v * v for v in vec))
    return [v / norm for v in vec]


def langchain_embeddings(dims: int = 8):
    from langchain_core.embeddings import Embeddings

    class HashingEmbeddings(Embeddings):
        def embed_query(self, text):
            return embed(text, dims)

        def embed_documents(self, texts):
            return [embed(t, dims) for t in texts]

    return HashingEmbeddings()


def chat_model(model_name: str):
    """LangChain's FakeListChatModel carrying a model name, as cacheops.demo.demo_chat_model does."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    class DemoChatModel(FakeListChatModel):
        model_name: str
        temperature: float = 0.0

        @property
        def _identifying_params(self):
            return {"model_name": self.model_name, "temperature": self.temperature}

    return DemoChatModel(model_name=model_name, responses=["-"])


def messages(item):
    """A prompt spec -> what the app passes to invoke(): a str, or messages (with ids if given)."""
    from langchain_core.messages import HumanMessage, SystemMessage

    if isinstance(item, str):
        return item
    out = []
    if item.get("system"):
        out.append(SystemMessage(content=item["system"], id=item.get("system_id")))
    out.append(HumanMessage(content=item["text"], id=item.get("id")))
    return out


def ask(model, prompt, answer):
    model.responses, model.i = [answer], 0
    return model.invoke(messages(prompt))


def result(value) -> None:
    print("RESULT " + json.dumps(value), flush=True)
