"""MONAI RetinaNet detector (bundle architecture) with random weights saved to a temp file.

No real weights are downloadable here: these tests check loading, shapes, inference on small
synthetic volumes, the RAS/resampling coordinate mapping, the ensemble, and clear errors for a
missing / empty / corrupt / mismatched weights file. Needs the dev extra (torch, monai).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("monai")
pytest.importorskip("torchvision")

import torch

from medbrain.core.errors import InputError
from medbrain.imaging.detect import Candidate
from medbrain.imaging.measure import measure_nodule
from medbrain.imaging.monai_detector import (
    DetectorWeightsError,
    EnsembleDetector,
    MonaiRetinaNetDetector,
    box_to_grid,
    build_network,
    bundle_config,
    load_network,
    make_detector,
    save_random_weights,
)
from medbrain.imaging.synthetic import sphere_phantom

FLIP_ROWS = ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 1.0))
SPACING = (2.5, 2.5, 2.5)


def small_volume() -> tuple[np.ndarray, np.ndarray]:
    """8 x 12 x 12 voxels at 2.5 mm (resampled by the detector to 16 x 43 x 43): lung
    background with an off-centre 8 mm solid ball, and a lung mask."""
    z, y, x = np.ogrid[:8, :12, :12]
    ball = ((z - 3.5) * 2.5) ** 2 + ((y - 4.0) * 2.5) ** 2 + ((x - 7.0) * 2.5) ** 2 <= 16.0
    hu = np.where(ball, 30.0, -850.0).astype(np.float32)
    return hu, np.ones(hu.shape, dtype=bool)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(2)
    return save_random_weights(tmp_path_factory.mktemp("dl") / "model.pt", seed=3)


@pytest.fixture(scope="module")
def detector(weights: Path) -> MonaiRetinaNetDetector:
    return MonaiRetinaNetDetector(str(weights), device="cpu")


def test_weights_load_into_the_bundle_architecture(weights: Path) -> None:
    net = load_network(weights)
    state = net.state_dict()
    cfg = bundle_config()
    # classification head: one logit per anchor shape and class
    cls = [v for k, v in state.items() if k.startswith("classification_head.cls_logits.weight")]
    assert cls and cls[0].shape[0] == len(cfg["anchors"]["base_anchor_shapes"]) * 1
    assert state["feature_extractor.body.conv1.weight"].shape[2:] == (7, 7, 7)
    saved = torch.load(str(weights), weights_only=True)
    key = "feature_extractor.body.conv1.weight"
    assert torch.equal(saved[key], state[key])  # really the file's weights, not fresh ones
    with torch.no_grad():
        out = net(torch.zeros(1, 1, 32, 32, 16))
    # three feature levels (scales 1, 2, 4 of the stride-(4,4,2) stem) for cls and box heads
    assert len(out["classification"]) == 3
    assert out["classification"][0].shape[1] == 3
    assert out["box_regression"][0].shape[1] == 3 * 6


def test_inference_on_a_small_volume_maps_boxes_into_the_grid(
    detector: MonaiRetinaNetDetector,
) -> None:
    hu, _mask = small_volume()
    boxes = detector.predict_boxes(hu, SPACING)
    assert boxes, "random weights still give low-score boxes above the bundle's 0.02"
    scores = [b[2] for b in boxes]
    assert scores == sorted(scores, reverse=True) and all(0.02 <= s <= 1 for s in scores)
    for center, size, _s in boxes:
        assert all(-1.0 <= c <= n for c, n in zip(center, hu.shape, strict=True))
        assert all(np.isfinite(size))
    # the same image with the row axis running the other way: mirrored row coordinates
    flipped = MonaiRetinaNetDetector(detector.weights_path, direction=FLIP_ROWS, device="cpu")
    mirrored = flipped.predict_boxes(np.ascontiguousarray(hu[:, ::-1, :]), SPACING)
    a, b = boxes[0][0], mirrored[0][0]
    assert a[0] == pytest.approx(b[0], abs=1e-3) and a[2] == pytest.approx(b[2], abs=1e-3)
    assert a[1] == pytest.approx(hu.shape[1] - 1 - b[1], abs=1e-3)


def test_detect_returns_measured_candidates_inside_the_lung(
    detector: MonaiRetinaNetDetector,
) -> None:
    hu, mask = small_volume()
    mask[:, :, : mask.shape[2] // 2] = False  # half the block is "not lung"
    found = detector.detect(hu, mask, SPACING)
    assert all(isinstance(c, Candidate) for c in found)
    for cand in found:  # boxes centred outside the mask are dropped before measuring
        assert cand.measurement.center_voxel[0] >= mask.shape[2] // 2 - 1.5
        assert cand.measurement.mean_diameter_mm > 0
        assert 0 <= cand.score <= 1


def test_box_to_grid_undoes_resampling_and_flips() -> None:
    # source 10 voxels per axis, resampled to 20: a box over resampled voxels [4, 6) has its
    # centre at corner-coordinate 5 -> source corner 2.5 -> source voxel-centre index 2.0
    axes, flips = [2, 1, 0], [True, True, False]  # RAS x,y,z from [slice,row,col], LPS input
    target = np.asarray([0.5, 0.5, 0.5])
    center, size = box_to_grid([4, 4, 4, 6, 6, 6], (10, 10, 10), [20, 20, 20], axes, flips, target)
    # x (R) and y (A) were flipped from the col/row axes: index 9 - 2 = 7
    assert center == pytest.approx((2.0, 7.0, 7.0))
    assert size == pytest.approx((1.0, 1.0, 1.0))


def test_weights_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(DetectorWeightsError, match="not found"):
        load_network(tmp_path / "absent.pt")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(DetectorWeightsError, match="empty"):
        load_network(empty)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DetectorWeightsError, match="not a readable PyTorch weights file"):
        load_network(corrupt)
    other = tmp_path / "other.pt"
    torch.save({"model": {"conv.weight": torch.zeros(3, 3)}}, str(other))
    with pytest.raises(DetectorWeightsError, match=r"missing .*unexpected \(e\.g\. conv\.weight\)"):
        load_network(other)
    not_weights = tmp_path / "list.pt"
    torch.save([1, 2, 3], str(not_weights))
    with pytest.raises(DetectorWeightsError, match="no network state dict"):
        load_network(not_weights)


def test_shape_mismatch_is_named(tmp_path: Path) -> None:
    net = build_network()
    state = net.state_dict()
    key = "classification_head.cls_logits.weight"
    state[key] = torch.zeros((6, *state[key].shape[1:]))  # trained for 2 classes
    path = tmp_path / "two_classes.pt"
    torch.save(state, str(path))
    with pytest.raises(DetectorWeightsError, match=r"another shape \(e\.g\. " + key):
        load_network(path)


def test_make_detector_choices(weights: Path) -> None:
    assert make_detector("classical", None) == (None, None)
    with pytest.raises(DetectorWeightsError, match="needs a weights file"):
        make_detector("dl", None)
    with pytest.raises(InputError, match="classical, dl, ensemble"):
        make_detector("yolo", str(weights))
    det, threshold = make_detector("dl", str(weights))
    assert isinstance(det, MonaiRetinaNetDetector)
    assert threshold == bundle_config()["inference"]["operating_threshold"]


class FixedDetector:
    """A detector that reports fixed candidates (to test the fusion rule alone)."""

    def __init__(self, name: str, cands: list[Candidate]) -> None:
        self.name, self.version, self.cands = name, "1", cands

    def detect(self, hu: object, lung_mask: object, spacing_zyx: object) -> list[Candidate]:
        return self.cands


def test_ensemble_fuses_by_centre_with_noisy_or() -> None:
    hu, mask, c = sphere_phantom(8.0, spacing_mm=(1.0, 1.0, 1.0), noise_hu=0.0)
    sp = (1.0, 1.0, 1.0)
    m = measure_nodule(hu, mask, sp, c, 4.0)
    far = measure_nodule(hu, mask, sp, c, 4.0)
    assert m is not None and far is not None
    from dataclasses import replace

    far = replace(far, center_voxel=(far.center_voxel[0] + 15, *far.center_voxel[1:]))
    a = FixedDetector("a", [Candidate(m, 0.8, ()), Candidate(far, 0.4, ())])
    b = FixedDetector("b", [Candidate(m, 0.5, ())])
    ens = EnsembleDetector((a, b), (0.8, 0.5))
    fused = ens.detect(hu, mask, sp)
    assert len(fused) == 2
    # both at their own threshold: 1 - (1 - 0.5) * (1 - 0.5) = 0.75; alone at half: 0.25
    assert fused[0].score == pytest.approx(0.75)
    assert fused[1].score == pytest.approx(0.25)
    assert ens.version == "a:1+b:1"
