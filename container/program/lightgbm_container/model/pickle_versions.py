"""Version skew in a pickle: which scikit-learn and which LightGBM wrote it, said beside this image's.

A pickle records no library version of its own. Two traces are in its bytes, read without
running them: scikit-learn estimators keep ``_sklearn_version`` in their state, and a LightGBM
Booster's state is its model text, whose header names the model format (``version=v4``), one
per LightGBM major version. A pickle from other versions that loads is served, with a warning
naming both; one that cannot load is refused with a message naming both.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import re
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger("lightgbm_container.model.pickles")  # where an operator looks for a pickle's story

_DECOMPRESSORS: dict[bytes, Callable[[bytes], bytes]] = {
    b"\x1f\x8b": gzip.decompress,
    b"BZh": bz2.decompress,
    b"\xfd7zXZ": lzma.decompress,
    b"\x78": zlib.decompress,
}
#: ``"_sklearn_version"`` then its value, as protocol 2-5 pickles write a short string (maybe memoized between).
_SKLEARN_VERSION = re.compile(rb"_sklearn_version\x94?(?:\x8c(.)|X(....))", re.DOTALL)
#: The model text's header inside a pickled Booster's state: ``tree\nversion=v4\n``.
_LIGHTGBM_FORMAT = re.compile(rb"tree\r?\nversion=(v\d+)\r?\n")


def pickle_bytes(path: Path) -> bytes | None:
    """The pickle's bytes, decompressed as joblib would (gzip, bz2, xz, zlib); None when unreadable.
    (joblib writes arrays' raw bytes inside the pickle, so the traces are searched for as strings.)"""
    try:
        data = path.read_bytes()
        for magic, decompress in _DECOMPRESSORS.items():
            if data.startswith(magic):
                return decompress(data)
    except (OSError, ValueError, EOFError, zlib.error, lzma.LZMAError):
        return None
    return data


def pickled_sklearn_version(path: Path) -> str | None:
    """The scikit-learn version an estimator in the pickle was written with; None when it holds none."""
    data = pickle_bytes(path)
    found = _SKLEARN_VERSION.search(data) if data is not None else None
    if data is None or found is None:
        return None
    start = found.end()
    length = found[1][0] if found[1] is not None else int.from_bytes(found[2], "little")
    return data[start : start + length].decode("utf-8", "replace")


def pickled_lightgbm_format(path: Path) -> str | None:
    """The LightGBM model format (``v3``, ``v4``) of the trees in the pickle; None when none is found."""
    data = pickle_bytes(path)
    found = _LIGHTGBM_FORMAT.search(data) if data is not None else None
    return found[1].decode() if found is not None else None


def lightgbm_format() -> str:
    """The model format this image's LightGBM writes: LightGBM 4.x writes v4, 3.x wrote v3."""
    import lightgbm  # noqa: PLC0415 - loaded already wherever a pickle is read

    return f"v{lightgbm.__version__.split('.')[0]}"


def report_skew(path: Path, warnings: Sequence[Warning | str]) -> None:
    """Say what differs from the versions that wrote the pickle, once it loaded: scikit-learn's own
    warnings (with both versions), and a LightGBM model format other than this image's."""
    for message in warnings:
        original = getattr(message, "original_sklearn_version", None)
        current = getattr(message, "current_sklearn_version", None)
        if original is not None and current is not None:
            log.warning(
                "%s was pickled with scikit-learn %s and is loaded with scikit-learn %s (%s): it loaded; "
                "re-save it with %s to be sure of its predictions",
                path.name,
                original,
                current,
                getattr(message, "estimator_name", "an estimator"),
                current,
            )
        else:
            log.warning("loading %s: %s", path.name, message)
    written, current_format = pickled_lightgbm_format(path), lightgbm_format()
    if written is not None and written != current_format:
        import lightgbm  # noqa: PLC0415 - as in lightgbm_format()

        log.warning(
            "%s holds trees in LightGBM's model format %s (LightGBM %s.x), loaded with LightGBM %s (format %s): "
            "it loaded; re-save it with LightGBM %s to be sure of its predictions",
            path.name,
            written,
            written[1:],
            lightgbm.__version__,
            current_format,
            lightgbm.__version__,
        )


def unreadable(path: Path, exc: BaseException, accepted: str) -> str:
    """Why a pickle could not be loaded, naming the scikit-learn or LightGBM versions when skew is the likely cause."""
    import lightgbm  # noqa: PLC0415 - as in lightgbm_format()
    import sklearn  # noqa: PLC0415 - on the path of every process that unpickles

    cause = f"{type(exc).__name__}: {exc}"
    written = pickled_sklearn_version(path)
    if written is not None and written != sklearn.__version__:
        return (
            f"{path.name} was pickled with scikit-learn {written}, and scikit-learn {sklearn.__version__} in this "
            f"image cannot load it ({cause}); re-save it with scikit-learn {sklearn.__version__}, or save the "
            "LightGBM model as text (booster.save_model)"
        )
    trees = pickled_lightgbm_format(path)
    if trees is not None and trees != lightgbm_format():
        return (
            f"{path.name} holds trees in LightGBM's model format {trees} (LightGBM {trees[1:]}.x), and LightGBM "
            f"{lightgbm.__version__} in this image cannot load it ({cause}); re-save it with LightGBM "
            f"{lightgbm.__version__}, or save the model as text (booster.save_model) with the LightGBM that trained it"
        )
    return f"{path.name} cannot be unpickled ({cause}); this container serves {accepted}"
