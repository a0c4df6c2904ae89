"""cacheops computes LangChain's cache strings without importing langchain: check them against
langchain-core's own serialisation, byte for byte."""

from langchain_core.load import dumps
from langchain_core.messages import HumanMessage, SystemMessage

from cacheops.layouts import langchain_format as lc


def test_chat_prompt_matches_langchain_dumps():
    for text in ["What is the capital of France?", "Ça va? 日本", 'quotes " and \\ backslash', ""]:
        assert lc.chat_prompt(text) == dumps([HumanMessage(content=text)])
    assert lc.chat_prompt("Say hello in French", "You are a terse assistant.") == dumps(
        [SystemMessage("You are a terse assistant."), HumanMessage("Say hello in French")]
    )


def test_known_hashes_from_formats_catalog():
    assert lc.md5_hex(lc.chat_prompt("What is the capital of France?")) == "0a9e4ca233038431ec1850e825d32780"
    assert (
        lc.sha256_hex(lc.chat_prompt("What is the capital of France?"))
        == "5435a7d366cf41f1caa34811f378989aaec1867bcfbded41d1ec5210689dec93"
    )
    assert (
        lc.md5_hex(lc.chat_prompt("Say hello in French", "You are a terse assistant."))
        == "064c1e9f1e9376fc52ba6e1d1a4715f7"
    )


def test_parse_llm_string_both_forms():
    model, params = lc.parse_llm_string("[('_type', 'fake-list-chat-model'), ('responses', ['Paris']), ('stop', None)]")
    assert model == "fake-list-chat-model" and params["responses"] == ["Paris"]
    serialized = (
        '{"id": ["langchain", "chat_models", "openai", "ChatOpenAI"], "kwargs": {"model_name": "gpt-4o-mini", '
        '"openai_api_key": {"id": ["OPENAI_API_KEY"], "lc": 1, "type": "secret"}, "stream_usage": true, '
        '"temperature": 0.0}, "lc": 1, "name": "ChatOpenAI", "type": "constructor"}---[(\'stop\', None)]'
    )
    model, params = lc.parse_llm_string(serialized)
    assert model == "gpt-4o-mini" and params["temperature"] == 0.0 and params["_class"] == "ChatOpenAI"


def test_parse_llm_string_never_evaluates_code():
    model, params = lc.parse_llm_string("__import__('os').system('touch /tmp/cacheops-pwned')")
    assert params == {}
