"""Request and response codecs: one module per media type, and this registry that finds them.

Every module of this package that defines ``CODEC`` (a :class:`.codec.Codec`: its media types,
a decoder from bytes to a :class:`~..model.batch.Batch`, and one encoder of an answer
:class:`~..model.outputs.Table`) is a codec, imported here. Adding a media type is adding one
module: the supported list in 415 and 406 errors, the types ``Accept`` negotiation offers
(:mod:`..contract.negotiation`) and the aliases all come from the codecs themselves.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..contract.negotiation import base_media_type, negotiate
from ..errors import NotAcceptable, UnsupportedMediaType
from .codec import Codec


def _discover() -> tuple[Codec, ...]:
    found = []
    for module_info in pkgutil.iter_modules(__path__):
        codec = getattr(importlib.import_module(f"{__name__}.{module_info.name}"), "CODEC", None)
        if isinstance(codec, Codec):
            found.append(codec)
    return tuple(sorted(found, key=lambda codec: (codec.rank, codec.media_type)))


ALL = _discover()
#: Media type (canonical and aliases) -> codec.
CODECS: dict[str, Codec] = {name: codec for codec in ALL for name in (codec.media_type, *codec.aliases)}
#: What a response can be, in the order a wildcard Accept prefers: canonical types, then aliases.
OFFERED: tuple[str, ...] = tuple(codec.media_type for codec in ALL) + tuple(a for codec in ALL for a in codec.aliases)
SUPPORTED: tuple[str, ...] = tuple(codec.media_type for codec in ALL)
#: Types that say nothing about the body: sniff it (the SDK's default Predictor sends octet-stream).
_UNTYPED = ("", "application/octet-stream")

__all__ = [
    "ALL",
    "CODECS",
    "OFFERED",
    "SUPPORTED",
    "Codec",
    "base_media_type",
    "codec_for",
    "request_codec",
    "response_codec",
    "warm_up",
]


def codec_for(media_type: str) -> Codec | None:
    """The codec of a media type (parameters ignored), if one is supported."""
    return CODECS.get(base_media_type(media_type))


def _sniff(body: bytes) -> Codec:
    """NPY magic, JSON (JSON Lines when a second line holds an object too), else CSV."""
    if body.startswith(b"\x93NUMPY"):
        return CODECS["application/x-npy"]
    head = body.lstrip()[:1]
    if head in (b"[", b"{"):
        first_line = body.lstrip().split(b"\n", 1)
        if len(first_line) > 1 and first_line[1].strip().startswith((b"[", b"{")) and head == b"{":
            return CODECS["application/jsonlines"]
        return CODECS["application/json"]
    return CODECS["text/csv"]


def request_codec(content_type: str | None, body: bytes) -> Codec:
    """The decoder for the request's Content-Type; 415 names the supported types."""
    media_type = base_media_type(content_type)
    if media_type in _UNTYPED:
        return _sniff(body)
    codec = CODECS.get(media_type)
    if codec is None:
        supported = ", ".join(SUPPORTED)
        raise UnsupportedMediaType(
            f"Content-Type {media_type!r} is not supported; use one of {supported}", supported=list(SUPPORTED)
        )
    return codec


def response_codec(accept: str | None, default: str) -> Codec:
    """The encoder the Accept header prefers (:func:`..contract.negotiation.negotiate`); a missing,
    empty or wildcard Accept answers in ``default``; 406 names the supported types."""
    media_type = negotiate(accept, OFFERED, default)
    codec = CODECS.get(media_type) if media_type is not None else None
    if codec is None:
        supported = ", ".join(SUPPORTED)
        asked = (accept or "").strip() or default
        raise NotAcceptable(f"cannot answer in {asked!r}; Accept one of {supported}", supported=list(SUPPORTED))
    return codec


def warm_up() -> None:
    """What a codec would otherwise pay on its first request (called at worker start)."""
    for codec in ALL:
        if codec.warm_up is not None:
            codec.warm_up()
