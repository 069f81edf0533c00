"""Progress of long work in the log, in lines CloudWatch shows well: each data file read
(rows, bytes, how fast), and the fit (where it is, how fast it goes, how long is left)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("train")


def file_read(display: str, path: Path, rows: int, columns: int, has_header: bool, started: float, reader: str) -> None:
    """ "read train/part-1.csv: 1000000 rows, 51 columns, with header, 412.3 MB in 1.52 s
    (657895 rows/s, 271 MB/s, pandas C parser, 2 threads)"; ``started``: :func:`time.monotonic` before reading."""
    seconds = max(time.monotonic() - started, 1e-6)
    megabytes = path.stat().st_size / 1e6
    log.info(
        "read %s: %d rows, %d columns%s, %.1f MB in %.2f s (%.0f rows/s, %.0f MB/s, %s)",
        display,
        rows,
        columns,
        ", with header" if has_header else "",
        megabytes,
        seconds,
        rows / seconds,
        megabytes / seconds,
        reader,
    )


class Progress:
    """A LightGBM callback: a line every tenth of the rounds or every ``every_seconds``,
    whichever comes first, and at the last round ("progress: round 40/100 (40 %), 12.5
    rounds/s, about 4.8 s left")."""

    order = 50  # after the metric lines and the checkpoint of the same round

    def __init__(self, every_seconds: float = 30.0) -> None:
        self.every_seconds = every_seconds
        self.started: float | None = None
        self.first_round = 0
        self.logged_at = 0.0

    def __call__(self, env: Any) -> None:
        now = time.monotonic()
        if self.started is None:
            # Called after a round: the clock starts at the end of this run's first round (a
            # resumed run starts past 0), so the rate counts the rounds after it.
            self.started, self.first_round, self.logged_at = now, env.iteration + 1, now
        round_, last = env.iteration + 1, env.end_iteration
        step = max(1, (last - env.begin_iteration) // 10)
        if round_ == last or (round_ - env.begin_iteration) % step == 0 or now - self.logged_at >= self.every_seconds:
            done, seconds = round_ - self.first_round, now - self.started
            if done > 0 and seconds > 0:
                rate = done / seconds
                log.info(
                    "progress: round %d/%d (%d %%), %.1f rounds/s, about %.1f s left",
                    round_,
                    last,
                    100 * round_ // last,
                    rate,
                    (last - round_) / rate,
                )
            else:  # no round timed yet (the first one's start is LightGBM's): no rate to guess
                log.info("progress: round %d/%d (%d %%)", round_, last, 100 * round_ // last)
            self.logged_at = now
