"""What a file in a model directory is, from its name and first bytes: nothing is loaded here.

Served: LightGBM's text format (``tree`` / ``version=v`` at the start, any name), and pickles
(``*.pkl``, ``*.pickle``, ``*.joblib``, or any file whose bytes are a pickle: joblib writes one)
holding a LightGBM Booster, scikit-learn estimator or Pipeline (:mod:`.pickles`).

Recognised but not served, so the error can say what the file is and what to do: a LightGBM
JSON dump (``Booster.dump_model()``, which LightGBM cannot load back), ONNX, XGBoost and
CatBoost models.
"""

from __future__ import annotations

from pathlib import Path

LIGHTGBM_TEXT, PICKLE = "LightGBM text", "pickle"
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
_LIGHTGBM_MAGIC = b"tree\nversion=v"
_HEAD_BYTES = 4096

SAVE_AS_TEXT = "save it with booster.save_model('model.txt') (an LGBM estimator: estimator.booster_.save_model)"


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(_HEAD_BYTES)
    except OSError:
        return b""


def is_pickle(head: bytes) -> bool:
    """A pickle of protocol 2 or later (what pickle and joblib write): PROTO opcode, then the protocol."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def served_format(path: Path) -> str | None:
    """:data:`LIGHTGBM_TEXT`, :data:`PICKLE`, or None for a file that is not a model we serve."""
    head = _head(path)
    if head.startswith(_LIGHTGBM_MAGIC):
        return LIGHTGBM_TEXT
    if path.name.lower().endswith(PICKLE_SUFFIXES) or is_pickle(head):
        return PICKLE
    return None


def unservable(path: Path) -> str | None:
    """What a model file we cannot serve is, and what to do instead; None when it is not one we know."""
    head = _head(path)
    name = path.name.lower()
    stripped = head.lstrip()
    if stripped.startswith(b"{") and (b'"tree_info"' in head or b'"name":"tree"' in head.replace(b" ", b"")):
        return (
            f"{path.name} is a LightGBM JSON dump (Booster.dump_model()), which LightGBM cannot load back; "
            f"{SAVE_AS_TEXT}"
        )
    if name.endswith(".onnx") or (head[:1] == b"\x08" and b"onnx" in head[:256].lower()):
        return f"{path.name} is an ONNX model; this container serves LightGBM models: {SAVE_AS_TEXT}"
    if head.startswith(b"CBM1") or name.endswith(".cbm"):
        return f"{path.name} is a CatBoost model; this container serves LightGBM models (text format or a pickle)"
    if stripped.startswith(b"{") and b'"learner"' in head:
        return f"{path.name} is an XGBoost JSON model; this container serves LightGBM models (text format or a pickle)"
    if head.startswith((b"binf", b"booster[0]")) or name.endswith((".ubj", ".xgb")):
        return f"{path.name} is an XGBoost model; this container serves LightGBM models (text format or a pickle)"
    return None
