"""How the flush thread talks to the stats Redis without holding the app's GIL for long.

Commands are packed by hand (RESP arrays of bulk strings: a few byte formats per command, where
redis-py's packer spends several microseconds of Python on each) and sent CHUNK at a time on one
connection of the client's own pool (its timeouts, TLS and login apply). A chunk's replies are
read before the next is sent: the server never has more than CHUNK of these commands queued ahead
of the app's own. Between slices of Python work the thread sleeps briefly (Slices): a bare
`time.sleep(0)` releases the GIL but usually takes it straight back before a waiting app thread
has woken up, so it is not a reliable hand-over.
"""

from __future__ import annotations

import time
from time import perf_counter

from redis.exceptions import ResponseError

SLICE_SECONDS = 40e-6  # the most Python the flush thread runs before it lets the app's threads in
YIELD_SECONDS = 20e-6  # how long it then sleeps (the kernel's timer slack makes it ~70 us)
CHUNK = 32  # commands sent per round trip


class Slices:
    """Cuts the flush thread's work into slices of at most SLICE_SECONDS: call tick() between
    small steps."""

    __slots__ = ("start", "yields")

    def __init__(self) -> None:
        self.start = perf_counter()
        self.yields = 0

    def tick(self) -> None:
        if perf_counter() - self.start >= SLICE_SECONDS:
            self.pause()

    def pause(self) -> None:
        time.sleep(YIELD_SECONDS)
        self.yields += 1
        self.start = perf_counter()


def command(*args: bytes) -> bytes:
    """One command in RESP: every argument already bytes."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def number(n: int | float) -> bytes:
    return b"%d" % n if isinstance(n, int) else repr(float(n)).encode()


class Batch:
    """Commands, sent CHUNK at a time on one connection; execute() returns the replies in order, a
    refused command's as its ResponseError. A connection error or timeout raises (the connection
    is dropped, the pool makes a new one next time). A client without a connection pool (a
    RedisCluster) gets the same commands through its own pipeline, which routes each to its node."""

    def __init__(self, client, slices: Slices):
        self.pool = getattr(client, "connection_pool", None)
        self.pipe = client.pipeline(transaction=False) if self.pool is None else None
        self.slices = slices
        self.pending: list[bytes] = []
        self.replies: list = []
        self.count = 0
        self.conn = None

    def add(self, *args: bytes) -> int:
        """Queue a command (every argument bytes); where its reply will be in execute()'s list."""
        if self.pipe is not None:
            self.pipe.execute_command(args[0].decode(), *args[1:])
        else:
            self.pending.append(command(*args))
        self.count += 1
        if self.count - len(self.replies) >= CHUNK:
            self._send()
        return self.count - 1

    def execute(self) -> list:
        try:
            if self.count > len(self.replies):
                self._send()
            return self.replies
        finally:
            self.close()

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            self.pool.release(conn)

    def _send(self) -> None:
        if self.pipe is not None:
            self.replies.extend(self.pipe.execute(raise_on_error=False))
            self.slices.tick()
            return
        pending, self.pending = self.pending, []
        conn = self.conn
        if conn is None:
            conn = self.conn = _connection(self.pool)
        try:
            conn.send_packed_command([b"".join(pending)], check_health=False)
            read, replies = conn.read_response, self.replies
            for _ in pending:
                try:
                    replies.append(read())
                except ResponseError as exc:
                    replies.append(exc)
        except BaseException:
            self.conn = None
            conn.disconnect()
            assert self.pool is not None  # a connection is only taken from a pool
            self.pool.release(conn)
            raise
        self.slices.tick()


def _connection(pool):
    try:
        return pool.get_connection()
    except TypeError:  # redis-py < 5.3 wants a command name
        return pool.get_connection("PING")
