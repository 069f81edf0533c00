"""Which media type to answer in, from the ``Accept`` header: one rule (RFC 9110 section 12.5.1).

Every contract answers through :func:`negotiate`; they differ only in what they offer and in
their documented default:

- the built-in handler offers its codecs' types and defaults to the request's own type (or
  ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``, when set);
- user code (an ``inference.py``, an MMS custom service) can answer in anything, so it offers
  the types the header names and defaults to ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``
  (:func:`user_code_accept`).

The rule: no ``Accept`` (or an empty one) means the default. Otherwise each offered type gets
the quality of the most specific range that matches it (``text/csv`` over ``text/*`` over
``*/*``; parameters other than ``q`` do not take part), ``q=0`` excludes, and the type with the
highest quality wins. Ties go to the range written first; a wildcard range stands for the
default when it matches it, else for the first offered type it matches. So ``*/*`` is the
default, ``application/*`` after a CSV request is JSON (it used to be answered in CSV), and
``*/*, text/csv;q=0`` after a CSV request is JSON too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

WILDCARD = "*"


def base_media_type(header: str | None) -> str:
    """``'text/csv; charset=utf-8'`` -> ``'text/csv'`` (lower case; "" for none)."""
    return (header or "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class MediaRange:
    """One element of an ``Accept`` header."""

    type: str
    subtype: str
    quality: float
    text: str  # as written, parameters included (user code gets the header as sent)

    @property
    def concrete(self) -> bool:
        return WILDCARD not in (self.type, self.subtype)

    @property
    def media_type(self) -> str:
        return f"{self.type}/{self.subtype}"

    def specificity(self, media_type: str) -> int:
        """How precisely this range names ``media_type``: 3 exactly, 2 by ``type/*``, 1 by ``*/*``, 0 not at all."""
        kind, _, subtype = media_type.partition("/")
        if self.type == WILDCARD:
            return 1
        if self.type != kind:
            return 0
        if self.subtype == WILDCARD:
            return 2
        return 3 if self.subtype == subtype else 0


def _quality(parameters: list[str]) -> float:
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value.strip())
            except ValueError:
                return 0.0
            return quality if 0.0 <= quality <= 1.0 else 0.0
    return 1.0


@lru_cache(maxsize=512)
def parse_accept(header: str) -> tuple[MediaRange, ...]:
    """The ranges of an ``Accept`` header in the order written (cached: clients repeat theirs).
    ``*`` alone counts as ``*/*``; an element without a ``/`` that is not ``*`` names nothing."""
    ranges = []
    for element in header.split(","):
        media_type, *parameters = element.split(";")
        media_type = media_type.strip().lower()
        if media_type == WILDCARD:
            media_type = "*/*"
        kind, slash, subtype = media_type.partition("/")
        if not slash or not kind or not subtype:
            continue
        ranges.append(MediaRange(kind, subtype, _quality(parameters), element.strip()))
    return tuple(ranges)


def quality(ranges: Sequence[MediaRange], media_type: str) -> float:
    """The quality the header gives ``media_type``: that of the most specific range naming it."""
    best, found = 0, 0.0
    for media_range in ranges:
        specificity = media_range.specificity(media_type)
        if specificity > best:
            best, found = specificity, media_range.quality
    return found


def negotiate(accept: str | None, offered: Sequence[str], default: str) -> str | None:
    """The type to answer in, of ``default`` and ``offered``; None when the header accepts none of them (a 406)."""
    if not accept or not accept.strip():
        return default
    ranges = parse_accept(accept)
    if len(ranges) == 1 and ranges[0].quality > 0:  # the common headers: one type, or */*
        only = ranges[0]
        if only.concrete:
            return only.media_type if only.media_type in offered or only.media_type == default else None
        if only.specificity(default):
            return default
    best: tuple[float, str] | None = None
    for media_range in ranges:
        if media_range.quality <= 0:
            continue
        if media_range.concrete:
            known = media_range.media_type in offered or media_range.media_type == default
            candidates: Sequence[str] = (media_range.media_type,) if known else ()
        else:
            candidates = [default, *offered]
        for candidate in candidates:  # strictly better only: ties keep the earlier range, the earlier candidate
            score = quality(ranges, candidate) if media_range.specificity(candidate) else 0.0
            if score > 0 and (best is None or score > best[0]):
                best = (score, candidate)
    return best[1] if best is not None else None


def user_code_accept(accept: str | None, default: str) -> tuple[str, str]:
    """For user code, which may answer in anything: (the Accept its functions receive, the type
    an answer without one of its own is labelled with).

    The header goes to ``output_fn`` as sent (parameters kept: ``application/json;verbose``,
    as the SageMaker Inference Toolkit passes it), unless it names no type it prefers and the
    default fits it (missing, empty, ``*/*``, or ``application/*`` for a JSON default): then it
    becomes ``default``, as the toolkit does for ``*/*``."""
    if not accept or not accept.strip():
        return default, default
    named = [media_range.media_type for media_range in parse_accept(accept) if media_range.concrete]
    chosen = negotiate(accept, named, default)
    if chosen is None:  # neither a type it names nor the default: user code decides (the built-in output_fn: 406)
        return accept, default
    if chosen in named:
        return accept, chosen
    return default, default
