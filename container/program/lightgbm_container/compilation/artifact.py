"""What makes a compiled object valid, and where objects live.

An lleaves object is native code for one model, built by one lleaves/LLVM for one CPU (it
uses the host's instruction set extensions). The key is all of that plus the compile
options, hashed; the object is stored under the digest, so an object can only be found by
a host it is valid for:

- the cache (``LIGHTGBM_COMPILE_CACHE``): ``<cache>/<digest>.o``;
- the model directory, where ``train`` ships one (so ``model.tar.gz`` carries it):
  ``<model dir>/compiled/lleaves-<digest>.o`` with its key beside it in ``.json``, readable.

Importing this module is cheap; computing a key loads llvmlite (for the CPU), so only the
compile job and ``train`` do it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from importlib import metadata as package_metadata
from pathlib import Path

SHIPPED_DIR = "compiled"

#: lleaves' compile options, chosen by measurement (bench/compile_options.py, 500 trees x 63
#: leaves): without inlining a compile takes 6 s instead of 49 s and 0.4 GB instead of 1.6 GB,
#: and predicts 1.9x faster than LightGBM instead of 2.8x. ``serve`` therefore compiles QUICK
#: first, switches, and then FULL, and switches again; ``train`` and the strict mode compile
#: FULL. Both keep the large code model: the small one is faster but crashes on large forests.
QUICK: dict[str, object] = {"finline": False, "fblocksize": 34, "fcodemodel": "large"}
FULL: dict[str, object] = {"finline": True, "fblocksize": 34, "fcodemodel": "large"}
#: What loading a compiled object needs (the same for both).
LOAD_OPTIONS: dict[str, object] = {"fcodemodel": "large"}

#: A compile's peak memory grows with the number of leaves in the forest, faster than
#: linearly when optimised: measured 52 kB per leaf for 500 binary trees of 63 leaves
#: (1.6 GB, bench/compile_options.py) but 98 kB per leaf for 3 classes x 500 trees of 63
#: leaves (9.3 GB, bench/startup.py); quickly, at most 13 kB per leaf (0.4 GB for 500 x 63,
#: 1.1 GB for 2,000 x 63). The estimate takes the worst measured, above what LLVM and the
#: interpreter hold anyway.
_BASE_MB = 150
_KB_PER_LEAF = {False: 13, True: 100}  # by "finline"


def estimated_compile_mb(leaves: int, options: dict[str, object]) -> int:
    """About how much memory compiling a forest of ``leaves`` leaves with ``options`` takes at its peak."""
    return _BASE_MB + leaves * _KB_PER_LEAF[bool(options.get("finline", True))] // 1000


def count_leaves(model_text: bytes) -> int:
    """Leaves in every tree of a LightGBM text model (each tree's ``num_leaves=`` line)."""
    return sum(int(line[len(b"num_leaves=") :]) for line in model_text.splitlines() if line.startswith(b"num_leaves="))


@dataclass(frozen=True)
class ArtifactKey:
    model_sha256: str
    lleaves: str
    llvmlite: str
    cpu: str
    cpu_features: str  # sha256 of LLVM's host feature string, shortened
    options: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:32]

    def differences(self, other: dict[str, str]) -> list[str]:
        """What differs from another key (as read from a shipped ``.json``), for the log."""
        return [
            f"{name} {other.get(name)!r} here {value!r}"
            for name, value in asdict(self).items()
            if other.get(name) != value
        ]


def artifact_key(model_bytes: bytes, options: dict[str, object]) -> ArtifactKey:
    import llvmlite.binding as llvm  # noqa: PLC0415 - LLVM only where a compile key is computed

    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # LLVM cannot always detect them; lleaves then compiles without
        features = ""
    return ArtifactKey(
        model_sha256=hashlib.sha256(model_bytes).hexdigest(),
        lleaves=package_metadata.version("lleaves"),
        llvmlite=package_metadata.version("llvmlite"),
        cpu=llvm.get_host_cpu_name(),
        cpu_features=hashlib.sha256(features.encode()).hexdigest()[:16],
        options=json.dumps(options, sort_keys=True),
    )


def cached_object(cache_dir: Path, key: ArtifactKey) -> Path:
    return cache_dir / f"{key.digest}.o"


def shipped_object(model_dir: Path, key: ArtifactKey) -> Path:
    return model_dir / SHIPPED_DIR / f"lleaves-{key.digest}.o"


def shipped_keys(model_dir: Path) -> list[dict[str, str]]:
    """The keys of every object shipped in ``model_dir`` (to say why none fits this host)."""
    keys = []
    for path in sorted((model_dir / SHIPPED_DIR).glob("lleaves-*.json")):
        try:
            keys.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return keys


def write_shipped_key(model_dir: Path, key: ArtifactKey) -> Path:
    path = model_dir / SHIPPED_DIR / f"lleaves-{key.digest}.json"
    path.write_text(json.dumps(asdict(key), indent=2) + "\n")
    return path
