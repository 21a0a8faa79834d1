"""Runs mini-swe-agent's `mini` command unchanged, recording when each model call and each
command ran, for bench/loop_overhead.py.

Usage (with the virtualenv's python): MINI_PROBE_OUT=FILE python mini_probe.py <mini arguments>

It wraps two methods with timers (a few microseconds per call) and then calls the same entry
point as the `mini` executable:
- `LitellmModel._query`: one model call (litellm.completion), from the client's point of view;
- `LocalEnvironment.execute`: one command, including the subprocess spawn; the final
  `echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT` ends by raising `Submitted`, which is timed too.
Timestamps are `time.monotonic_ns()` (CLOCK_MONOTONIC), comparable with the parent process's.
At exit it writes {"model": [[start, end], ...], "tool": [[start, end], ...]} to MINI_PROBE_OUT.
"""

import atexit
import json
import os
import sys
import time

from minisweagent.environments.local import LocalEnvironment
from minisweagent.models.litellm_model import LitellmModel

MODEL: list[list[int]] = []
TOOL: list[list[int]] = []


def _timed(func, sink):
    def wrapper(*args, **kwargs):
        start = time.monotonic_ns()
        try:
            return func(*args, **kwargs)
        finally:
            sink.append([start, time.monotonic_ns()])

    return wrapper


LitellmModel._query = _timed(LitellmModel._query, MODEL)
LocalEnvironment.execute = _timed(LocalEnvironment.execute, TOOL)


@atexit.register
def _dump() -> None:
    path = os.environ.get("MINI_PROBE_OUT")
    if path:
        with open(path, "w") as out:
            json.dump({"model": MODEL, "tool": TOOL}, out)


if __name__ == "__main__":
    from minisweagent.run.mini import app

    sys.argv[0] = "mini"
    sys.exit(app())
