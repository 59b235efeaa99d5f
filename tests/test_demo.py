"""The demo's images: deterministic, the right shapes, and defects that grow with strength."""

import json

import numpy as np
import pytest
from PIL import Image

from fidlens import demo


@pytest.fixture(scope="module")
def faces():
    return demo.load_lfw_faces()


def test_lfw_faces_are_the_first_hundred(faces):
    assert faces.shape == (100, 25, 25)
    assert faces.dtype == np.float64
    assert 0.0 <= faces.min() and faces.max() <= 1.0


def test_upscale_keeps_gray_levels_and_makes_rgb_uint8(faces):
    big = demo.upscale_gray(faces[:3], 64)
    assert big.shape == (3, 64, 64, 3) and big.dtype == np.uint8
    assert np.array_equal(big[..., 0], big[..., 2])  # gray copied to RGB
    # Bicubic upscaling keeps the mean brightness of each face (within a couple of levels).
    np.testing.assert_allclose(big.mean(axis=(1, 2, 3)), faces[:3].mean(axis=(1, 2)) * 255, atol=3)


def test_split_is_a_seeded_partition():
    a, b = demo.split_halves(100, seed=0)
    assert len(a) == len(b) == 50
    assert sorted(np.concatenate([a, b]).tolist()) == list(range(100))
    a_again, _ = demo.split_halves(100, seed=0)
    a_other, _ = demo.split_halves(100, seed=1)
    assert np.array_equal(a, a_again)
    assert not np.array_equal(a, a_other)


def test_demo_sets_are_deterministic(faces):
    first = demo.make_demo_sets(faces, 48, seed=3, generated={"gen": 0.5})
    second = demo.make_demo_sets(faces, 48, seed=3, generated={"gen": 0.5})
    assert list(first) == ["real_a", "real_b", "gen"]
    for name in first:
        assert list(first[name]) == list(second[name])
        for key in first[name]:
            assert np.array_equal(first[name][key], second[name][key])
    # Generated images are defective copies of real_a, under the same file names.
    assert list(first["gen"]) == list(first["real_a"])
    assert not set(first["real_a"]) & set(first["real_b"])
    image = first["gen"][demo.face_file_name(int(demo.split_halves(100, 3)[0][0]))]
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def test_defects_grow_with_strength(faces):
    sets = demo.make_demo_sets(
        faces, 64, seed=0, generated={"none": 0.0, "mild": 0.35, "strong": 1.0}
    )
    clean = sets["real_a"]
    error = {
        name: np.mean([_mse(sets[name][key], clean[key]) for key in clean])
        for name in ("none", "mild", "strong")
    }
    assert error["none"] == 0.0
    assert 0.0 < error["mild"] < error["strong"]
    # Every single image is damaged more at the higher strength (same random draws).
    for key in clean:
        assert _mse(sets["mild"][key], clean[key]) < _mse(sets["strong"][key], clean[key])


def test_each_defect_changes_the_image():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (32, 32, 3))
    assert demo.blur(image, 0) is image
    blurred = demo.blur(image, 1.0)
    assert blurred.std() < image.std()  # smoothing removes variance
    alpha = demo.blotch_alpha((32, 32), np.array([16.0, 16.0]), 4.0, 0.6)
    assert alpha.max() == pytest.approx(0.6) and alpha[0, 0] < 0.01
    noise = demo.texture_noise(np.random.default_rng(1), (32, 32))
    assert noise.shape == (32, 32, 3) and noise.std() == pytest.approx(1.0)
    board = demo.checkerboard((4, 4))[..., 0]
    assert board[0, 0] == 1 and board[0, 1] == -1 and board[1, 1] == 1


def test_generated_name_may_not_overwrite_a_real_set(faces):
    with pytest.raises(ValueError, match="real_b"):
        demo.make_demo_sets(faces[:4], 32, seed=0, generated={"real_b": 1.0})


def test_write_demo_writes_pngs_and_provenance(tmp_path, faces):
    sets = demo.make_demo_sets(faces[:6], 32, seed=0, generated={"gen": 1.0})
    about = demo.describe_demo(sets, 32, 0, {"gen": 1.0})
    demo.write_demo(tmp_path, sets, about)
    for name, files in sets.items():
        written = sorted(p.name for p in (tmp_path / name).iterdir())
        assert written == sorted(files)
        for file_name, image in files.items():
            assert np.array_equal(np.asarray(Image.open(tmp_path / name / file_name)), image)
    recorded = json.loads((tmp_path / "demo.json").read_text())
    assert recorded["generated"] == {"gen": {"from": "real_a", "strength": 1.0}}
    assert recorded["images"]["real_a"] == sorted(sets["real_a"])
    assert "lfw_subset" in (tmp_path / "README.md").read_text()
