"""SageMaker Python SDK local mode with this image, on Docker or Podman, without AWS (see session.py)."""

from .session import (
    DUMMY_ROLE,
    SAGEMAKER_CONFIG,
    EngineUnavailable,
    activate,
    build_image,
    detect_engine,
    image_uri,
    local_session,
    sagemaker_containers,
)

__all__ = [
    "DUMMY_ROLE",
    "SAGEMAKER_CONFIG",
    "EngineUnavailable",
    "activate",
    "build_image",
    "detect_engine",
    "image_uri",
    "local_session",
    "sagemaker_containers",
]
