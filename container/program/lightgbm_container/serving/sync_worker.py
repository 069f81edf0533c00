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

3. **Threads that take turns** (``--threads N``, multi-model mode's default 4). gunicorn's
   threaded worker (gthread) accepts in one thread and queues each connection to a pool: a
   hand-off per request that put multi-model's hot path at 1.2-2.2 times single-model's
   (``bench/multi_model.py``). Here one thread at a time, the leader, runs the loop above;
   the others sleep, so a quick request takes exactly the single thread's path. A request
   about to be slow, a multi-model cold load, says so (:mod:`..slow_work`) and the leader
   hands the loop to an idle thread before the slow work begins, so loaded models keep
   answering while it runs; once done, the slow thread goes back to sleep. Idle threads keep
   gunicorn's heartbeat; on a graceful stop the worker waits for their requests to end.

Everything else is gunicorn's own sync worker: one request at a time per thread, no keep-alive.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time
from typing import Any

from gunicorn.workers.sync import StopWaiting
from gunicorn.workers.sync import SyncWorker as GunicornSyncWorker

from .. import slow_work

#: How much of an unread request body is read (and dropped) at a time after the answer.
BODY_CHUNK = 1024 * 1024
#: How often an idle thread looks whether the worker is stopping.
IDLE_CHECK_SECONDS = 1.0


class Worker(GunicornSyncWorker):
    """``--worker-class lightgbm_container.serving.sync_worker.Worker`` (:mod:`.http_front`).

    Not named ``...SyncWorker``: gunicorn replaces a worker class whose name ends so with its
    gthread worker whenever ``--threads`` is above 1 (``Config.worker_class_str``)."""

    poller: select.epoll | None = None

    def run(self) -> None:
        """gunicorn's sync loop, run by one thread of ``--threads`` at a time (the leader); a
        request that hands off (:mod:`..slow_work`) passes the loop on to an idle thread."""
        for listener in self.sockets:
            listener.setblocking(False)
        self._turn = threading.Condition()
        self._leader: int | None = threading.get_ident()
        others = [
            threading.Thread(target=self._follow_or_stop, name=f"request-{index}", daemon=True)
            for index in range(1, max(1, self.cfg.threads))
        ]
        if others:
            slow_work.set_hand_off(self._hand_off)
        for thread in others:
            thread.start()
        try:
            self._follow()
        finally:
            self.alive = False
            with self._turn:
                self._turn.notify_all()
            deadline = time.monotonic() + self.cfg.graceful_timeout
            for thread in others:  # the requests they are answering end before the process does
                thread.join(max(0.0, deadline - time.monotonic()))

    def _follow_or_stop(self) -> None:
        """:meth:`_follow` in a thread other than the main one. What would end a sync worker (an
        unexpected error accepting) stops this one too, so gunicorn starts a fresh one, rather
        than leaving the loop with a thread that is gone while the others keep the heartbeat."""
        try:
            self._follow()
        except BaseException:
            self.log.exception("a request thread failed; stopping the worker")
            self.alive = False
            raise

    def _follow(self) -> None:
        """Wait for the turn to lead, then run gunicorn's accept loop until this thread hands off."""
        me = threading.get_ident()
        # With several threads, the leader may not be the main thread, and a stop's wake-up
        # byte (gunicorn's signal pipe) did not reach its wait in every run: it looks again
        # within a second, as the idle ones do.
        timeout = min(self.timeout or 0.5, IDLE_CHECK_SECONDS) if self.cfg.threads > 1 else self.timeout or 0.5
        while self.alive:
            with self._turn:
                while self._leader not in (None, me):
                    if self._stopping():
                        return
                    # Short waits: a stop only clears ``alive`` (a signal handler cannot take
                    # this lock), so an idle thread notices it within a second.
                    self._turn.wait(IDLE_CHECK_SECONDS)
                    self.notify()  # the heartbeat, whichever thread is idle (gunicorn's --timeout)
                self._leader = me
            self._lead(timeout)

    def _stopping(self) -> bool:
        """gunicorn's signal handlers clear ``alive`` from the main thread at any time."""
        return not self.alive

    def _lead(self, timeout: float) -> None:
        """gunicorn's ``run_for_one`` while this thread leads."""
        me = threading.get_ident()
        listener = self.sockets[0]
        while self.alive and self._leader == me:
            self.notify()
            try:
                self.accept(listener)
                continue
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                    raise
            if not self.is_parent_alive():
                self.alive = False
                return
            try:
                self.wait(timeout)
            except StopWaiting:
                self.alive = False
                return

    def _hand_off(self) -> None:
        """The leader is about to be slow: an idle thread (if any) leads from now on."""
        with self._turn:
            if self._leader == threading.get_ident():
                self._leader = None
                self._turn.notify()

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
