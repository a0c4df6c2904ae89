"""A second reference for bench/scan.py: key names only, SCAN COUNT 1000, redis-py + hiredis.

The floor for any Python client that lists a keyspace (Debian's redis-cli 7.0 cannot set COUNT).
"""

import sys

import redis

client = redis.Redis.from_url(sys.argv[1])
out = sys.stdout.buffer
cursor = 0
while True:
    cursor, keys = client.scan(cursor, count=1000)
    if keys:
        out.write(b"\n".join(keys) + b"\n")
    if cursor == 0:
        break
out.flush()
