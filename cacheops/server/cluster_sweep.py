"""The last step of a cluster scan during which slots were migrated: each such slot is listed again
from the nodes that hold its keys now (CLUSTER GETKEYSINSLOT), without the names already listed.

A key being migrated moves from the slot's source node to its target (MIGRATE), never back, so the
source is read first and the target after it: a key that moves in between is found on the target.
Only one slot's names are held at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import redis

from .cluster_view import ClusterView

GETKEYS_SLACK = 1000  # keys written into the slot between COUNTKEYSINSLOT and GETKEYSINSLOT


def slot_nodes(view: ClusterView, slot: int) -> list[tuple[str, bool]]:
    """(node name, asking) in the order to read a slot's keys: the node moving it out (or its primary)
    first, then the node taking it in (read with ASKING)."""
    source = view.migrating.get(slot)
    if source is None:
        owners = [line for line in view.lines if line.is_primary and not line.failing and _serves(line.slots, slot)]
        source = owners[0].name if owners else None
    target = view.importing.get(slot)
    order = [(source, False)] if source else []
    if target and target != source:
        order.append((target, True))
    return order


def _serves(ranges: list[tuple[int, int]], slot: int) -> bool:
    return any(first <= slot <= last for first, last in ranges)


def sweep_slot(
    slot: int,
    nodes: list[tuple[redis.Redis, bool]],
    listed: set[bytes],
    opts,
    read_keys: Callable,
) -> Iterator[list]:
    """Batches of the records of `slot` on `nodes` (client, asking) not in `listed` (which grows with
    every key yielded), filtered by opts.match / opts.type as SCAN would."""
    match = glob_regex(opts.match.encode()) if opts.match else None
    for client, asking in nodes:
        count = int(client.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot))
        if not count:
            continue
        names = client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, count + GETKEYS_SLACK)
        names = [n for n in names if n not in listed and (match is None or match.fullmatch(n))]
        for start in range(0, len(names), max(opts.count, 1)):
            records = read_keys(client, names[start : start + opts.count], opts, asking=asking)
            batch = [r for r in records if r.type and r.type != "none" and (not opts.type or r.type == opts.type)]
            listed.update(r.key for r in batch)
            if batch:
                yield batch


def glob_regex(pattern: bytes) -> re.Pattern[bytes]:
    """A Redis glob (SCAN MATCH: * ? [abc] [^a-z] and \\ escapes) as a regex for fullmatch."""
    out: list[bytes] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i : i + 1]
        if c == b"*":
            out.append(b".*")
        elif c == b"?":
            out.append(b".")
        elif c == b"\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i : i + 1]))
        elif c == b"[":
            j = i + 1
            negate = pattern[j : j + 1] == b"^"
            j += negate
            items: list[bytes] = []
            while j < n and pattern[j : j + 1] != b"]":
                ch = pattern[j : j + 1]
                if ch == b"\\" and j + 1 < n:
                    j += 1
                    items.append(re.escape(pattern[j : j + 1]))
                elif j + 2 < n and pattern[j + 1 : j + 2] == b"-" and pattern[j + 2 : j + 3] != b"]":
                    low, high = sorted((pattern[j], pattern[j + 2]))
                    items.append(re.escape(bytes([low])) + b"-" + re.escape(bytes([high])))
                    j += 2
                else:
                    items.append(re.escape(ch))
                j += 1
            if items:
                out.append(b"[" + (b"^" if negate else b"") + b"".join(items) + b"]")
            else:
                out.append(b"." if negate else b"(?!)")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile(b"".join(out), re.DOTALL)
