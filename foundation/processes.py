"""Operating-system processes: whether one is alive, and tying a child's life to its parent's."""

from __future__ import annotations

import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def killed_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        import ctypes  # 3 ms, for the processes that need it

        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
