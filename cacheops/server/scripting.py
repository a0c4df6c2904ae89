"""Server-side Lua scripts, loaded and called one way, and the wording of the server's error replies.

A Script is a Lua file (with the shared bounded value read, read_value.lua, before it when it asks for
the prelude). bind(client) registers it once (SCRIPT LOAD) and gives a BoundScript that calls it by
sha: EVALSHA_RO for a read-only script where the server has it (Redis >= 7; asked once, then
remembered), else EVALSHA; a script the server forgot (SCRIPT FLUSH, failover) is loaded again.
Callers that pipeline build the command with BoundScript.command.

The server's error replies are told apart by their wording, and only here (redisvl keeps its list the
same way): every check of a reply's text is one of the predicates below.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import redis

# -- what the server's error replies say ---------------------------------------------------------------

UNKNOWN_COMMAND = "unknown command"  # a command this server (or its modules) does not have
NO_PERMISSION = ("NOPERM",)  # reply prefix: the ACL user may not run it
NO_PERMISSION_TEXT = "no permission"  # ACL DRYRUN's wording
AUTH_FAILED = ("NOAUTH", "WRONGPASS")  # reply prefixes of a refused or missing login
AUTH_FAILED_TEXT = "invalid username-password"  # older servers' WRONGPASS text
NO_SCRIPT = "NOSCRIPT"  # EVALSHA of a sha the server does not hold
BUSY_KEY = "BUSYKEY"  # RESTORE onto a key that exists
NO_SUCH_DATABASE = ("DB index is out of range", "Invalid Database")  # SELECT n: Redis, and other servers
SELECT_IN_CLUSTER = "SELECT is not allowed in cluster mode"  # a cluster has db 0 only


def _text(exc: BaseException | str) -> str:
    return exc if isinstance(exc, str) else str(exc)


def is_unknown_command(exc: BaseException | str) -> bool:
    """The server has no such command: an older Redis (EVALSHA_RO < 7), or a missing module (FT.*, JSON.*)."""
    return UNKNOWN_COMMAND in _text(exc).lower()


def is_no_permission(exc: BaseException | str) -> bool:
    text = _text(exc)
    return (
        isinstance(exc, redis.exceptions.NoPermissionError)
        or text.startswith(NO_PERMISSION)
        or (NO_PERMISSION_TEXT in text.lower())
    )


def is_auth_failure(exc: BaseException | str) -> bool:
    text = _text(exc)
    return isinstance(exc, redis.AuthenticationError) or text.startswith(AUTH_FAILED) or AUTH_FAILED_TEXT in text


def is_no_script(exc: BaseException | str) -> bool:
    return isinstance(exc, redis.exceptions.NoScriptError) or _text(exc).startswith(NO_SCRIPT)


def is_busy_key(exc: BaseException | str) -> bool:
    return BUSY_KEY in _text(exc)


def is_no_such_database(exc: BaseException | str) -> bool:
    text = _text(exc)
    return any(wording in text for wording in NO_SUCH_DATABASE)


def is_select_in_cluster(exc: BaseException | str) -> bool:
    return SELECT_IN_CLUSTER in _text(exc)


# -- scripts -----------------------------------------------------------------------------------------

PRELUDE = Path(__file__).with_name("read_value.lua")


class Script:
    """A Lua file, with the shared prelude (read_value.lua) before it when `prelude`. read_only: the
    script only reads, so it may run as EVALSHA_RO (allowed on replicas and under read-only ACLs)."""

    def __init__(self, path: Path, prelude: bool = False, read_only: bool = False):
        self.path = path
        self.source = (PRELUDE.read_text() + "\n" if prelude else "") + path.read_text()
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()
        self.read_only = read_only

    def bind(self, client: redis.Redis, load: bool = True) -> BoundScript:
        """The script's caller on this client, registered on the server (SCRIPT LOAD) now, or with
        load=False when it is first used (a run that may not need it then never asks for scripting).
        Raises the server's ResponseError when scripts are refused (NOPERM, scripting disabled)."""
        bound = BoundScript(self, client)
        if load:
            bound.load()
        return bound


class BoundScript:
    def __init__(self, script: Script, client: redis.Redis):
        self.script, self.client = script, client
        self.loaded = False
        # EVALSHA_RO until the server says it has no such command (Redis < 7)
        self.read_only = script.read_only

    @property
    def sha(self) -> str:
        return self.script.sha

    def load(self) -> None:
        self.client.script_load(self.script.source)
        self.loaded = True

    def command(self, keys=(), args=()) -> list:
        """The command that runs the script, for a pipeline or a raw connection."""
        if not self.loaded:
            self.load()
        name = "EVALSHA_RO" if self.read_only else "EVALSHA"
        return [name, self.script.sha, len(keys), *keys, *args]

    def probe(self, keys=(), args=()):
        """Run once to learn whether the server has EVALSHA_RO (falling back to EVALSHA if not), before
        commands are built for pipelines. Returns the reply."""
        return self(keys, args)

    def __call__(self, keys=(), args=()):
        try:
            return self.client.execute_command(*self.command(keys, args))
        except redis.ResponseError as exc:
            if self.read_only and is_unknown_command(exc):  # Redis < 7: no EVALSHA_RO
                self.read_only = False
                return self(keys, args)
            if is_no_script(exc):  # the server forgot it (SCRIPT FLUSH, a failover): load it again
                self.load()
                return self.client.execute_command(*self.command(keys, args))
            raise
