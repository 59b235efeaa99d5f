"""Generator adapters: seeds -> z as NVlabs' scripts, the procedural demo generator (determinism,
its known defective region) and the guard around NVlabs StyleGAN network pickles, run on a
stand-in network that the test pickles itself."""

from __future__ import annotations

import pickle
import sys
import textwrap

import numpy as np
import pytest
import torch

from fidlens.generators import load_generator
from fidlens.generators.latents import Latents, read_latents, write_latents
from fidlens.generators.procedural import (
    DEFECT_THRESHOLD,
    ProceduralFaces,
    defect_severity,
    is_defective,
)
from fidlens.generators.stylegan import StyleGAN, UntrustedPickleError, check_may_unpickle


def test_seeds_give_nvlabs_latents_and_the_procedural_images_are_deterministic():
    first, second = ProceduralFaces(64, device="cpu"), ProceduralFaces(64, device="cpu")
    z1, w1, images1 = first.generate([3, 0, 7])
    z2, w2, images2 = second.generate([3, 0, 7])
    expected = np.concatenate([np.random.RandomState(s).randn(1, 32) for s in (3, 0, 7)])
    np.testing.assert_array_equal(z1, expected)  # gen_images.py's z of each seed
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(images1, images2)
    assert images1.shape == (3, 64, 64, 3) and images1.dtype == np.uint8
    assert all(image.std() > 20 for image in images1)  # drawn faces, not blank
    assert np.abs(images1[0].astype(int) - images1[1]).mean() > 5  # seeds differ
    # Batching does not change a pixel, and truncation pulls w to w_avg = 0.
    np.testing.assert_array_equal(first.synthesis(w1, batch_size=1), images1)
    np.testing.assert_allclose(first.mapping(z1, truncation_psi=0.5), 0.5 * w1, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(w1, axis=1), np.linalg.norm(z1, axis=1))


def test_only_the_defective_half_space_breaks_the_face():
    generator = ProceduralFaces(64, device="cpu")
    w = generator.mapping(generator.z_from_seeds([5]))
    codes = np.repeat(w, 4, axis=0)
    codes[:, 0] = [-1.0, DEFECT_THRESHOLD - 0.01, DEFECT_THRESHOLD + 0.2, 2.5]
    images = generator.synthesis(codes).astype(int)
    np.testing.assert_array_equal(is_defective(codes), [False, False, True, True])
    np.testing.assert_array_equal(generator.known_defective(codes), is_defective(codes))
    severity = defect_severity(codes)
    assert severity[0] == severity[1] == 0 and 0 < severity[2] < severity[3] == 1
    # Outside the region w[0] changes nothing; inside, the face breaks more as it goes on.
    np.testing.assert_array_equal(images[0], images[1])
    broken = [np.abs(images[k] - images[0]).mean() for k in (2, 3)]
    assert 3 < broken[0] < broken[1]
    # The broken face loses its left-right symmetry (mirror the face's half-width columns).
    def asymmetry(image):
        return np.abs(image[:, 12:32] - image[:, 52:32:-1][:, : 20]).mean()

    assert asymmetry(images[3]) > asymmetry(images[0]) + 5


def test_latents_and_pair_files_round_trip(tmp_path):
    latents = Latents(paths=["b.png", "a.png"], w=np.arange(6.0).reshape(2, 3),
                      seeds=np.array([4, 2]), extra={"defective": np.array([True, False])},
                      attrs={"generator": '{"adapter": "procedural"}'})
    write_latents(tmp_path / "l.h5", latents, "test codes")
    back = read_latents(tmp_path / "l.h5")
    assert back.paths == ["b.png", "a.png"] and back.generator == {"adapter": "procedural"}
    np.testing.assert_array_equal(back.w_of(["a.png", "b.png"]), [[3, 4, 5], [0, 1, 2]])
    np.testing.assert_array_equal(back.extra["defective"], [True, False])
    assert "numpy" in back.attrs["package_versions"]
    with pytest.raises(KeyError, match="c.png"):
        back.w_of(["c.png"])


# ---------------------------------------------------------------------------------------------
# NVlabs pickles, with a stand-in network in a fake NVlabs source tree
# ---------------------------------------------------------------------------------------------

STANDIN = '''
import torch


class Mapping(torch.nn.Module):
    def __init__(self, z_dim, w_dim, num_ws):
        super().__init__()
        self.fc = torch.nn.Linear(z_dim, w_dim)
        self.num_ws = num_ws
        self.register_buffer("w_avg", torch.full((w_dim,), 0.25))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        w = self.fc(z.to(torch.float32))
        w = self.w_avg.lerp(w, truncation_psi)
        return w[:, None, :].repeat(1, self.num_ws, 1)


class Synthesis(torch.nn.Module):
    def __init__(self, w_dim, num_ws, resolution):
        super().__init__()
        self.fc = torch.nn.Linear(w_dim, 3 * resolution * resolution)
        self.num_ws, self.resolution = num_ws, resolution

    def forward(self, ws, noise_mode="random", **kwargs):
        assert noise_mode == "const" and ws.shape[1] == self.num_ws
        x = 1.3 * torch.tanh(self.fc(ws.mean(dim=1)))  # beyond [-1, 1]: clamped
        return x.view(-1, 3, self.resolution, self.resolution)


class Generator(torch.nn.Module):
    def __init__(self, z_dim=8, w_dim=6, num_ws=4, img_resolution=16):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, 0, w_dim
        self.num_ws, self.img_resolution = num_ws, img_resolution
        self.mapping = Mapping(z_dim, w_dim, num_ws)
        self.synthesis = Synthesis(w_dim, num_ws, img_resolution)
'''


@pytest.fixture
def stylegan_pickle(tmp_path, monkeypatch):
    """A network pickle of the stand-in G_ema, whose classes live in the fake NVlabs source
    tree `src/` (torch_utils/standin.py, beside an empty dnnlib), which is then unimported."""
    source = tmp_path / "src"
    for package in ("dnnlib", "torch_utils"):
        (source / package).mkdir(parents=True)
        (source / package / "__init__.py").write_text("")
    (source / "torch_utils" / "standin.py").write_text(textwrap.dedent(STANDIN))
    monkeypatch.syspath_prepend(str(source))
    from torch_utils import standin

    torch.manual_seed(0)
    network = standin.Generator()
    path = tmp_path / "network-snapshot.pkl"
    path.write_bytes(pickle.dumps({"G": None, "D": None, "G_ema": network}))
    for name in ("torch_utils.standin", "torch_utils", "dnnlib"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return path, source, network


def test_a_pickle_is_never_opened_without_trust_pickle(tmp_path):
    marker = tmp_path / "code-ran"

    class RunsCode:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": RunsCode()}))
    with pytest.raises(UntrustedPickleError, match="trust_pickle: true") as refused:
        load_generator({"adapter": "stylegan", "network": str(path)},
                       setting="discard_replace.datasets.gen.generator")
    assert "discard_replace.datasets.gen.generator.trust_pickle" in str(refused.value)
    assert "dnnlib and torch_utils" in str(refused.value) and "PYTHONPATH" in str(refused.value)
    assert not marker.exists()
    with pytest.raises(FileNotFoundError, match="network pickle not found"):
        check_may_unpickle(tmp_path / "missing.pkl", True, "generator")


def test_trusted_pickle_needs_the_stylegan_source(stylegan_pickle, monkeypatch):
    path, source, _ = stylegan_pickle
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(source)])
    with pytest.raises(ModuleNotFoundError, match="dnnlib, torch_utils missing"):
        StyleGAN(path, trust_pickle=True, device="cpu")


def test_trusted_pickle_with_its_source_runs_as_gen_images(stylegan_pickle):
    path, _, network = stylegan_pickle
    generator = StyleGAN(path, trust_pickle=True, device="cpu")
    assert (generator.z_dim, generator.w_dim, generator.num_ws) == (8, 6, 4)
    z, w, images = generator.generate([0, 1, 2], truncation_psi=0.7)  # one batch
    np.testing.assert_array_equal(z[1], np.random.RandomState(1).randn(8))
    # NVlabs' convention, computed here from the original module.
    with torch.no_grad():
        ws = network.mapping(torch.from_numpy(z), None, truncation_psi=0.7)
        raw = network.synthesis(ws, noise_mode="const")
    expected = (raw.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    np.testing.assert_array_equal(w, ws[:, 0].double().numpy())
    np.testing.assert_array_equal(images, expected)
    assert images.shape == (3, 16, 16, 3) and (images == 255).any() and (images == 0).any()
    assert generator.provenance()["network_sha256"] == __import__("hashlib").sha256(
        path.read_bytes()).hexdigest()
    bigger = StyleGAN(path, trust_pickle=True, resolution=32, device="cpu")
    assert bigger.synthesis(w[:1]).shape == (1, 32, 32, 3)
