"""Time limits of a cell and of a task's shared set-up.

A per-cell time limit (``cell_timeout``) is enforced in-process with
``SIGALRM``: the cell is interrupted between Python bytecodes (after the
current torch operation) and recorded with status ``timeout``. That needs the
main thread of a POSIX process; elsewhere the limit is not enforced here (the
processes executor also kills a worker that does not come back).

The task's shared set-up (loading the data set, training the original and the
reference) is limited too, to ``SETUP_LIMIT_FACTOR`` times the per-cell limit
(it trains two models where a cell trains at most about one), but never to
less than ``SETUP_LIMIT_MIN_S`` (it also pays one-off costs a cell does not: a
fresh worker's first training, loading the data). If it runs past that, every
pending cell of the task is recorded as ``timeout`` with a message saying the
shared set-up ran past its limit. (Shadow models and other artifacts built
lazily inside a cell count against that cell's limit.)
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)


class CellTimeout(BaseException):
    """Raised inside a cell that ran past its time limit.

    A ``BaseException``, so a plugin's ``except Exception`` cannot swallow it.
    """


SETUP_LIMIT_FACTOR = 2.0  # a task's shared set-up may take this many times --cell-timeout
SETUP_LIMIT_MIN_S = 60.0  # ... and at least this long
CELL_LIMIT = "the per-cell time limit"
SETUP_LIMIT = "its time limit"


def overrun_message(elapsed: float, seconds: float) -> str:
    """Why a cell that finished past its limit (its plugin kept the alarm out) is not kept."""
    return (
        f"the cell ran {elapsed:.1f} s, past its time limit of {seconds:g} s (--cell-timeout), "
        "without being stopped: its plugin blocks SIGALRM or catches BaseException, and this "
        "process cannot interrupt it. Its result is not kept. The processes executor "
        "(--executor processes) enforces the limit by ending the worker process"
    )


def setup_limit(cell_timeout: float | None) -> float | None:
    """The time limit of a task's shared set-up for a per-cell limit (``None``: none)."""
    if cell_timeout is None:
        return None
    return max(SETUP_LIMIT_FACTOR * cell_timeout, SETUP_LIMIT_MIN_S)


def setup_timeout_message(seconds: float, how: str = "") -> str:
    """Why a task's cells were recorded ``timeout`` when its shared set-up ran too long."""
    return (
        f"the task's shared set-up (data set, original and reference models) ran past its "
        f"time limit of {seconds:g} s ({SETUP_LIMIT_FACTOR:g} x --cell-timeout, at least "
        f"{SETUP_LIMIT_MIN_S:g} s){how}; this cell never ran"
    )


@contextlib.contextmanager
def time_limit(
    seconds: float | None, what: str = CELL_LIMIT, option: str = "--cell-timeout"
) -> Iterator[None]:
    """Raise :class:`CellTimeout` in this thread after ``seconds`` (main thread, POSIX).

    Where ``SIGALRM`` cannot be used (not the main thread, Windows) the body runs
    without a limit; a caller that needs a hard limit runs it in a killable process.
    ``what`` names the limit in the exception's message, ``option`` the option that set it.
    """
    usable = (
        seconds is not None
        and seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        if seconds:
            log.warning(
                "the per-cell time limit needs SIGALRM in the main thread; not enforced here "
                "(use the processes executor for a hard limit)"
            )
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise CellTimeout(f"ran past {what} of {seconds:g} s ({option})")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))  # type: ignore[arg-type]
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)
