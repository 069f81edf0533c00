"""The next piece of a large body, read and decoded while this one is predicted.

Reading a piece (the socket), parsing it (pandas' C parser) and predicting it (the compiled
trees, called through ctypes) each release the GIL, so a second thread that reads and decodes
piece k+1 while the request's thread predicts piece k keeps two cores busy on one large
request. At most one decoded piece waits, so memory stays at two pieces' rows.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


def prefetched(items: Iterator[T]) -> Iterator[T]:
    """``items``, each produced in a background thread while the caller works on the previous
    one. An exception the producer raises is raised here, at its place in the sequence; a
    caller that stops early (its own error) stops the producer after its current item."""
    handoff: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=1)
    stopped = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stopped.is_set():
                    try:
                        handoff.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stopped.is_set():
                    return
            handoff.put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            handoff.put((_DONE, exc))

    producer = threading.Thread(target=produce, name="body-pieces", daemon=True)
    producer.start()
    try:
        while True:
            item, error = handoff.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item  # type: ignore[misc]
    finally:
        stopped.set()
        while producer.is_alive():  # let it see the stop flag (a full queue) and end
            try:
                handoff.get_nowait()
            except queue.Empty:
                producer.join(timeout=0.1)
