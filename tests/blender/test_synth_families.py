"""Every scene family of the synthetic depth generator renders, deterministically per
(family, seed), with its family recorded, sky where the family has sky and none indoors."""

import numpy as np
import pytest

from tools.synth.plan import FAMILIES, output_name

OPEN_SKY = {"street", "thin", "people", "forest", "terrain"}
CLOSED = {"corridor", "warehouse"}  # a ceiling and walls all round: nothing reaches the sky


def fingerprint():
    import bpy

    objects = sorted((o.type, tuple(round(v, 4) for v in o.location), tuple(round(v, 4) for v in o.dimensions))
                     for o in bpy.data.objects)
    return objects, round(bpy.context.scene.camera.data.lens, 4)


@pytest.fixture
def generator(monkeypatch):
    from tools.synth import generate

    monkeypatch.setattr(generate, "WIDTH", 48)
    monkeypatch.setattr(generate, "HEIGHT", 32)
    monkeypatch.setattr(generate, "THREADS", 1)
    return generate


@pytest.mark.parametrize("family", FAMILIES)
def test_family_renders_deterministically(family, generator, tmp_path):
    first = np.load(generator.render(3, tmp_path / "a", family))
    second = np.load(generator.render(3, tmp_path / "b", family))
    assert str(first["family"]) == family
    assert (tmp_path / "a" / output_name(family, 3)).exists()
    assert np.array_equal(first["rgb"], second["rgb"]) and np.array_equal(first["depth"], second["depth"])
    depth = first["depth"].astype(np.float32)
    assert first["rgb"].shape == (32, 48, 3) and np.isfinite(depth).mean() > 0.3
    assert np.nanmin(depth[np.isfinite(depth)]) > 0
    if family in OPEN_SKY:  # seen from eye level or so: some sky in view
        assert not np.isfinite(depth).all()
    if family in CLOSED:
        assert np.isfinite(depth).all()
    assert first["rgb"].std() > 3  # lit and textured, not a flat frame
    generator.build_family_scene(family, 3)
    scene_3 = fingerprint()
    generator.build_family_scene(family, 4)
    assert fingerprint() != scene_3  # another seed is another scene
    generator.build_family_scene(family, 3)
    assert fingerprint() == scene_3
