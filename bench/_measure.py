"""Run a command with stdout to /dev/null; print '<wall seconds> <peak RSS KiB> <exit code> <CPU seconds>'
of that command.

A separate small process, so the child's peak RSS is its own: on Linux a forked child keeps the
parent's RSS high-water mark across exec, which would charge the benchmark's own memory to it.
"""

import os
import sys
import time

argv = sys.argv[1:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.execvp(argv[0], argv)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
print(f"{wall:.4f} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)} {usage.ru_utime + usage.ru_stime:.3f}")
