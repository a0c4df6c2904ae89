"""Before a command writes anything: may this connection's ACL user run the writes it needs?

ACL DRYRUN would answer exactly, but it is an admin command a cacheops user seldom has. So each
write is probed in a form that changes nothing: on a key that does not exist, with an argument the
command then rejects (a DUMP payload with a wrong checksum, a stream ID of 0-0), or undone in the
same breath (MULTI + DISCARD, WATCH + UNWATCH). Redis checks the ACL before it runs a command, so a
forbidden command or key comes back as NOPERM and anything else as a harmless reply or error.

A user granted single commands rather than categories may pass a probe for a sibling command and
still be refused mid-run (say, +unlink without +hdel); the run then stops with the same one-line
error, and its backup holds whatever was done.

On a Redis Cluster each probe runs on one connection of the node serving its key: a cluster
pipeline would send WATCH, MULTI and DISCARD to different nodes and leave a pooled connection in
MULTI, queueing whatever the next caller sends on it. (ACLs are checked before a cluster
redirection, so a MOVED reply would also have meant "allowed".)
"""

from __future__ import annotations

import secrets

import redis

from ..errors import PermissionDenied
from ..ownkeys import OPLOG_STREAM
from .scripting import is_no_permission
from .topology import is_cluster

# What each write is for, and its harmless probe (KEY: a key that does not exist under the
# prefix the command will write to).
PROBES: dict[str, tuple[str, list]] = {
    "unlink": ("delete keys (UNLINK)", ["UNLINK", "KEY"]),
    "hash": ("write hash fields (HSET/HDEL)", ["HDEL", "KEY", "cacheops-probe"]),
    "json": ("write JSON documents (JSON.SET)", ["JSON.SET", "KEY", "$.cacheops-probe", "0"]),
    "restore": ("put keys back (RESTORE)", ["RESTORE", "KEY", "0", "not a dump payload"]),
    "expire": ("set expiries (PEXPIRE)", ["PEXPIRE", "KEY", "1000"]),
    "scripts": ("run server-side scripts (SCRIPT LOAD, EVALSHA)", ["EVALSHA", "0" * 40, "0"]),
    "transactions": ("transactions (WATCH/MULTI/EXEC)", [["WATCH", "KEY"], ["UNWATCH"], ["MULTI"], ["DISCARD"]]),
    "rename": ("rename keys (RENAMENX)", ["RENAMENX", "KEY", "KEY"]),
    # an index name that does not exist; FT.CREATE without fields is rejected after the ACL check
    "index": (
        "create and drop search indexes (FT.CREATE, FT.DROPINDEX)",
        [
            ["FT.DROPINDEX", "cacheops-permission-probe"],
            ["FT.CREATE", "cacheops-permission-probe", "ON", "HASH", "PREFIX", "1", "cacheops-probe:", "SCHEMA"],
        ],
    ),
    "oplog": (
        f"append to the operations log (XADD {OPLOG_STREAM})",
        ["XADD", OPLOG_STREAM, "NOMKSTREAM", "0-0", "p", "1"],
    ),
}


def require(client: redis.Redis, action: str, needs: list[str], under: bytes | str = b"cacheops:") -> None:
    """Raise PermissionDenied naming the first write `action` needs that the ACL user may not run.
    under: a key prefix the writes go to (key patterns in the ACL are checked too)."""
    prefix = under.encode() if isinstance(under, str) else under
    probe_key = prefix + b"cacheops-permission-probe-" + secrets.token_hex(8).encode()
    for need in needs:
        label, probe = PROBES[need]
        commands = probe if isinstance(probe[0], list) else [probe]
        routed_by = probe_key if commands[0][1] == "KEY" else commands[0][1]
        pipe = _one_connection(client, routed_by).pipeline(transaction=False)  # WATCH/UNWATCH, MULTI/DISCARD pair up
        for command in commands:
            pipe.execute_command(*[probe_key if arg == "KEY" else arg for arg in command])
        for reply in pipe.execute(raise_on_error=False):
            if is_no_permission(reply):
                raise PermissionDenied(
                    f"{action} needs permission to {label}, which this ACL user lacks ({reply}); "
                    "nothing was changed. `cacheops doctor` lists what cacheops needs"
                )


def _one_connection(client, key: bytes | str):
    """The client whose pipeline runs on one connection: on a cluster, the plain client of the node
    serving `key` (a probe's first key; EVALSHA's "0" hashes somewhere, any node answers it)."""
    if is_cluster(client):
        return client.get_redis_connection(client.get_node_from_key(key))
    return client
