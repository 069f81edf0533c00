"""Per-request metric updates, added up in plain Python and handed to prometheus-client in batches.

Why: in multiprocess mode each prometheus-client update takes a lock, checks the pid and
writes a memory-mapped file (about 1 µs, more with the caches cold after a prediction), and
a prediction moves 13 of them: 17 µs per request in a worker, 8 % of the requests per
second at 8 connections (bench/run.py). Added up here, a request costs one lock and a few
additions (about 2 µs in all), and a thread in each process publishes the sums every
:data:`PUBLISH_SECONDS`.

What that changes, and the README says: a scrape sees another worker's latest requests up
to :data:`PUBLISH_SECONDS` late (the worker answering the scrape publishes its own first),
and a worker killed with SIGKILL loses at most its last :data:`PUBLISH_SECONDS` of counts.
A worker that exits otherwise (gunicorn's ``worker_exit``, a timeout's ``worker_abort``,
the interpreter's exit) publishes first. Rare updates (model loads, worker restarts, gauges)
do not come through here: they go to prometheus-client at once.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from bisect import bisect_left
from typing import Any

log = logging.getLogger(__name__)

#: How often each process publishes what it added up; a scrape is at most this much behind.
PUBLISH_SECONDS = 0.5


class PendingCounter:
    """A counter child's increments not yet published."""

    __slots__ = ("_amount", "_child")

    def __init__(self, child: Any) -> None:
        self._child = child
        self._amount = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self._amount += amount

    def publish(self) -> None:
        if self._amount:
            self._child.inc(self._amount)
            self._amount = 0.0


class PendingHistogram:
    """A histogram child's observations not yet published, as bucket counts and a sum.

    prometheus-client has no batched ``observe``; :meth:`publish` adds to the same values its
    ``Histogram.observe`` adds to (``_buckets``, ``_sum``, in ``_upper_bounds`` order; the
    version is pinned, and tests/unit/test_observability_parts.py compares the exposition of
    both ways, so an upgrade that changes them fails there)."""

    __slots__ = ("_bounds", "_child", "_counts", "_sum")

    def __init__(self, child: Any) -> None:
        self._child = child
        self._bounds = list(child._upper_bounds)  # ends with +Inf: every value has a bucket
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0

    def observe(self, value: float) -> None:
        # Prometheus buckets are "less than or equal": the first bound >= value, as observe() finds it.
        self._counts[bisect_left(self._bounds, value)] += 1
        self._sum += value

    def publish(self) -> None:
        observed = False
        for index, count in enumerate(self._counts):
            if count:
                self._child._buckets[index].inc(count)
                self._counts[index] = 0
                observed = True
        if observed:
            self._child._sum.inc(self._sum)
            self._sum = 0.0


class Batch:
    """This process's pending updates, the lock that keeps them whole, and their publisher.

    Record under :attr:`lock` (one acquisition per request, however many metrics it moves):
    the publisher thread reads and resets the same numbers. (Queueing the raw figures for the
    publisher to add up instead was tried: it moves the work off the request's path but costs
    more CPU in all, which is what limits requests per second.)"""

    def __init__(self, interval: float = PUBLISH_SECONDS) -> None:
        self.lock = threading.Lock()
        self._interval = interval
        self._pending: list[PendingCounter | PendingHistogram] = []
        self._publisher_pid: int | None = None

    def counter(self, child: Any) -> PendingCounter:
        """A pending counter for a labelled child (create it once, under :attr:`lock`)."""
        pending = PendingCounter(child)
        self._pending.append(pending)
        return pending

    def histogram(self, child: Any) -> PendingHistogram:
        """A pending histogram for a labelled child (create it once, under :attr:`lock`)."""
        pending = PendingHistogram(child)
        self._pending.append(pending)
        return pending

    def publish(self, timeout: float = -1) -> bool:
        """Hand everything pending to prometheus-client now; False if the lock was not had within
        ``timeout`` (a signal handler that interrupted this very thread mid-update must not wait forever)."""
        if not self.lock.acquire(timeout=timeout):
            return False
        try:
            for pending in self._pending:
                pending.publish()
        finally:
            self.lock.release()
        return True

    def start_publishing(self) -> None:
        """Publish every interval from a daemon thread, and at exit; once per process (each
        forked gunicorn worker starts its own: threads do not survive a fork)."""
        if self._publisher_pid == os.getpid():
            return
        self._publisher_pid = os.getpid()
        threading.Thread(target=self._publish_forever, name="metrics-publisher", daemon=True).start()
        atexit.register(self.publish, 1.0)

    def _publish_forever(self) -> None:
        wake = threading.Event()
        while not wake.wait(self._interval):
            try:
                self.publish()
            except Exception:  # a metric must never take the worker down; say so and go on
                log.exception("publishing metrics failed")
