"""A local Ray for the batch-runner tests, started once per test session and stopped at its end
(PLATFORM.md: ≈ 2 s start, ≈ 750 MB). Import ``local_ray`` into a test module to use it; a
Ray already running (started by another module's import of it) is reused, not restarted."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    ray = pytest.importorskip("ray", reason="the dev extra installs ray (medbrain[ray])")
    started = not ray.is_initialized()
    if started:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        if started:
            ray.shutdown()
