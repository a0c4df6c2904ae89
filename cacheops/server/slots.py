"""Commands grouped by Redis Cluster hash slot, sent one pipeline per primary.

A cluster runs a multi-key command or script only when all its keys hash to one slot (CROSSSLOT
otherwise), and redis-py's cluster pipeline refuses a script whose keys span slots. So a caller
groups its keys by slot (slot_groups), builds one command per group, and NodePipelines sends the
commands of each primary in one pipeline on one connection, the primaries in parallel, and hands
the replies back in the order the commands were given.

A primary lost on the way (killed, failing over) ends the call with NodeLost, a one-line
ConnectionFailed naming it; it carries the replies of the primaries that answered, so a caller that
wrote can count what was done. A slot that moved since the client learnt the slot map (MOVED/ASK,
a failover or a resharding under way) is NodeLost too: nothing is sent to a node that no longer owns
the keys, and a re-run learns the new map.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import redis
from redis import exceptions as rex

from ..errors import ConnectionFailed
from .scripting import Script

PARALLEL = 4  # primaries written to at once


class NodeLost(ConnectionFailed):
    """A primary did not answer (or no longer owns a slot). `replies` holds what the others
    answered, None where a command's node was lost."""

    def __init__(self, message: str, replies: list):
        super().__init__(message)
        self.replies = replies


def slot_groups(client, keys: Sequence[bytes], size: int) -> list[list[int]]:
    """Indexes into `keys`, grouped by hash slot in first-seen order, each group at most `size` long."""
    by_slot: dict[int, list[list[int]]] = {}
    order: list[list[int]] = []
    for i, key in enumerate(keys):
        groups = by_slot.setdefault(client.keyslot(key), [])
        if not groups or len(groups[-1]) >= size:
            groups.append([])
            order.append(groups[-1])
        groups[-1].append(i)
    return order


class NodePipelines:
    """Sends (key, command) pairs, each to the primary serving its key (one pipeline per primary).
    Scripts named here are loaded on a primary before its first pipeline (EVALSHA needs them on
    every node; SCRIPT LOAD is idempotent)."""

    def __init__(self, client, scripts: Iterable[Script] = (), what: str = "the operation"):
        self.client = client
        self.scripts = list(scripts)
        self.what = what
        self._loaded: set[str] = set()

    def run(self, commands: Sequence[tuple[bytes, list]], with_time: bool = False) -> tuple[list, list[int | None]]:
        """(replies in order, and with with_time the server time in ms of the node that ran each
        command, read just before it: an expiry read there is relative to that node's clock).
        Error replies come back as exceptions; a lost node raises NodeLost."""
        per_node: dict[str, tuple[object, list[int]]] = {}
        replies: list = [None] * len(commands)
        for i, (key, _command) in enumerate(commands):
            try:
                node = self.client.get_node_from_key(key)
            except rex.SlotNotCoveredError as exc:  # its primary failed and no replica took over (yet)
                raise NodeLost(f"no primary serves a slot {self.what} needs ({exc})", replies) from None
            per_node.setdefault(node.name, (node, []))[1].append(i)
        times: list[int | None] = [None] * len(commands)
        lost: list[str] = []

        def send(node, indexes: list[int]) -> None:
            try:
                conn = self.client.get_redis_connection(node)
                self._load(node.name, conn)
                pipe = conn.pipeline(transaction=False)
                if with_time:
                    pipe.execute_command("TIME")
                for i in indexes:
                    pipe.execute_command(*commands[i][1])
                out = pipe.execute(raise_on_error=False)
            except (rex.ConnectionError, rex.TimeoutError) as exc:
                lost.append(f"lost primary {node.name} in the middle of {self.what} ({exc})")
                return
            now = None
            if with_time:
                seconds, micros = out.pop(0)
                now = int(seconds) * 1000 + int(micros) // 1000
            moved = next((r for r in out if isinstance(r, (rex.MovedError, rex.AskError))), None)
            if moved is not None:
                lost.append(
                    f"the cluster moved a slot of {node.name} in the middle of {self.what} ({moved}): "
                    "its slot map changed (a failover or resharding)"
                )
                return
            for i, reply in zip(indexes, out):
                replies[i], times[i] = reply, now

        nodes = list(per_node.values())
        if len(nodes) <= 1:
            for node, indexes in nodes:
                send(node, indexes)
        else:
            with ThreadPoolExecutor(max_workers=min(PARALLEL, len(nodes)), thread_name_prefix="cacheops-nodes") as pool:
                for future in [pool.submit(send, node, indexes) for node, indexes in nodes]:
                    future.result()
        if lost:
            raise NodeLost("; ".join(lost), replies)
        return replies, times

    def _load(self, name: str, conn: redis.Redis) -> None:
        if name in self._loaded or not self.scripts:
            return
        for script in self.scripts:
            conn.script_load(script.source)
        self._loaded.add(name)
