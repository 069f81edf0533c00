"""A request says it is about to take long, so its worker lets another thread take new connections.

The worker (:mod:`.serving.sync_worker`) answers on one thread at a time while requests are
quick: one thread waiting on the socket is what makes a sync worker as fast as it is. A
request that knows it will be slow, a multi-model cold load (:mod:`.multi_model.store`),
calls :func:`starting`; the worker then hands the socket to one of its idle threads before
the slow work begins, so the models it already holds keep answering meanwhile.
Outside such a worker (tests in-process, the single thread of ``LIGHTGBM_SERVER_THREADS=1``)
nothing happens.
"""

from __future__ import annotations

from collections.abc import Callable

_hand_off: Callable[[], None] | None = None


def set_hand_off(hand_off: Callable[[], None] | None) -> None:
    """The worker's way to hand the socket on (called from the thread that is about to be slow)."""
    global _hand_off  # noqa: PLW0603 - one worker per process: set once when it starts
    _hand_off = hand_off


def starting() -> None:
    """This request's thread is about to do slow work: let another thread take new connections."""
    if _hand_off is not None:
        _hand_off()
