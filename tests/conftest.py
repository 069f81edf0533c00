"""Fixtures for the unit and process tiers (helpers live in support.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import Server, make_root, run_train


@pytest.fixture
def start_server(tmp_path):
    """Start servers inside a test; every one is stopped when the test ends."""
    servers: list[Server] = []

    def start(root: Path, **extra: str) -> Server:
        server = Server(root, tmp_path / f"serve-{len(servers)}.log", **extra)
        servers.append(server)
        server.wait_healthy()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory) -> Path:
    """local_test/test_dir trained by the real `train` (diabetes regression with validation)."""
    root = make_root(tmp_path_factory.mktemp("trained"))
    result = run_train(root)
    assert result.returncode == 0, result.stdout + result.stderr
    return root


@pytest.fixture(scope="session")
def server(trained_root, tmp_path_factory):
    """One shared regression server (2 workers) for the read-only HTTP tests."""
    server = Server(trained_root, tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()
