"""Writes caches the way an app on langchain-redis 0.1.2 (redisvl 0.3.9, langchain-core 0.3.86,
redis-py 5.3.1) does: set_llm_cache + invoke. The app code is the same as on the legacy stack, so
this runs write_legacy_langchain.py's main() in the 0.1.2 venv (ops langchain_redis_*).

usage: python write_langchain_redis_01.py REDIS_URL '{"op": ..., "qa": [[prompt, answer], ...], ...}'"""

import json
import sys

from write_legacy_langchain import main

if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
