"""Measurement: mean diameter within 1 mm for spheres >= 6 mm, type by attenuation."""

from __future__ import annotations

import pytest

from medbrain.imaging.measure import fleischner_diameter_mm, measure_nodule
from medbrain.imaging.synthetic import sphere_phantom

THIN = (0.7, 0.7, 1.25)


@pytest.mark.parametrize("diameter_mm", [6.0, 8.0, 12.0, 20.0])
@pytest.mark.parametrize("value_hu", [30.0, -600.0])
def test_mean_diameter_error_within_1mm_for_spheres_6mm_and_larger(
    diameter_mm: float, value_hu: float
) -> None:
    hu, lung, c = sphere_phantom(diameter_mm, THIN, value_hu, seed=int(diameter_mm))
    m = measure_nodule(hu, lung, (THIN[2], THIN[1], THIN[0]), c, diameter_mm / 2)
    assert m is not None
    assert abs(m.mean_diameter_mm - diameter_mm) <= 1.0
    assert m.mean_diameter_mm == round((m.long_axis_mm + m.short_axis_mm) / 2, 1)
    assert abs(fleischner_diameter_mm(m) - diameter_mm) <= 1


@pytest.mark.parametrize(
    ("value_hu", "solid_mm", "expected"),
    [
        (30.0, 0.0, "solid"),
        (-600.0, 0.0, "ground-glass"),
        (500.0, 0.0, "calcified"),
        (-600.0, 6.0, "part-solid"),
    ],
)
def test_type_follows_attenuation(value_hu: float, solid_mm: float, expected: str) -> None:
    hu, lung, c = sphere_phantom(12.0, THIN, value_hu, solid_diameter_mm=solid_mm, seed=3)
    m = measure_nodule(hu, lung, (THIN[2], THIN[1], THIN[0]), c, 6.0)
    assert m is not None
    assert m.type == expected
    if expected == "part-solid":
        assert m.solid_component_mm is not None
        assert abs(m.solid_component_mm - solid_mm) <= 1.5
    else:
        assert m.solid_component_mm is None


def test_volume_of_10mm_sphere_is_close_to_524_mm3() -> None:
    hu, lung, c = sphere_phantom(10.0, THIN, 30.0, seed=1)
    m = measure_nodule(hu, lung, (THIN[2], THIN[1], THIN[0]), c, 5.0)
    assert m is not None
    assert m.volume_mm3 == pytest.approx(524, rel=0.1)


def test_plain_lung_gives_no_measurement() -> None:
    hu, lung, c = sphere_phantom(6.0, THIN, -850.0, seed=2)
    assert measure_nodule(hu, lung, (THIN[2], THIN[1], THIN[0]), c, 3.0) is None
