"""Packages kept off the import path until a process needs them: each costs every process that
can import it, because another library imports it whenever it is importable.

- ``<venv>/training-site`` (container/requirements-training.txt): pyarrow. pandas imports
  pyarrow whenever it can, which would cost every serving worker about 35 MB; only ``train``
  adds it, before anything imports pandas.
- ``<venv>/pickle-site`` (container/requirements-pickles.txt): scikit-learn. LightGBM imports
  scikit-learn whenever it can (its estimators' base classes), which costs every process that
  imports LightGBM about 70 MB and 0.6 s; only the processes that may unpickle a LightGBM
  estimator or Pipeline, or run user code, add it, before anything imports LightGBM
  (:mod:`.serving.gunicorn_config`, the compile job, a pickle's check).

The Dockerfile and scripts/setup_host.sh install them there.
"""

from __future__ import annotations

import sys
from pathlib import Path

TRAINING_SITE = Path(sys.prefix) / "training-site"
PICKLE_SITE = Path(sys.prefix) / "pickle-site"


def use_packages(site: Path) -> bool:
    """Make the packages in ``site`` importable in this process; False when they are not installed."""
    if not site.is_dir():
        return False
    if str(site) not in sys.path:
        sys.path.append(str(site))  # after the venv's own packages: it adds, never shadows
    return True


def use_training_packages(site: Path = TRAINING_SITE) -> bool:
    """pyarrow, for ``train`` (CSV is read with pandas alone without it, and Parquet refused with the reason)."""
    return use_packages(site)


def use_pickle_packages(site: Path = PICKLE_SITE) -> bool:
    """scikit-learn, for processes that may unpickle an estimator or run user code."""
    return use_packages(site)
