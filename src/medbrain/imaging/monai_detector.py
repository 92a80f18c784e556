"""Deep-learning nodule detector: MONAI RetinaNet (``lung_nodule_ct_detection`` bundle layout).

Implements :class:`medbrain.imaging.detect.Detector`. The network (ResNet-50 + FPN RetinaNet,
3 anchor shapes) and its pre-processing are described by
``knowledge/imaging/detector_monai_retinanet.yaml``, copied from the bundle's inference config.
MedBrain ships no weights: the hospital supplies the bundle's ``models/model.pt`` (state dict)
or ``models/model.ts`` (TorchScript); :func:`load_network` refuses a missing, corrupt or
mismatched file with a :class:`DetectorWeightsError` (an ``InputError``: exit 2 in the CLI).

Inference: the volume (``[slice, row, col]``, LPS axes from ``direction``) is re-oriented to
RAS, resampled to 0.703125 x 0.703125 x 1.25 mm, windowed to [-1024, 300] HU -> [0, 1], and
run through MONAI's sliding-window ``RetinaNetDetector`` on the CPU (the GPU when available).
Box centres are mapped back to the engine's grid, and each is measured with the engine's own
:func:`medbrain.imaging.measure.measure_nodule`, so sizes and types are comparable with the
classical detector. :class:`EnsembleDetector` fuses classical and DL candidates (weighted
score fusion of candidates whose centres coincide).

torch and monai are optional (extra ``medbrain[dl]``); this module imports them lazily, so it
is importable without them and raises a clear error when they are missing.

References
----------
Lin TY et al. Focal loss for dense object detection (RetinaNet). ICCV 2017.
MONAI Model Zoo ``lung_nodule_ct_detection`` (LUNA16), configs/inference.json.
Solovyev R, Wang W, Gabruseva T. Weighted boxes fusion. Image Vis Comput 2021;107:104117.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medbrain.core.errors import InputError, KnowledgeError
from medbrain.imaging.detect import Candidate, Detector
from medbrain.imaging.measure import measure_nodule
from medbrain.knowledge.loaders import load_yaml

IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


class DetectorWeightsError(InputError):
    """The deep-learning detector's weights file is missing, unreadable or does not fit."""


class DeepLearningUnavailableError(InputError):
    """torch / monai are not installed (install the optional extra ``medbrain[dl]``)."""


@lru_cache(maxsize=1)
def bundle_config() -> dict[str, Any]:
    data = load_yaml("imaging/detector_monai_retinanet.yaml")
    for key in ("network", "anchors", "preprocessing", "inference", "source"):
        if not isinstance(data, dict) or key not in data:
            raise KnowledgeError(f"imaging/detector_monai_retinanet.yaml: needs {key!r}")
    return dict(data)


def _require_dl() -> tuple[Any, Any]:
    try:
        import monai  # noqa: F401
        import torch
    except ImportError as exc:
        raise DeepLearningUnavailableError(
            "--detector",
            "detector",
            f"the deep-learning detector needs torch and monai ({exc.name} is missing); "
            "install the optional extra: pip install 'medbrain[dl]'",
        ) from None
    import monai as monai_mod

    return torch, monai_mod


def build_network(config: dict[str, Any] | None = None) -> Any:
    """The bundle's RetinaNet network (random weights), as ``torch.nn.Module``."""
    _require_dl()
    from monai.apps.detection.networks.retinanet_network import (
        RetinaNet,
        resnet_fpn_feature_extractor,
    )
    from monai.networks.nets import resnet as resnet_module

    resnet: Any = resnet_module  # untyped upstream signatures

    cfg = (config or bundle_config())["network"]
    anchors = (config or bundle_config())["anchors"]
    backbone = resnet.ResNet(
        block=resnet.ResNetBottleneck,
        layers=list(cfg["backbone_layers"]),
        block_inplanes=resnet.get_inplanes(),
        n_input_channels=int(cfg["n_input_channels"]),
        conv1_t_stride=list(cfg["conv1_t_stride"]),
        conv1_t_size=list(cfg["conv1_t_size"]),
    )
    extractor = resnet_fpn_feature_extractor(
        backbone, int(cfg["spatial_dims"]), False, list(cfg["returned_layers"]), None
    )
    return RetinaNet(
        spatial_dims=int(cfg["spatial_dims"]),
        num_classes=int(cfg["num_classes"]),
        num_anchors=len(anchors["base_anchor_shapes"]),
        feature_extractor=extractor,
        size_divisible=list(cfg["size_divisible"]),
    )


def _check_file(path: Path) -> None:
    """Missing / empty file: a clear error before torch is even imported."""
    if not path.is_file():
        raise DetectorWeightsError(str(path), "weights", "weights file not found")
    if path.stat().st_size == 0:
        raise DetectorWeightsError(str(path), "weights", "weights file is empty")


def _state_dict_from_file(path: Path, torch: Any) -> dict[str, Any]:
    src = str(path)
    _check_file(path)
    is_zip = zipfile.is_zipfile(path)
    if is_zip:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            try:  # TorchScript (bundle models/model.ts)
                scripted = torch.jit.load(src, map_location="cpu")
                return dict(scripted.state_dict())
            except Exception as exc:  # torch raises many kinds
                raise DetectorWeightsError(
                    src, "weights", f"not a loadable TorchScript file ({type(exc).__name__})"
                ) from None
    try:
        obj = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip/runtime errors
        raise DetectorWeightsError(
            src, "weights", f"not a readable PyTorch weights file ({type(exc).__name__})"
        ) from None
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "network"):  # checkpoint wrappers
            inner = obj.get(key)
            if isinstance(inner, dict):
                obj = inner
                break
    if not isinstance(obj, dict) or not obj or not all(hasattr(v, "shape") for v in obj.values()):
        raise DetectorWeightsError(src, "weights", "file holds no network state dict")
    return dict(obj)


def load_network(path: str | Path, config: dict[str, Any] | None = None) -> Any:
    """Build the bundle's network and load ``path`` into it (strict: every tensor must fit)."""
    file = Path(path)
    _check_file(file)
    torch, _ = _require_dl()
    state = _state_dict_from_file(file, torch)
    net = build_network(config)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape)
    )
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} of another shape (e.g. {k}: file "
                f"{tuple(state[k].shape)}, network {tuple(expected[k].shape)})"
            )
        raise DetectorWeightsError(
            str(file),
            "weights",
            "weights do not fit the lung_nodule_ct_detection RetinaNet: " + "; ".join(parts),
        )
    net.load_state_dict(state, strict=True)
    net.eval()
    return net


def _ras_axes(direction: tuple[tuple[float, float, float], ...]) -> tuple[list[int], list[bool]]:
    """For RAS axes (x=R, y=A, z=S): which ``[slice, row, col]`` axis, and whether to flip."""
    d = np.asarray(direction, dtype=np.float64)  # columns: LPS direction of col, row, slice
    grid_of_col = {0: 2, 1: 1, 2: 0}  # direction column -> array axis
    ras_sign = np.asarray([-1.0, -1.0, 1.0])  # LPS -> RAS
    axes: list[int] = []
    flips: list[bool] = []
    for patient_axis in range(3):
        comp = d[patient_axis] * ras_sign[patient_axis]
        col = int(np.argmax(np.abs(comp)))
        if abs(comp[col]) < 0.5 or grid_of_col[col] in axes:
            raise InputError("series", "orientation", "oblique orientation: cannot map to RAS")
        axes.append(grid_of_col[col])
        flips.append(bool(comp[col] < 0))
    return axes, flips


def box_to_grid(
    box: NDArray[np.floating[Any]] | list[float],
    ras_shape: tuple[int, ...],
    resampled_shape: list[int],
    axes: list[int],
    flips: list[bool],
    target_spacing: NDArray[np.float64],
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Map an ``xyzxyz`` box of the resampled RAS image (voxel-corner coordinates, as MONAI's
    detector returns them) to ``(centre [slice, row, col], size_mm (z, y, x))`` of the source
    array (voxel-centre indices). Resampling is ``align_corners=False`` trilinear."""
    b = np.asarray(box, dtype=np.float64)
    scale = np.asarray(ras_shape, dtype=np.float64) / np.asarray(resampled_shape, dtype=np.float64)
    c_src = (b[:3] + b[3:]) / 2.0 * scale - 0.5
    size_mm = (b[3:] - b[:3]) * target_spacing
    grid = [0.0, 0.0, 0.0]
    size = [0.0, 0.0, 0.0]
    for a in range(3):
        v = float(c_src[a])
        if flips[a]:
            v = ras_shape[a] - 1 - v
        grid[axes[a]] = v
        size[axes[a]] = float(size_mm[a])
    return (grid[0], grid[1], grid[2]), (size[0], size[1], size[2])


@dataclass
class MonaiRetinaNetDetector:
    """RetinaNet from a hospital-supplied bundle weights file, behind :class:`Detector`.

    ``direction`` is the series' direction matrix (to re-orient to RAS as in training);
    ``roi_size`` overrides the sliding window (default: the config's GPU or CPU size).
    """

    weights_path: str
    direction: tuple[tuple[float, float, float], ...] = IDENTITY
    device: str = "auto"
    roi_size: tuple[int, int, int] | None = None
    config: dict[str, Any] = field(default_factory=lambda: bundle_config())
    name: str = "monai-retinanet"
    version: str = ""
    _network: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.version = f"{self.config.get('version', '')}:{Path(self.weights_path).name}"
        self._network = load_network(self.weights_path, self.config)

    @property
    def operating_threshold(self) -> float:
        return float(self.config["inference"]["operating_threshold"])

    def _torch_device(self, torch: Any) -> Any:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def predict_boxes(
        self, hu: NDArray[np.float32], spacing_zyx: tuple[float, float, float]
    ) -> list[tuple[tuple[float, float, float], tuple[float, float, float], float]]:
        """Raw boxes: ``(center [slice,row,col], size_mm (z,y,x), score)`` in ``hu``'s grid."""
        torch, _ = _require_dl()
        from monai.apps.detection.networks.retinanet_detector import RetinaNetDetector
        from monai.apps.detection.utils.anchor_utils import AnchorGeneratorWithAnchorShape

        pre = self.config["preprocessing"]
        inf = self.config["inference"]
        anchors = self.config["anchors"]
        axes, flips = _ras_axes(self.direction)
        arr = np.transpose(hu, axes)
        for a, f in enumerate(flips):
            if f:
                arr = np.flip(arr, axis=a)
        src_spacing = np.asarray([spacing_zyx[a] for a in axes])
        target = np.asarray(pre["spacing_mm"], dtype=np.float64)
        out_shape = [
            max(8, round(n * s / t)) for n, s, t in zip(arr.shape, src_spacing, target, strict=True)
        ]
        lo, hi = (float(v) for v in pre["intensity_window"])
        device = self._torch_device(torch)
        with torch.no_grad():
            img = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[None, None]
            img = torch.nn.functional.interpolate(
                img, size=out_shape, mode="trilinear", align_corners=False
            )
            img = ((img.clamp(lo, hi) - lo) / (hi - lo))[0]
            generator = AnchorGeneratorWithAnchorShape(
                feature_map_scales=list(anchors["feature_map_scales"]),
                base_anchor_shapes=[list(s) for s in anchors["base_anchor_shapes"]],
            )
            det = RetinaNetDetector(
                network=self._network.to(device),
                anchor_generator=generator,
                spatial_dims=3,
                num_classes=1,
                size_divisible=list(self.config["network"]["size_divisible"]),
            )
            det.set_box_selector_parameters(
                score_thresh=float(inf["score_thresh"]),
                topk_candidates_per_level=int(inf["topk_candidates_per_level"]),
                nms_thresh=float(inf["nms_thresh"]),
                detections_per_img=int(inf["detections_per_img"]),
            )
            roi = self.roi_size or tuple(
                inf["roi_size_gpu"] if device.type == "cuda" else inf["roi_size_cpu"]
            )
            # the detector pads to size_divisible first: a window as large as the padded image
            # covers it once (a smaller one would slide over it with overlap)
            div = [int(v) for v in self.config["network"]["size_divisible"]]
            padded = [math.ceil(n / d) * d for n, d in zip(out_shape, div, strict=True)]
            roi = tuple(min(int(r), p) for r, p in zip(roi, padded, strict=True))
            det.set_sliding_window_inferer(
                roi_size=list(roi),
                overlap=float(inf["overlap"]),
                sw_batch_size=1,
                mode="constant",
                device=device,
            )
            det.eval()
            result = det([img.to(device)], use_inferer=True)[0]
        boxes = result[det.target_box_key].detach().cpu().numpy().reshape(-1, 6)
        scores = result[det.pred_score_key].detach().cpu().numpy().reshape(-1)
        out = [
            (*box_to_grid(box, arr.shape, out_shape, axes, flips, target), float(score))
            for box, score in zip(boxes, scores, strict=True)
        ]
        out.sort(key=lambda t: -t[2])
        return out

    def detect(
        self,
        hu: NDArray[np.float32],
        lung_mask: NDArray[np.bool_],
        spacing_zyx: tuple[float, float, float],
    ) -> list[Candidate]:
        """Scored candidates inside the lung mask, measured like the classical ones."""
        out: list[Candidate] = []
        for center, size_mm, score in self.predict_boxes(hu, spacing_zyx):
            c = tuple(
                int(min(max(round(v), 0), n - 1)) for v, n in zip(center, hu.shape, strict=True)
            )
            if not lung_mask[c]:
                continue
            radius = max(1.5, float(np.mean(size_mm)) / 2.0)
            m = measure_nodule(hu, lung_mask, spacing_zyx, (c[0], c[1], c[2]), radius)
            if m is None:
                continue
            out.append(Candidate(m, score, (score, radius)))
        return out


@dataclass
class EnsembleDetector:
    """Classical + deep-learning candidates fused by centre.

    Each detector's score is first put on a common scale, ``s' = min(1, 0.5 * s / t)`` with
    ``t`` that detector's operating threshold (so 0.5 means "at its own threshold"). Candidates
    whose centres lie within ``max(match_mm, radius)`` are one nodule; the fused score is the
    noisy-OR ``1 - prod(1 - s')``: at 0.5 the ensemble reports the union of what each detector
    reports alone, and agreement raises the score. The measurement comes from the detector with
    the higher ``s'``.
    """

    detectors: tuple[Detector, ...]
    thresholds: tuple[float, ...]
    match_mm: float = 5.0
    name: str = "ensemble"
    version: str = ""

    def __post_init__(self) -> None:
        if len(self.detectors) != len(self.thresholds) or not self.detectors:
            raise ValueError("one threshold per detector")
        if any(not 0 < t <= 1 for t in self.thresholds):
            raise ValueError("thresholds must lie in (0, 1]")
        self.version = "+".join(f"{d.name}:{d.version}" for d in self.detectors)

    def detect(
        self,
        hu: NDArray[np.float32],
        lung_mask: NDArray[np.bool_],
        spacing_zyx: tuple[float, float, float],
    ) -> list[Candidate]:
        sp = np.asarray(spacing_zyx[::-1], dtype=np.float64)  # col, row, slice
        clusters: list[dict[str, Any]] = []
        for t, det in zip(self.thresholds, self.detectors, strict=True):
            for cand in det.detect(hu, lung_mask, spacing_zyx):
                s = min(1.0, 0.5 * cand.score / t)
                p = np.asarray(cand.measurement.center_voxel) * sp
                r = cand.measurement.mean_diameter_mm / 2.0
                best = None
                for cl in clusters:
                    if det.name in cl["by"]:
                        continue
                    if np.linalg.norm(cl["p"] - p) <= max(self.match_mm, r, cl["r"]):
                        best = cl
                        break
                if best is None:
                    clusters.append({"p": p, "r": r, "by": {det.name: (s, cand)}})
                elif det.name not in best["by"]:
                    best["by"][det.name] = (s, cand)
        fused: list[Candidate] = []
        for cl in clusters:
            miss = 1.0
            for s, _ in cl["by"].values():
                miss *= 1.0 - s
            _, lead = max(cl["by"].values(), key=lambda sc: sc[0])
            feats = tuple(float(s) for s, _ in cl["by"].values())
            fused.append(Candidate(lead.measurement, float(1.0 - miss), feats))
        fused.sort(key=lambda c: (-c.score, c.measurement.center_voxel))
        return fused


def save_random_weights(path: str | Path, seed: int = 0) -> Path:
    """Write randomly initialised weights of the bundle's architecture (tests, demos)."""
    torch, _ = _require_dl()
    torch.manual_seed(seed)
    net = build_network()
    file = Path(path)
    torch.save(net.state_dict(), str(file))
    return file


def describe_weights(path: str | Path) -> dict[str, Any]:
    """Quick facts about a weights file (tensor count, parameters) for the CLI/README."""
    torch, _ = _require_dl()
    state = _state_dict_from_file(Path(path), torch)
    params = sum(math.prod(tuple(v.shape)) for v in state.values())
    return {"tensors": len(state), "parameters": int(params)}


DETECTOR_KINDS = ("classical", "dl", "ensemble")


def make_detector(
    kind: str,
    weights: str | None,
    direction: tuple[tuple[float, float, float], ...] = IDENTITY,
    classical: Any = None,
    classical_threshold: float | None = None,
) -> tuple[Detector | None, float | None]:
    """``(detector, operating threshold)`` for ``--detector``; ``(None, None)`` = classical
    default. ``dl`` / ``ensemble`` need ``weights`` (CLI ``--weights`` or MEDBRAIN_CT_DL_WEIGHTS)."""
    if kind not in DETECTOR_KINDS:
        raise InputError(
            "--detector", "detector", f"must be one of {', '.join(DETECTOR_KINDS)}, got {kind!r}"
        )
    if kind == "classical":
        return None, None
    if not weights:
        raise DetectorWeightsError(
            "--weights",
            "weights",
            f"--detector {kind} needs a weights file (--weights PATH or MEDBRAIN_CT_DL_WEIGHTS)",
        )
    dl = MonaiRetinaNetDetector(weights, direction=direction)
    if kind == "dl":
        return dl, dl.operating_threshold
    if classical is None or classical_threshold is None:
        raise ValueError("ensemble needs the classical detector and its threshold")
    ens = EnsembleDetector((classical, dl), (classical_threshold, dl.operating_threshold))
    return ens, 0.5
