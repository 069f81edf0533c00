"""What a codec is: its media types, a decoder and one encoder (the registry: :mod:`.`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..model.batch import Batch
from ..model.outputs import Table


@dataclass(frozen=True)
class Codec:
    #: The canonical type: what a response in this codec is labelled with.
    media_type: str
    #: The request body, decoded (numbers, or text the model may know as categories); 4xx when it cannot be.
    decode: Callable[[bytes], Batch]
    #: An answer (the default one, or the kinds a request chose) as bytes.
    encode: Callable[[Table], bytes]
    #: Other names clients use for the same type (understood when named, never chosen for a wildcard).
    aliases: tuple[str, ...] = ()
    #: Preference when a wildcard ``Accept`` leaves the choice to the server: lower first.
    rank: int = 100
    #: Paid at worker start instead of by the first request (e.g. importing a parser).
    warm_up: Callable[[], None] | None = None
    #: A large body read in chunks (and its length), decoded piece by piece with every rule of
    #: ``decode`` (lines numbered as in the whole body); None: the codec needs the whole body.
    decode_pieces: Callable[[Iterable[bytes], int], Iterator[Batch]] | None = None
