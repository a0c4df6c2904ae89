"""server/scripting.py: scripts load once, survive SCRIPT FLUSH, and the server's error wordings are
told apart in one place (replies from the real server)."""

from __future__ import annotations

import pytest
import redis

from cacheops.server import scripting
from cacheops.server.scripting import Script


def test_a_script_is_loaded_once_and_again_after_a_flush(client, tmp_path):
    path = tmp_path / "echo.lua"
    path.write_text("return {KEYS[1], ARGV[1]}")
    script = Script(path, read_only=True)
    bound = script.bind(client)
    assert client.script_exists(script.sha) == [True]
    assert bound(["k"], ["v"]) == [b"k", b"v"]
    assert bound.command(["k"], ["v"])[:3] == ["EVALSHA_RO", script.sha, 1]
    client.script_flush()
    assert bound(["k"], ["w"]) == [b"k", b"w"]  # NOSCRIPT: loaded again


def test_the_prelude_is_the_shared_value_read(tmp_path):
    path = tmp_path / "x.lua"
    path.write_text("return 1")
    with_prelude = Script(path, prelude=True)
    assert with_prelude.source.startswith(scripting.PRELUDE.read_text())
    assert Script(path).source == "return 1"


def test_lazy_binding_asks_for_nothing_until_used(client, tmp_path):
    path = tmp_path / "lazy.lua"
    path.write_text("return 'lazy'")
    script = Script(path)
    bound = script.bind(client, load=False)
    assert client.script_exists(script.sha) == [False]
    pipe = client.pipeline(transaction=False)
    pipe.execute_command(*bound.command())
    assert pipe.execute() == [b"lazy"]


def test_error_wordings_of_the_real_server(client):
    with pytest.raises(redis.ResponseError) as unknown:
        client.execute_command("NO.SUCH.COMMAND")
    assert scripting.is_unknown_command(unknown.value)
    with pytest.raises(redis.ResponseError) as noscript:
        client.execute_command("EVALSHA", "0" * 40, 0)
    assert scripting.is_no_script(noscript.value) and not scripting.is_unknown_command(noscript.value)
    with pytest.raises(redis.ResponseError) as no_db:
        client.execute_command("SELECT", 999)
    assert scripting.is_no_such_database(no_db.value) and not scripting.is_select_in_cluster(no_db.value)
    client.execute_command("ACL", "SETUSER", "scripting-test", "on", ">pw", "~*", "+@all", "-eval", "-evalsha")
    try:
        port = client.connection_pool.connection_kwargs["port"]
        limited = redis.Redis(port=port, username="scripting-test", password="pw")
        with pytest.raises(redis.ResponseError) as noperm:
            limited.execute_command("EVALSHA", "0" * 40, 0)
        assert scripting.is_no_permission(noperm.value)
        with pytest.raises(redis.AuthenticationError) as wrongpass:
            redis.Redis(port=port, username="scripting-test", password="no").ping()
        assert scripting.is_auth_failure(wrongpass.value)
    finally:
        client.execute_command("ACL", "DELUSER", "scripting-test")
