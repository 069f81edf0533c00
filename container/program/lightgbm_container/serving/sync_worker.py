"""gunicorn's sync worker, with two changes for serving behind nginx (``bench/hops.py`` found both).

1. **One worker wakes per connection.** gunicorn's sync workers wait for a connection with
   ``select()`` on the shared socket, so every new connection wakes every idle worker; all but
   one find nothing to accept and go back to sleep. Here they wait on an ``epoll`` set holding
   the socket with ``EPOLLEXCLUSIVE``, so the kernel wakes one.
2. **A connection closes as soon as its answer is written.** Since gunicorn 23, every
   connection ends with ``close_graceful``: a half-close, then waiting for the peer's FIN, so
   that unread request bytes cannot make the kernel reset the connection before the client has
   read the answer. Behind nginx, the worker waited for nginx to close its end each time. Here
   it closes at once when nothing is left to read, since then a close cannot cause a reset. A
   body the app answered without reading (an error) is read to its end first, as gunicorn's
   keep-alive workers do; with unread bytes left or a failed request it waits as gunicorn does.

Measured with ``bench/run.py --compare-serve`` (2 workers, 3 interleaved rounds): one-row p50
at one connection 0.426 -> 0.249 ms, requests/s at 1 connection 2,596 -> 3,560 and at 8
connections 4,757 -> 5,611; large bodies unchanged.
Everything else is gunicorn's own sync worker: one request at a time, no keep-alive.
"""

from __future__ import annotations

import errno
import os
import select
import socket
from typing import Any

from gunicorn.workers.sync import StopWaiting
from gunicorn.workers.sync import SyncWorker as GunicornSyncWorker

#: How much of an unread request body is read (and dropped) at a time after the answer.
BODY_CHUNK = 1024 * 1024


class SyncWorker(GunicornSyncWorker):
    """``--worker-class lightgbm_container.serving.sync_worker.SyncWorker`` (:mod:`.http_front`)."""

    poller: select.epoll | None = None

    def wait(self, timeout: float) -> list[Any] | None:
        """As gunicorn's ``wait``: the ready listeners (or None), a signal's wake-up byte consumed."""
        self.notify()
        if self.poller is None:
            self.poller = select.epoll()
            for listener in self.sockets:
                self.poller.register(listener.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
            self.poller.register(self.PIPE[0], select.EPOLLIN)  # signals wake the worker through it
        try:
            ready = {fd for fd, _events in self.poller.poll(timeout)}
        except OSError as error:
            if error.errno == errno.EBADF:
                raise StopWaiting from error
            raise
        if self.PIPE[0] in ready:
            os.read(self.PIPE[0], 1)
        return [listener for listener in self.sockets if listener.fileno() in ready] or None

    def handle_request(self, listener: Any, req: Any, client: socket.socket, addr: Any) -> None:
        super().handle_request(listener, req, client, addr)
        # Answered. The rest of a body the app did not read (an error answered first) is read
        # and dropped: nginx sends the whole body before it reads the answer, and closing on
        # unread bytes resets the connection, so the caller would get a 502 for its 404.
        try:
            while req.body.read(BODY_CHUNK):
                pass
        except Exception:  # noqa: BLE001 - the peer went away or sent a broken body: close_graceful's case
            return
        # Nothing unread (and the peer has not closed): no reset is possible, close now;
        # gunicorn's close_graceful then finds the socket closed and returns at once.
        readable, _, _ = select.select([client], [], [], 0)
        if not readable:
            client.close()
