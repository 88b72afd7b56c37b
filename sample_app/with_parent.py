"""python -m sample_app.with_parent PID MODULE [ARG...]: run MODULE as `python -m` would,
ended by SIGTERM when process PID, the one that started this, dies (Linux).

Asked for here, after exec, rather than in a `preexec_fn`: that runs between fork and exec,
and a fork of a process with threads (gRPC's, an exporter's) can deadlock or abort there
(the subprocess documentation warns of it; seen here: services killed by SIGABRT before
they wrote a line, when the test process had run an OTLP/gRPC receiver before).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import runpy
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    if len(sys.argv) < 3 or not sys.argv[1].isdigit():
        sys.exit("usage: python -m sample_app.with_parent PID MODULE [ARG...]")
    parent, module, *args = sys.argv[1:]
    with contextlib.suppress(Exception):  # not Linux: the parent stops it by pid instead
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(parent):  # it died before the line above could take effect
        sys.exit(f"{module}: the process that started it ({parent}) has already exited")
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
