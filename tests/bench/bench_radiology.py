"""Benchmark: from the last DICOM instance received to results ready (a script, not a test).

Run: ``.venv/bin/python tests/bench/bench_radiology.py [--slices 300 --size 512 --settle 5]``

A synthetic chest CT (``--size`` x ``--size`` x ``--slices``, 0.68 x 0.68 x 1.0 mm) is written as
a DICOM series, then sent to MedBrain two ways, each into a fresh SQLite instance with the
background worker (:class:`medbrain.store.radiology.RadiologyWorker`) running:

1. C-STORE (pynetdicom SCU -> :class:`medbrain.store.radiology_scp.StoreSCP`): the association
   release marks the series complete, so no settle wait;
2. DICOMweb STOW-RS (one request, through the real app in-process): no completion signal, so
   the job waits ``--settle`` seconds (``MEDBRAIN_SERIES_SETTLE_SECONDS``) after the last
   instance.

For each it prints the ingest time (first instance sent -> last acknowledged), the wait until
the job started (settle), the detection time (job started -> finished) and the total from the
last instance received to the ``CtAnalysis`` row. Baseline in the same run: ``ct detect``
(``load_series`` + ``detect_series``) directly on the same directory. Issue 5's target is
<= 15 s from the last instance to results on 2 cores; nothing here asserts it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import select

from medbrain.core.config import Settings
from medbrain.store.instance import open_instance
from medbrain.store.radiology import RadiologyWorker
from medbrain.store.radiology_models import CtAnalysis, RadiologyJob


def _wait_ready(factory: object, timeout: float = 300.0) -> tuple[RadiologyJob, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with factory() as session:  # type: ignore[operator]
            analysis = session.scalars(select(CtAnalysis)).first()
            if analysis is not None:
                seen = time.time()
                job = session.get(RadiologyJob, analysis.job_id)
                return job, seen
            failed = session.scalars(
                select(RadiologyJob).where(RadiologyJob.status.in_(("failed", "skipped")))
            ).first()
            if failed is not None:
                raise SystemExit(f"job {failed.status}: {failed.error}")
        time.sleep(0.05)
    raise SystemExit("timed out waiting for the analysis")


def _report(name: str, first: float, last: float, job: RadiologyJob, seen: float) -> None:
    def ts(value: datetime | None) -> float:
        assert value is not None
        return value.timestamp()

    started, finished = ts(job.started_at), ts(job.finished_at)
    print(f"{name}:")
    print(f"  ingest (first sent -> last stored) {last - first:7.2f} s")
    print(f"  settle (last stored -> job start)  {started - last:7.2f} s")
    print(f"  detection (job start -> finished)  {finished - started:7.2f} s")
    print(
        f"  TOTAL last instance -> results     {finished - last:7.2f} s  (seen by poll {seen - last:.2f} s)"
    )


def bench_cstore(files: list[Path], home: Path, settle: float) -> None:
    import pydicom
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage

    from medbrain.store.radiology_scp import StoreSCP

    settings = Settings(
        home=home, database_url=f"sqlite:///{home / 'm.db'}", series_settle_seconds=settle
    )
    instance = open_instance(settings)
    worker = RadiologyWorker(instance.session_factory, settings)
    worker.start()
    scp = StoreSCP(instance.session_factory, settings, worker=worker)
    scp.start("127.0.0.1", 0)
    datasets = [pydicom.dcmread(p) for p in files]
    try:
        ae = AE(ae_title="BENCH_SCU")
        ae.add_requested_context(CTImageStorage)
        assoc = ae.associate("127.0.0.1", scp.port, ae_title="MEDBRAIN")
        assert assoc.is_established
        first = time.time()
        for ds in datasets:
            status = assoc.send_c_store(ds)
            assert status.Status == 0, hex(status.Status)
        last = time.time()
        assoc.release()
        job, seen = _wait_ready(instance.session_factory)
        _report("C-STORE (association release = series complete)", first, last, job, seen)
    finally:
        scp.stop()
        worker.stop()
        instance.dispose()


def bench_stow(files: list[Path], home: Path, settle: float) -> None:
    from fastapi.testclient import TestClient

    from medbrain.api.app import create_app
    from medbrain.api.security import hash_password, issue_token
    from medbrain.store.models import User

    settings = Settings(
        home=home, database_url=f"sqlite:///{home / 'm.db'}", series_settle_seconds=settle
    )
    app = create_app(settings)
    factory = app.state.session_factory
    with factory() as session, session.begin():
        user = User(
            username="bench",
            display_name="bench",
            role="radiologist",
            password_hash=hash_password("x"),
        )
        session.add(user)
        session.flush()
        from datetime import UTC, timedelta

        token = issue_token(session, user, "api", timedelta(hours=1), datetime.now(UTC)).token
    boundary = uuid.uuid4().hex
    body = (
        b"".join(
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + p.read_bytes()
            + b"\r\n"
            for p in files
        )
        + f"--{boundary}--\r\n".encode()
    )
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
    }
    with TestClient(app) as client:
        first = time.time()
        response = client.post("/dicomweb/studies", content=body, headers=headers)
        last = time.time()
        assert response.status_code == 200, response.text[:500]
        job, seen = _wait_ready(factory)
        _report(f"STOW-RS (one request, settle {settle:g} s)", first, last, job, seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=4711)
    args = parser.parse_args()

    from medbrain.imaging.io import load_series
    from medbrain.imaging.pipeline import detect_series
    from medbrain.imaging.synthetic import generate_chest_ct, write_dicom_series

    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs visible, "
        f"affinity {len(os.sched_getaffinity(0))} cores"
    )
    with tempfile.TemporaryDirectory(prefix="medbrain-bench-rad-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        scan = generate_chest_ct(
            args.seed,
            shape=(args.slices, args.size, args.size),
            spacing_mm=(0.68, 0.68, 1.0),
            n_nodules=8,
        )
        files = write_dicom_series(scan.series, root / "src", seed=args.seed)
        del scan
        size_mb = sum(p.stat().st_size for p in files) / 1e6
        print(
            f"series: {len(files)} slices {args.size}x{args.size}, {size_mb:.0f} MB "
            f"(generated in {time.perf_counter() - t0:.1f} s)"
        )

        t0 = time.perf_counter()
        result = detect_series(load_series(root / "src"))
        baseline = time.perf_counter() - t0
        print(
            f"baseline ct detect (load + detect, in-process): {baseline:.2f} s, "
            f"{len(result['nodules'])} nodules"
        )

        bench_cstore(files, root / "cstore", args.settle)
        bench_stow(files, root / "stow", args.settle)


if __name__ == "__main__":
    main()
