"""Packages only `train` uses (pyarrow), kept off the serving workers' import path.

pandas imports pyarrow whenever it is importable, and in every serving worker that costs
about 35 MB of memory for a library serving never uses. So the training-only packages
(container/requirements-training.txt) are installed in their own directory beside the
interpreter's, ``<venv>/training-site`` (the Dockerfile and scripts/setup_host.sh put them
there), and only `train` adds it to its path, before anything imports pandas.
"""

from __future__ import annotations

import sys
from pathlib import Path

TRAINING_SITE = Path(sys.prefix) / "training-site"


def use_training_packages(site: Path = TRAINING_SITE) -> bool:
    """Make the training-only packages importable in this process; False when they are not
    installed (CSV is then read with pandas alone, and Parquet is refused with the reason)."""
    if not site.is_dir():
        return False
    if str(site) not in sys.path:
        sys.path.append(str(site))  # after the venv's own packages: it adds, never shadows
    return True
