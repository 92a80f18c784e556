"""A real MedBrain server on loopback (uvicorn in a child process) for browser tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    home: Path,
    database_url: str,
    port: int,
    *,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start the app on ``port`` and return once ``/health`` answers (60 s at most).

    ``env`` adds environment variables (e.g. ``MEDBRAIN_RADIOLOGY_WORKER=0``); ``log``
    receives the server's output, whose tail is in the error if the server dies at start-up.
    """
    environment = {
        **os.environ,
        "MEDBRAIN_HOME": str(home),
        "MEDBRAIN_DATABASE_URL": database_url,
        "MEDBRAIN_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    output = log.open("w") if log is not None else None
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "medbrain.api.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=environment,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log is not None else ""
            raise RuntimeError(f"the server exited during start-up {tail}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError("the server did not become healthy within 60 s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """Stop a server from :func:`start_server`: terminate, then kill after 10 s."""
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
