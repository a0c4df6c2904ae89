"""Fill a Redis with a realistic LLM cache, written by the real LangChain and RedisVL integrations.

A FAQ-style app: LangChain chat models (LangChain's fake list chat model, carrying a model name
the way provider models do) answer through langchain-redis RedisCache and RedisSemanticCache,
plus a RedisVL SemanticCache with filterable fields and an EmbeddingsCache. Needs the `demo` extra.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

from .errors import CacheopsError

FAQ = [
    ("What are your business hours?", "We are open 9am to 5pm, Monday to Friday."),
    ("How do I reset my password?", "Click 'Forgot password' on the sign-in page and follow the email link."),
    ("Can I get a refund?", "Yes, within 30 days of purchase, from Billing > Refunds."),
    ("What is the capital of France?", "Paris is the capital of France."),
    ("How much does the Pro plan cost?", "The Pro plan costs $20 per user per month."),
    ("Do you offer a free trial?", "Yes, every plan has a 14-day free trial, no card needed."),
    ("How do I cancel my subscription?", "Go to Settings > Billing and choose Cancel subscription."),
    ("Is my data shared with advertisers?", "No. We never sell or share your data with advertisers."),
    ("Which payment methods do you accept?", "Visa, Mastercard, American Express and PayPal."),
    ("How do I export my data?", "Settings > Privacy > Export gives you a ZIP of all your data."),
    ("Where is your support team located?", "Our support team works from Lisbon and Toronto."),
    ("Do you have a mobile app?", "Yes, for iOS and Android."),
    ("How do I add a team member?", "Open Team > Invite and enter their email address."),
    ("What is two-factor authentication?", "A second sign-in step, a code from an app, that protects your account."),
    ("How do I enable two-factor authentication?", "Settings > Security > Two-factor, then scan the QR code."),
    ("Can I change my username?", "Yes, once every 30 days from your profile page."),
    ("What happens when my trial ends?", "Your workspace becomes read-only until you pick a plan."),
    ("Do you offer student discounts?", "Students get 50% off the Pro plan with a school email."),
    ("How do I contact support?", "Email support@example.com or use the chat in the app."),
    ("Is there an API?", "Yes, a REST API; keys are under Settings > Developers."),
    ("What are the API rate limits?", "1,000 requests per minute per workspace."),
    ("How secure is my data?", "Encrypted at rest (AES-256) and in transit (TLS 1.3)."),
    ("Can I use my own domain?", "Yes, on the Business plan, under Settings > Domains."),
    ("How do I delete my account?", "Settings > Account > Delete account; it takes effect after 7 days."),
    ("Which languages do you support?", "English, French, German, Spanish and Japanese."),
    ("Do you have an uptime SLA?", "99.9% monthly uptime on Business and Enterprise plans."),
    ("How do I upgrade my plan?", "Settings > Billing > Change plan; the difference is prorated."),
    ("What is the refund policy?", "Refunds are never possible."),  # a poisoned answer, for evict demos
]
PARAPHRASES = [
    ("When are you open?", "We are open 9am to 5pm, Monday to Friday."),
    ("I forgot my password, what do I do?", "Click 'Forgot password' on the sign-in page and follow the email link."),
    ("How can I get my money back?", "Yes, within 30 days of purchase, from Billing > Refunds."),
    ("What does the Pro plan cost per month?", "The Pro plan costs $20 per user per month."),
    ("Is there a free trial?", "Yes, every plan has a 14-day free trial, no card needed."),
]
SYSTEM_PROMPT = "You are a concise support assistant for Example Inc."
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku")


def _require_langchain():
    try:
        import langchain_core  # noqa: F401
        import langchain_redis  # noqa: F401
    except ImportError:
        raise CacheopsError("the demo writes through LangChain: pip install 'cacheops[demo]'") from None


def demo_chat_model(model_name: str, temperature: float = 0.0):
    """LangChain's FakeListChatModel with a model name in its identifying params, so the llm_string
    it caches under looks like a provider model's (model_name, temperature)."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    class DemoChatModel(FakeListChatModel):
        model_name: str
        temperature: float = 0.0

        @property
        def _identifying_params(self):
            return {"model_name": self.model_name, "temperature": self.temperature}

        def answer(self, messages, response: str):
            self.responses, self.i = [response], 0
            return self.invoke(messages)

    return DemoChatModel(model_name=model_name, temperature=temperature, responses=["-"])


def hashing_embeddings(dims: int = 64):
    """A bag-of-words hashing embedding (no model download): paraphrases sharing words land close."""
    from langchain_core.embeddings import Embeddings

    class HashingEmbeddings(Embeddings):
        def embed_query(self, text: str) -> list[float]:
            vec = [0.0] * dims
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                h = int.from_bytes(hashlib.md5(word.encode()).digest()[:4], "little")
                vec[h % dims] += 1.0 if h & 1 << 31 else -1.0
            norm = math.sqrt(sum(v * v for v in vec)) or 1.0
            return [v / norm for v in vec]

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [self.embed_query(t) for t in texts]

    return HashingEmbeddings()


@dataclass
class DemoResult:
    llm_calls: int = 0  # chat model invocations through the LangChain caches (hits included)
    redisvl_stores: int = 0  # SemanticCache.store() calls
    embeddings: int = 0  # EmbeddingsCache.set() calls


def fill_demo_cache(url: str) -> DemoResult:
    """Run the demo app's traffic against `url`: every answer is cached by the real libraries."""
    _require_langchain()
    from langchain_core.globals import set_llm_cache
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_redis import RedisCache, RedisSemanticCache
    from redisvl.extensions.cache.embeddings import EmbeddingsCache
    from redisvl.extensions.cache.llm import SemanticCache
    from redisvl.utils.vectorize import CustomVectorizer

    result = DemoResult()
    embeddings = hashing_embeddings(256)
    try:
        # 1. The exact cache, default prefix, no TTL: every model answers the FAQ.
        set_llm_cache(RedisCache(redis_url=url))
        for i, model_name in enumerate(MODELS):
            model = demo_chat_model(model_name)
            for question, answer in FAQ[: 20 + 4 * i]:
                model.answer(question, answer)
                result.llm_calls += 1
        # 2. A second exact cache with a 1 h TTL and a system prompt.
        set_llm_cache(RedisCache(redis_url=url, prefix="support:exact", ttl=3600))
        model = demo_chat_model("gpt-4o-mini")
        for question, answer in FAQ[:12]:
            model.answer([SystemMessage(SYSTEM_PROMPT), HumanMessage(question)], answer)
            result.llm_calls += 1
        # 3. The semantic cache (1 day TTL), with paraphrases that a user typed later.
        # Threshold 0.1: the hashing embedding of LangChain's JSON-wrapped prompts puts unrelated
        # questions ~0.25 apart, so a few near pairs still collide, as in real caches (see `audit`).
        set_llm_cache(RedisSemanticCache(embeddings=embeddings, redis_url=url, ttl=86400, distance_threshold=0.1))
        # The semantic cache keys on the prompt only (the last model to ask wins a key), so each model
        # asks its own share of the questions: every model's llm_string is then on record, and
        # cacheops can name the model of the exact cache's entries too.
        questions = FAQ + PARAPHRASES
        for i, model_name in enumerate(MODELS):
            model = demo_chat_model(model_name)
            for question, answer in questions[i :: len(MODELS)]:
                model.answer(question, answer)
                result.llm_calls += 1
    finally:
        set_llm_cache(None)
    # 4. RedisVL SemanticCache used directly, with filterable fields, 7 day TTL.
    vectorizer = CustomVectorizer(embed=embeddings.embed_query)
    rvl = SemanticCache(
        name="support_cache",
        redis_url=url,
        vectorizer=vectorizer,
        ttl=7 * 86400,
        filterable_fields=[{"name": "tier", "type": "tag"}, {"name": "model", "type": "tag"}],
    )
    for n, (question, answer) in enumerate(FAQ[:15]):
        rvl.store(
            question,
            answer,
            metadata={"source": "faq"},
            filters={"tier": "pro" if n % 3 else "free", "model": MODELS[n % 2]},
        )
        result.redisvl_stores += 1
    # 5. RedisVL EmbeddingsCache behind a vectorizer.
    emb_cache = EmbeddingsCache(name="embedcache", redis_url=url, ttl=30 * 86400)
    for question, _ in FAQ[:10]:
        emb_cache.set(content=question, model_name="demo-hashing-256", embedding=embeddings.embed_query(question))
        result.embeddings += 1
    return result
