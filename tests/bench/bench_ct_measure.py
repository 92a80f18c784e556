"""Benchmark the nodule MEASUREMENT alone (a script; not collected by pytest).

Run: ``.venv/bin/python tests/bench/bench_ct_measure.py [--seeds train|eval] [--n 30]
[--cache DIR] [--baseline PATH] [--baseline-pipeline PATH]``

Every generated nodule of thin-section synthetic scans (``training.SCAN_KWARGS``) is measured
at its TRUE centre, the way ``ct detect`` measures a found nodule: ``measure_nodule`` on the
working grid of :func:`pipeline.prepare` with a radius from a multi-scale normalised LoG at
the centre (as the detector's scale), then :func:`pipeline.native_measurement` (re-segmented
on the input grid; what the report shows). Detection plays no part, so these numbers isolate
segmentation, sizing and typing.

Prints, for the shipped ``measure_nodule`` and for a baseline in the same run: by default
``measure.py`` and ``pipeline.py`` (working grid and lung mask) of the git revision
``--baseline-rev`` (the session 4 release), or the files ``--baseline`` /
``--baseline-pipeline``: mean-diameter error for nodules >= 6 mm (mean, median, share <= 1 mm;
all, and by placement and type) and for 4-6 mm, how far the measured centre lies from the
truth (> 3 mm: the detector's match fails), the worst cases, type accuracy with its
confusion table, and the measurement step's CPU time. Training seeds (1000-1029) are for tuning; ``--seeds eval`` (5000-...) is for the
final measurement only. Scans are generated once into ``--cache`` (int16 HU + truth JSON, as
``training.load_scan`` reads them, + the generator's lung mask for the juxtapleural "visible
in lung" diameter).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from medbrain.imaging import measure, pipeline
from medbrain.imaging.pipeline import DetectOptions
from medbrain.imaging.synthetic import generate_chest_ct
from medbrain.imaging.training import EVAL_SEEDS, SCAN_KWARGS, TRAIN_SEEDS, load_scan

TYPES = ("solid", "part-solid", "ground-glass", "calcified")


#: The session 4 release: measurement before vessels were detached by a larger opening and
#: the lung mask was refined along the pleura.
BASELINE_REV = "80853d2"
REPO = Path(__file__).resolve().parents[2]


def from_git(rev: str, name: str) -> Path | None:
    """``src/medbrain/imaging/<name>`` at ``rev`` in a temporary file, or None without git."""
    import subprocess
    import tempfile

    try:
        text = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{rev}:src/medbrain/imaging/{name}"],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        print(f"baseline {name} at {rev}: not available (no git history); shipped only")
        return None
    path = Path(tempfile.mkdtemp(prefix="bench-ct-measure-")) / f"{name[:-3]}_{rev}.py"
    path.write_text(text, encoding="utf-8")
    return path


def load_module(path: Path, name: str = "measure_baseline") -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def log_radius_mm(hu: np.ndarray, spacing: tuple[float, float, float], c: tuple[int, ...]) -> float:
    """Radius sigma*sqrt(3) of the strongest scale-normalised LoG response at ``c``."""
    best, best_s = -math.inf, 1.0
    for s_mm in (0.8, 1.1, 1.5, 2.0, 2.8, 4.0, 5.6, 8.0):
        half = [math.ceil(4 * s_mm / s) + 1 for s in spacing]
        lo = [max(0, v - h) for v, h in zip(c, half, strict=True)]
        hi = [min(n, v + h + 1) for v, h, n in zip(c, half, hu.shape, strict=True)]
        box = hu[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]].astype(np.float64)
        r = -ndimage.gaussian_laplace(box, [s_mm / s for s in spacing]) * s_mm**2
        val = float(r[c[0] - lo[0], c[1] - lo[1], c[2] - lo[2]])
        if val > best:
            best, best_s = val, s_mm
    return best_s * math.sqrt(3.0)


def visible_diameter_mm(t: Any, lung: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """Lung-RADS mean diameter of the part of the generated ellipsoid that lies in the
    generator's lung (on the axial slice through its centre): what a reader can see of a
    juxtapleural nodule whose truth also counts the part drawn inside the chest wall."""
    sz, sy, sx = spacing
    cx, cy, cz = t.center_voxel
    ax, ay, _ = (a / 2.0 for a in t.axes_mm)
    k = round(cz)
    hy, hx = math.ceil(ay / sy) + 2, math.ceil(ax / sx) + 2
    y0, x0 = max(0, round(cy) - hy), max(0, round(cx) - hx)
    yy, xx = np.mgrid[y0 : round(cy) + hy + 1, x0 : round(cx) + hx + 1]
    dz = (k - cz) * sz / (t.axes_mm[2] / 2.0)
    inside = ((yy - cy) * sy / ay) ** 2 + ((xx - cx) * sx / ax) ** 2 <= max(1.0 - dz**2, 0.0)
    inside &= lung[k, y0 : y0 + yy.shape[0], x0 : x0 + yy.shape[1]]
    long_, short = measure._feret_axes(inside, sy, sx)
    return (long_ + short) / 2.0


def measure_at(
    fn: Callable[..., Any],
    series: Any,
    work: tuple[Any, ...],
    c_full: tuple[float, ...],
    pipe: Any = pipeline,
) -> tuple[Any, float]:
    """Working-grid measurement (with the detector's drift retry) then the native one."""
    hu, spacing, factors, lungs, _ = work
    fz, fy, fx = factors
    c = tuple(
        min(max(round((v + 0.5) / f - 0.5), 0), n - 1)
        for v, f, n in zip(c_full[::-1], (fz, fy, fx), hu.shape, strict=True)
    )
    radius = log_radius_mm(hu, spacing, c)
    t0 = time.process_time()
    m = fn(hu, lungs.mask, spacing, c, radius)
    sp = np.asarray(spacing)
    if m is not None and np.linalg.norm(
        (np.asarray(m.center_voxel[::-1]) - np.asarray(c)) * sp
    ) > max(radius, 3.0):
        m = fn(hu, lungs.mask, spacing, c, radius * 0.5)
    native = None
    if m is not None:
        saved = pipe.measure_nodule
        pipe.measure_nodule = fn  # native_measurement calls the module's measure_nodule
        try:
            native = pipe.native_measurement(series.hu, series.spacing_zyx, lungs.mask, factors, m)
        finally:
            pipe.measure_nodule = saved
    return native, time.process_time() - t0


def summarise(name: str, rows: list[dict[str, Any]], secs: float, worst: int) -> None:
    print(f"\n== {name}: {len(rows)} nodules, measurement CPU {secs:.2f} s")
    big = [r for r in rows if r["truth_d"] >= 6.0]

    def line(label: str, sel: list[dict[str, Any]]) -> None:
        if not sel:
            return
        err = np.asarray([abs(r["d"] - r["truth_d"]) for r in sel])
        signed = np.asarray([r["d"] - r["truth_d"] for r in sel])
        print(
            f"  {label:<24} n={len(sel):3d} mean {err.mean():5.2f} median {np.median(err):5.2f}"
            f" <=1mm {np.mean(err <= 1.0):4.0%} bias {signed.mean():+5.2f}"
        )

    print("  diameter error (mm), truth >= 6 mm (missing measurement = error of truth):")
    line("all", big)
    line("not juxtapleural", [r for r in big if r["placement"] != "juxtapleural"])
    for p in ("central", "peripheral", "juxtapleural", "juxtavascular"):
        line(f"placement {p}", [r for r in big if r["placement"] == p])
    for t in TYPES:
        line(f"type {t}", [r for r in big if r["type"] == t])
    jp = [r for r in big if r["placement"] == "juxtapleural"]
    if jp and any(r["vis_d"] != r["truth_d"] for r in jp):
        vis = [{**r, "truth_d": r["vis_d"]} for r in jp]
        line("juxtapleural vs visible", vis)
        gap = np.mean([r["truth_d"] - r["vis_d"] for r in jp])
        print(f"    (generator truth exceeds the part visible in lung by {gap:.2f} mm on average)")
    small = [r for r in rows if 4.0 <= r["truth_d"] < 6.0]
    if small:
        print("  truth 4-6 mm (candidates the detector must keep; match radius 3 mm):")
        line("4-6 mm all", small)
        line("4-6 mm juxtavascular", [r for r in small if r["placement"] == "juxtavascular"])
    for label, sel in (
        ("all", rows),
        ("juxtavascular", [r for r in rows if r["placement"] == "juxtavascular"]),
    ):
        off = np.asarray([r["off"] for r in sel if r["truth_d"] >= 4.0])
        if off.size:
            print(
                f"  centre offset >= 4 mm, {label:<13} n={off.size:3d} mean {off.mean():4.2f} mm,"
                f" > 3 mm (no match): {int((off > 3.0).sum())}"
            )
    ok = sum(r["kind"] == r["type"] for r in rows)
    print(f"  type accuracy {ok}/{len(rows)} = {ok / max(len(rows), 1):.1%}")
    for lo, hi in ((3.0, 6.0), (6.0, 100.0)):
        sel = [r for r in rows if lo <= r["truth_d"] < hi]
        if sel:
            acc = sum(r["kind"] == r["type"] for r in sel) / len(sel)
            print(f"    {lo:.0f}-{hi:.0f} mm: {acc:.1%} of {len(sel)}")
    print("  confusion (rows truth, cols measured):")
    print("    " + " " * 13 + "".join(f"{t[:11]:>12}" for t in (*TYPES, "none")))
    for t in TYPES:
        cnt = [sum(r["type"] == t and r["kind"] == k for r in rows) for k in (*TYPES, "none")]
        print(f"    {t:<13}" + "".join(f"{v:12d}" for v in cnt))
    bad = sorted(big, key=lambda r: -abs(r["d"] - r["truth_d"]))[:worst]
    if worst:
        print("  worst >= 6 mm:")
        for r in bad:
            print(
                f"    seed {r['seed']} #{r['i']} {r['type']:<12} {r['placement']:<13}"
                f" truth {r['truth_d']:5.2f} (vis {r['vis_d']:5.2f}) measured {r['d']:5.1f} ({r['kind']})"
            )
    wrong = [r for r in rows if r["kind"] != r["type"]][:worst]
    if worst:
        print("  type errors:")
        for r in wrong:
            print(
                f"    seed {r['seed']} #{r['i']} {r['type']:<12} -> {r['kind']:<12}"
                f" {r['placement']:<13} {r['truth_d']:5.2f} mm peak {r['peak']:.0f}"
            )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", choices=("train", "eval"), default="train")
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/ct4measure"))
    ap.add_argument("--baseline", type=Path, help="measure.py to compare (default: from git)")
    ap.add_argument(
        "--baseline-pipeline",
        type=Path,
        help="pipeline.py for the baseline's working grid and lung mask (default: from git)",
    )
    ap.add_argument("--baseline-rev", default=BASELINE_REV, help="git revision of the baseline")
    ap.add_argument("--worst", type=int, default=12)
    args = ap.parse_args(argv)
    seeds = list(TRAIN_SEEDS if args.seeds == "train" else EVAL_SEEDS)[
        args.first : args.first + args.n
    ]
    runs: dict[str, tuple[Callable[..., Any], Any]] = {
        "shipped": (measure.measure_nodule, pipeline)
    }
    if args.baseline is None:
        args.baseline = from_git(args.baseline_rev, "measure.py")
        if args.baseline_pipeline is None:
            args.baseline_pipeline = from_git(args.baseline_rev, "pipeline.py")
    if args.baseline is not None and args.baseline.exists():
        base_pipe = pipeline
        name = "baseline (" + args.baseline.name
        if args.baseline_pipeline is not None:
            base_pipe = load_module(args.baseline_pipeline, "pipeline_baseline")
            name += " + " + args.baseline_pipeline.name
        runs = {name + ")": (load_module(args.baseline).measure_nodule, base_pipe)}
        runs["current measure.py + pipeline.py"] = (measure.measure_nodule, pipeline)
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in runs}
    secs = dict.fromkeys(runs, 0.0)
    for seed in seeds:
        if not (args.cache / f"{seed}.lung.npy").exists():  # generate once, with its lung mask
            fresh = generate_chest_ct(seed, **SCAN_KWARGS)  # type: ignore[arg-type]
            args.cache.mkdir(parents=True, exist_ok=True)
            np.save(args.cache / f"{seed}.npy", np.round(fresh.series.hu).astype(np.int16))
            np.save(args.cache / f"{seed}.lung.npy", np.packbits(fresh.lung_mask))
            rows_json = json.dumps([asdict(n) for n in fresh.nodules])
            (args.cache / f"{seed}.json").write_text(rows_json)
        scan = load_scan(seed, args.cache)
        works = {id(pipe): pipe.prepare(scan.series, DetectOptions()) for _, pipe in runs.values()}
        lung_file = args.cache / f"{seed}.lung.npy"
        lung = None
        if lung_file.exists():
            n = int(np.prod(scan.series.hu.shape))
            lung = np.unpackbits(np.load(lung_file))[:n].reshape(scan.series.hu.shape).astype(bool)
        for i, t in enumerate(scan.nodules):
            vis = t.diameter_mm
            if lung is not None and t.placement == "juxtapleural":
                vis = visible_diameter_mm(t, lung, scan.series.spacing_zyx)
            for name, (fn, pipe) in runs.items():
                m, dt = measure_at(fn, scan.series, works[id(pipe)], t.center_voxel, pipe)
                secs[name] += dt
                rows[name].append(
                    {
                        "seed": seed,
                        "i": i,
                        "type": t.type,
                        "placement": t.placement,
                        "truth_d": t.diameter_mm,
                        "vis_d": vis,
                        "d": m.mean_diameter_mm if m is not None else 0.0,
                        "off": float(
                            np.linalg.norm(
                                (np.asarray(m.center_voxel) - np.asarray(t.center_voxel))
                                * np.asarray(scan.series.spacing_mm)
                            )
                        )
                        if m is not None
                        else math.inf,
                        "kind": m.type if m is not None else "none",
                        "peak": m.peak_hu if m is not None else float("nan"),
                    }
                )
        print(f"seed {seed}: {len(scan.nodules)} nodules", flush=True)
    print(f"\nseeds {seeds[0]}-{seeds[-1]} ({args.seeds}); load average {os.getloadavg()}")
    for name in runs:
        summarise(name, rows[name], secs[name], args.worst)


if __name__ == "__main__":
    main()
