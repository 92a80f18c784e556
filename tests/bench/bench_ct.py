"""Benchmark ``medbrain ct detect`` (a script; not collected by pytest).

Run: ``.venv/bin/python tests/bench/bench_ct.py [--seeds 20 | --seeds 5000-5039] [--full-size 512
--slices 300] [--cache DIR]`` (``--seeds``: the first N held-out seeds, or a range of them, each
block of 20 seeds reported on its own and then all together; ``--cache``: held-out scans kept as
int16 HU, generated once)

1. Speed and memory: a 512x512x300 synthetic chest CT (0.68 x 0.68 x 1.0 mm) is written as a
   DICOM series and ``medbrain ct detect DIR --json`` runs on it in a subprocess; prints the
   wall time, the ``seconds`` it reports and that process's own peak RSS (ru_maxrss), and the
   machine's load average. Issue 4's target is <= 10 s and <= 4 GB on 2 CPU cores; nothing
   here asserts it.
2. Accuracy: over held-out seeds (``medbrain.imaging.training.EVAL_SEEDS``, never used to fit
   or tune the classifier), thin-section scans (``SCAN_KWARGS``: 240 x 448 x 448 at
   0.78 x 0.78 x 1.25 mm), through the same working grid as ``ct detect``: sensitivity /
   false positives per scan at the operating threshold, the FROC points (sensitivity at
   1/8 ... 8 FP/scan) and the CPM (their mean), for nodules 3-4 mm and >= 4 mm, next to a
   baseline measured in the same run: HU threshold (-500) + connected components scored by
   compactness. Then, for found nodules measured on the input grid: the mean-diameter error
   for nodules >= 6 mm (all, and without juxtapleural ones, whose generated truth includes
   the part embedded in the chest wall at the wall's attenuation) and the type accuracy with
   its confusion table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from medbrain.imaging.detect import threshold_baseline
from medbrain.imaging.pipeline import DetectOptions, default_detector, default_weights, find_nodules
from medbrain.imaging.synthetic import SyntheticScan, generate_chest_ct, write_dicom_series
from medbrain.imaging.training import (
    EVAL_SEEDS,
    SCAN_KWARGS,
    Pair,
    PerScan,
    evaluate_work,
    froc,
    load_scan,
    match,
    operating_point,
)

# Runs the CLI in-process and reports its own peak RSS (ru_maxrss, KiB on Linux) on stderr.
_MEASURED_CLI = (
    "import atexit, resource, sys\n"
    "atexit.register(lambda: print('maxrss_kib=%d cpu_s=%.2f' % ("
    "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
    "resource.getrusage(resource.RUSAGE_SELF).ru_utime "
    "+ resource.getrusage(resource.RUSAGE_SELF).ru_stime), file=sys.stderr))\n"
    "sys.argv = ['medbrain', *sys.argv[1:]]\n"
    "from medbrain.cli import app\n"
    "app()\n"
)
FP_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def write_big(directory: str, size: int, slices: int) -> None:
    """Generate the full-size scan and write it (run in its own process, see :func:`speed`)."""
    spacing = (350.0 / size, 350.0 / size, 1.0)
    scan = generate_chest_ct(  # 8 nodules of 3-30 mm
        9001,
        shape=(slices, size, size),
        spacing_mm=spacing,
        n_nodules=8,
        diameter_range_mm=(3.0, 30.0),
    )
    write_dicom_series(scan.series, Path(directory), seed=9001)
    print(json.dumps([(n.type, n.diameter_mm) for n in scan.nodules]))


def speed(size: int, slices: int) -> None:
    spacing = (350.0 / size, 350.0 / size, 1.0)
    with tempfile.TemporaryDirectory() as tmp:
        # Generate in a child process so this process stays small: a child's ru_maxrss
        # starts from its parent's memory at fork time.
        started = time.perf_counter()
        gen = subprocess.run(
            [
                sys.executable,
                __file__,
                "--write-big",
                str(Path(tmp) / "ct"),
                "--full-size",
                str(size),
                "--slices",
                str(slices),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        generated = time.perf_counter() - started
        truth = json.loads(gen.stdout.strip().splitlines()[-1])
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", _MEASURED_CLI, "ct", "detect", str(Path(tmp) / "ct"), "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        print(f"ct detect failed: {proc.stderr.strip()}")
        return
    out = json.loads(proc.stdout)
    print(
        f"full scan {size}x{size}x{slices} at {spacing[0]:.2f}x{spacing[1]:.2f}x{spacing[2]:.2f} mm "
        f"(generated and written in {generated:.1f} s, other process)"
    )
    rss = [ln.split() for ln in proc.stderr.splitlines() if ln.startswith("maxrss_kib=")]
    peak = f"{int(rss[-1][0].split('=')[1]) / 1024 / 1024:5.2f} GB" if rss else "n/a"
    cpu = f"{float(rss[-1][1].split('=')[1]):6.2f} s" if rss else "n/a"
    print(
        f"  end to end (process, DICOM load included): {wall:6.2f} s   reported seconds: "
        f"{out['seconds']:6.2f} s   peak RSS: {peak}   nodules listed: {len(out['nodules'])} "
        f"(generated: {len(truth)})"
    )
    print(
        f"  CPU time of that process (user + system): {cpu} -- the wall time on an otherwise "
        f"idle machine; load average before {load_before:.1f}, after {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )


def evaluate(scan: SyntheticScan) -> tuple[PerScan, PerScan, list[Pair]]:
    """(classical, baseline, [(truth, input-grid measurement)] of found nodules)."""
    work = find_nodules(scan.series, DetectOptions(), default_detector(), native_for=math.inf)
    ours, pairs = evaluate_work(scan, work)  # the baseline runs on the same grid and lungs
    hu, sp, (fz, fy, fx), lungs = work.hu, work.spacing_zyx, work.factors, work.lungs
    scale = np.asarray([fx, fy, fz], dtype=np.float64)
    used_b: set[int] = set()
    dets_b: list[tuple[float, int | None]] = []
    for center, score in threshold_baseline(hu, lungs.mask, sp):
        full = (np.asarray(center) + 0.5) * scale - 0.5
        c = (float(full[0]), float(full[1]), float(full[2]))
        i = match(c, scan, used_b)
        if i is None and match(c, scan) is not None:
            continue
        if i is not None:
            used_b.add(i)
        dets_b.append((score, i))
    truth_b = [(n.diameter_mm, i in used_b) for i, n in enumerate(scan.nodules)]
    return ours, (truth_b, dets_b), pairs


def table(label: str, results: list[PerScan], threshold: float | None) -> None:
    for lo, hi, name in ((3.0, 4.0, "3-4 mm"), (4.0, 1e9, ">=4 mm")):
        points = froc(results, lo, hi, FP_RATES)
        cpm = float(np.mean(list(points.values())))
        row = "  ".join(f"{v:4.2f}" for v in points.values())
        op = ""
        if threshold is not None:
            sens, fps = operating_point(results, threshold, lo, hi)
            op = f"  @thr {threshold:.2f}: sens {sens:4.2f}, {fps:4.2f} FP/scan"
        n = sum(1 for truth, _ in results for d, _ in truth if lo <= d < hi)
        print(f"  {label:<22} {name:>7} (n={n:3d})  FROC {row}  CPM {cpm:4.2f}{op}")


def diameter_errors(label: str, pairs: list[Pair]) -> None:
    if not pairs:
        return
    err = np.abs(np.asarray([m.mean_diameter_mm - t.diameter_mm for t, m in pairs]))
    print(
        f"  mean-diameter |error| {label}: mean {err.mean():.2f} mm, median "
        f"{np.median(err):.2f} mm, within 1 mm {np.mean(err <= 1.0):.0%} (n={len(pairs)})"
    )


def seed_list(spec: str) -> list[int]:
    """``"20"``: the first 20 held-out seeds; ``"5020-5039"``: that range (held-out seeds only)."""
    if "-" in spec:
        lo, hi = (int(v) for v in spec.split("-", 1))
        seeds = list(range(lo, hi + 1))
    else:
        seeds = list(EVAL_SEEDS)[: int(spec)]
    if not seeds or any(s not in EVAL_SEEDS for s in seeds):
        raise SystemExit(
            f"--seeds {spec}: held-out seeds are {EVAL_SEEDS.start}-{EVAL_SEEDS.stop - 1}"
        )
    return seeds


def accuracy(seeds: list[int], cache: Path | None = None, block: int = 20) -> None:
    """Each block of ``block`` seeds on its own, then (with more than one block) all together."""
    parts = [seeds[i : i + block] for i in range(0, len(seeds), block)]
    results = [evaluate_seeds(part, cache) for part in parts]
    for part, (ours, base, pairs) in zip(parts, results, strict=True):
        report(part, ours, base, pairs)
    if len(parts) > 1:
        report(
            seeds,
            [v for r in results for v in r[0]],
            [v for r in results for v in r[1]],
            [v for r in results for v in r[2]],
        )


def evaluate_seeds(
    seeds: list[int], cache: Path | None
) -> tuple[list[PerScan], list[PerScan], list[Pair]]:
    ours: list[PerScan] = []
    base: list[PerScan] = []
    pairs: list[Pair] = []
    started = time.perf_counter()
    for seed in seeds:
        scan = (
            load_scan(seed, cache) if cache is not None else generate_chest_ct(seed, **SCAN_KWARGS)  # type: ignore[arg-type]
        )
        a, b, p = evaluate(scan)
        ours.append(a)
        base.append(b)
        pairs.extend(p)
        print(f"  seed {seed}: {sum(f for _, f in a[0])}/{len(a[0])} found", flush=True)
    elapsed = time.perf_counter() - started
    source = "reading the int16 cache" if cache else "generation"
    print(f"  {elapsed / len(seeds):.1f} s/scan incl. {source}; load {os.getloadavg()[0]:.1f}")
    return ours, base, pairs


def report(seeds: list[int], ours: list[PerScan], base: list[PerScan], pairs: list[Pair]) -> None:
    n_truth = sum(len(t) for t, _ in ours)
    shape = "x".join(str(v) for v in SCAN_KWARGS["shape"])  # type: ignore[attr-defined]
    spacing = "x".join(f"{v:g}" for v in SCAN_KWARGS["spacing_mm"])  # type: ignore[attr-defined]
    print(
        f"held-out seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} scans {shape} at {spacing} mm, "
        f"{n_truth} nodules); load average {os.getloadavg()[0]:.1f}"
    )
    print(f"  {'':<22} {'':>7} {'':>7}  FP/scan  " + "  ".join(f"{r:>4g}" for r in FP_RATES))
    table("classical", ours, default_weights().threshold)
    table("baseline (HU+CC)", base, None)
    big = [(t, m) for t, m in pairs if t.diameter_mm >= 6.0]
    diameter_errors(">= 6 mm, all", big)
    diameter_errors(
        ">= 6 mm, not juxtapleural", [p for p in big if p[0].placement != "juxtapleural"]
    )
    if pairs:
        ok = sum(1 for t, m in pairs if t.type == m.type)
        print(f"  type accuracy (found nodules): {ok / len(pairs):.0%} (n={len(pairs)})")
        kinds = ("solid", "part-solid", "ground-glass", "calcified")
        print("    truth \\ measured  " + "  ".join(f"{k:>12}" for k in kinds))
        for k in kinds:
            row = [sum(1 for t, m in pairs if t.type == k and m.type == j) for j in kinds]
            print(f"    {k:<17} " + "  ".join(f"{v:>12d}" for v in row))


def main(argv: list[str] | None = None) -> Any:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--seeds", default="20", help="N (the first N held-out seeds) or FIRST-LAST, e.g. 5000-5039"
    )
    parser.add_argument("--full-size", type=int, default=512)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument(
        "--cache",
        type=Path,
        help="read/write the held-out scans here as int16 HU (training.load_scan), as DICOM stores them",
    )
    parser.add_argument("--write-big", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write_big:
        write_big(args.write_big, args.full_size, args.slices)
        return None
    print(f"python {platform.python_version()} on {platform.machine()}")
    if not args.skip_speed:
        speed(args.full_size, args.slices)
    if not args.skip_accuracy:
        accuracy(seed_list(args.seeds), args.cache)
    return None


if __name__ == "__main__":
    main()
