"""expire's compare-and-set of expiries (expire_cas.lua), on one server or a Redis Cluster: expire
changes expiries with it, restore puts expire's backed-up ones back.

One change: an entry key, the expiry it must still have (absolute ms, -1 none), the expiry to give
it, and its companion keys (cacheops tag hash, hit-tracker record, a layout's companions) with
theirs. The entry gets its new expiry only if its expiry is still the one expected; its companions
get theirs with it.

On one server that is one script call for the whole batch. On a cluster a script's keys must share
one hash slot: the changes are grouped by the entry's slot, each group's call takes the entries with
their companions in that slot (the tag hash lives there: ownkeys.cluster_tag_key), each primary's
calls in one pipeline, the primaries in parallel (server/slots.py). Companions in other slots (the
hit record, tags under the one-server name an earlier cacheops used, a layout's companions) are set
right after, for the entries whose expiry was set: what evict does with them when it deletes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import redis
from redis.cluster import RedisCluster

from ..server.scripting import Script
from ..server.slots import NodePipelines, slot_groups
from ..server.topology import is_cluster

EXPIRE_CAS = Script(Path(__file__).with_name("expire_cas.lua"))
SLOT_SLICE = 125  # entries per script call on a cluster
DONE, CHANGED_MEANWHILE, GONE = 1, -1, -2  # the script's answer per entry


@dataclass
class ExpiryChange:
    key: bytes
    expected: int  # the expiry the entry must still have (absolute ms, -1 none)
    new: int  # the expiry it gets (absolute ms, -1 none: PERSIST)
    companions: list[tuple[bytes, int]] = field(default_factory=list)  # (key, its new expiry)


class ExpirySetter:
    """Runs the compare-and-set on `client` (one server or a cluster); loads the script once."""

    def __init__(self, client: redis.Redis, what: str = "the expire"):
        self.client = client
        self.cluster = is_cluster(client)
        if self.cluster:
            self.reads = NodePipelines(client, (), what)  # a preview asks for no scripting
            self.nodes = NodePipelines(client, [EXPIRE_CAS], what)
        else:
            self.script = EXPIRE_CAS.bind(client, load=False)  # loaded at its first call

    def expiries(self, keys: list[bytes]) -> tuple[list[int], list[int]]:
        """Each key's expiry (PEXPIRETIME: absolute ms, -1 none, -2 no such key) and the time (ms)
        of the server that answered, read just before: on a cluster each node's own clock."""
        if not keys:
            return [], []
        if self.cluster:
            replies, times = self.reads.run([(key, ["PEXPIRETIME", key]) for key in keys], with_time=True)
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
            return replies, [t or 0 for t in times]
        pipe = self.client.pipeline(transaction=False)
        pipe.time()
        for key in keys:
            pipe.execute_command("PEXPIRETIME", key)
        (seconds, micros), *found = pipe.execute()
        return found, [int(seconds) * 1000 + int(micros) // 1000] * len(keys)

    def run(self, changes: list[ExpiryChange]) -> list[int]:
        """Per change: DONE, CHANGED_MEANWHILE (left alone) or GONE. A lost primary on a cluster
        raises NodeLost (slots.py): each batch's old expiries are backed up before this runs."""
        if not changes:
            return []
        if self.cluster:
            return self._by_slot(changes)
        keys, args = _call(changes)
        return list(self.script(keys=keys, args=args))

    def _by_slot(self, changes: list[ExpiryChange]) -> list[int]:
        keyslot = cast(RedisCluster, self.client).keyslot
        entries = [c.key for c in changes]
        slots = [keyslot(key) for key in entries]
        here = [[(k, t) for k, t in c.companions if keyslot(k) == s] for c, s in zip(changes, slots)]
        away = [[(k, t) for k, t in c.companions if keyslot(k) != s] for c, s in zip(changes, slots)]
        groups = slot_groups(self.client, entries, SLOT_SLICE)
        commands = []
        for group in groups:
            part = [ExpiryChange(changes[i].key, changes[i].expected, changes[i].new, here[i]) for i in group]
            keys, args = _call(part)
            commands.append((keys[0], ["EVALSHA", EXPIRE_CAS.sha, len(keys), *keys, *args]))
        replies, _ = self.nodes.run(commands)
        statuses = [GONE] * len(changes)
        for group, reply in zip(groups, replies):
            if isinstance(reply, Exception):
                raise reply
            for i, status in zip(group, reply):
                statuses[i] = status
        rest = [
            (key, ["PERSIST", key] if when == -1 else ["PEXPIREAT", key, when])
            for i, status in enumerate(statuses)
            if status == DONE
            for key, when in away[i]
        ]
        if rest:
            self.nodes.run(rest)
        return statuses


def _call(changes: list[ExpiryChange]) -> tuple[list[bytes], list]:
    """KEYS and ARGV of one script call (expire_cas.lua's layout)."""
    keys: list[bytes] = []
    args: list = []
    for c in changes:
        keys += [c.key] + [k for k, _ in c.companions]
        args += [c.expected, c.new, len(c.companions)] + [when for _, when in c.companions]
    return keys, args
