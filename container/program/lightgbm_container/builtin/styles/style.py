"""What a response style is (the registry: :mod:`.`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ...codecs.codec import Codec
from ...model.outputs import Table

Encoder = Callable[[Table], bytes]


@dataclass(frozen=True)
class ResponseStyle:
    name: str
    #: Media type -> the encoder that replaces the codec's own (the others keep the codec's layout).
    encoders: Mapping[str, Encoder] = field(default_factory=dict)

    def encoder(self, codec: Codec) -> Encoder:
        return self.encoders.get(codec.media_type, codec.encode)


#: The codecs' own layouts (README: "Responses", "Choosing what a prediction returns").
STANDARD = ResponseStyle("standard")
