"""SageMaker's Pipe input mode: a channel's data arrives through a FIFO instead of as files.

SageMaker makes ``/opt/ml/input/data/<channel>_<epoch>`` FIFOs and streams the channel's S3
objects through them one after another, once per epoch. LightGBM reads its data once, so
``train`` reads ``<channel>_0``: it copies the stream to a file beside it on the ML volume
as it arrives (logging how fast), then reads that file by File mode's rules, CSV or
Parquet (Parquet can only be read with its footer, at the end; CSV's exact errors need a
second read for their line numbers), and deletes it. The format is the channel's
ContentType, else what the stream starts with (Parquet's ``PAR1``).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import TrainingError
from . import arrow_tables

log = logging.getLogger("train")

PARQUET_MAGIC = b"PAR1"


def is_pipe(channel_config: dict | None) -> bool:
    """Whether inputdataconfig.json puts the channel in Pipe mode (FastFile reads like File)."""
    return str((channel_config or {}).get("TrainingInputMode", "File")).lower() == "pipe"


def fifo(data_dir: Path, channel: str) -> Path:
    """The channel's first (and, for training that reads once, only) epoch."""
    return data_dir / f"{channel}_0"


@contextlib.contextmanager
def received(data_dir: Path, channel: str, content_type: str | None) -> Iterator[Path]:
    """A directory holding the channel's stream as one file, for as long as it is read."""
    source = fifo(data_dir, channel)
    if not source.exists():
        raise TrainingError(f"channel {channel!r} is in Pipe mode but SageMaker's FIFO {source} does not exist")
    try:
        directory = Path(tempfile.mkdtemp(prefix=f".{channel}-pipe-", dir=data_dir))
    except OSError:  # a read-only data directory: the temporary directory then
        directory = Path(tempfile.mkdtemp(prefix=f"{channel}-pipe-"))
    try:
        started = time.monotonic()
        with source.open("rb") as stream:
            head = stream.read(len(PARQUET_MAGIC))
            media_type = (content_type or "").split(";")[0].strip().lower()
            parquet = media_type in arrow_tables.PARQUET_CONTENT_TYPES or (not media_type and head == PARQUET_MAGIC)
            target = directory / f"{source.name}{'.parquet' if parquet else '.csv'}"
            with target.open("wb") as out:
                out.write(head)
                shutil.copyfileobj(stream, out, 1 << 20)
        seconds = max(time.monotonic() - started, 1e-6)
        megabytes = target.stat().st_size / 1e6
        log.info(
            "Pipe mode: received %s: %.1f MB in %.2f s (%.0f MB/s)",
            source.name,
            megabytes,
            seconds,
            megabytes / seconds,
        )
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
