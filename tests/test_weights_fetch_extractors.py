"""`make weights` (workflow_scripts/fetch_weights.py -> fidlens.weights_fetch) knows the official
file of every extractor type of issue 8: its URL and published hash where there is one (a wrong
download is refused), the sha256 got recorded and printed where there is none, and where to
get ArcFace's file, which no script can download. Downloads are served from local files."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

from fidlens.weight_specs import WEIGHTS_SPECS
from fidlens.weights_fetch import HashMismatchError, fetch_all

REPO = Path(__file__).resolve().parents[1]

# type -> (file name, URL, published full sha256 or prefix, or None)
OFFICIAL = {
    "clip_vitb32": (
        "ViT-B-32.pt",
        "https://openaipublic.azureedge.net/clip/models/"
        "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
        "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
    ),
    "clip_vitl14_336": (
        "ViT-L-14-336px.pt",
        "https://openaipublic.azureedge.net/clip/models/"
        "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt",
        "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
    ),
    "dinov2_vitb14_reg": (
        "dinov2_vitb14_reg4_pretrain.pth",
        "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_reg4_pretrain.pth",
        None,
    ),
    "dinov2_vitl14": (
        "dinov2_vitl14_pretrain.pth",
        "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth",
        None,
    ),
    "resnet50": (
        "resnet50-0676ba61.pth", "https://download.pytorch.org/models/resnet50-0676ba61.pth",
        "0676ba61",
    ),
    "swav_resnet50": (
        "swav_800ep_pretrain.pth.tar",
        "https://dl.fbaipublicfiles.com/deepcluster/swav_800ep_pretrain.pth.tar",
        None,
    ),
    "vgg16": (
        "vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth",
        "397923af",
    ),
}


def _serving(content: bytes, requested: list[str]):
    def opener(url):
        requested.append(url)
        return io.BytesIO(content)

    return opener


def test_every_new_type_has_its_official_file_url_and_hash():
    for name, (file_name, url, published) in OFFICIAL.items():
        spec = WEIGHTS_SPECS[name]
        assert (spec.file_name, spec.url) == (file_name, url), name
        assert (spec.sha256 or spec.sha256_prefix or None) == published, name
    assert WEIGHTS_SPECS["arcface_r100"].url is None


@pytest.mark.parametrize("name", [n for n, (_, _, h) in OFFICIAL.items() if h])
def test_a_download_without_the_published_hash_is_refused(name, tmp_path):
    requested = []
    with pytest.raises(HashMismatchError, match=OFFICIAL[name][2][:8]):
        fetch_all([name], tmp_path, opener=_serving(b"not it", requested), report=print)
    assert requested == [OFFICIAL[name][1]]
    assert not (tmp_path / OFFICIAL[name][0]).exists()


@pytest.mark.parametrize("name", [n for n, (_, _, h) in OFFICIAL.items() if not h])
def test_without_a_published_hash_the_sha256_got_is_recorded_and_printed(name, tmp_path):
    content = f"pretend {name}".encode()
    digest = hashlib.sha256(content).hexdigest()
    lines = []
    [result] = fetch_all([name], tmp_path, opener=_serving(content, []), report=lines.append)
    assert result.path == tmp_path / OFFICIAL[name][0] and result.sha256 == digest
    assert (tmp_path / f"{OFFICIAL[name][0]}.sha256").read_text().split()[0] == digest
    assert digest in lines[0] and "no published hash" in lines[0]


def test_arcface_gets_instructions_naming_where_to_put_the_file(tmp_path):
    lines = []
    assert fetch_all(["arcface_r100"], tmp_path, opener=_serving(b"", []),
                     report=lines.append) == []
    [line] = lines
    assert "cannot be downloaded by script" in line and "OneDrive" in line
    assert str(tmp_path / "ms1mv3_arcface_r100_fp16_backbone.pth") in line


def test_the_fetch_script_offers_every_type():
    completed = subprocess.run(
        [sys.executable, str(REPO / "workflow_scripts" / "fetch_weights.py"), "--help"],
        capture_output=True, text=True, check=True,
    )
    help_text = " ".join(completed.stdout.split())
    for name in (*OFFICIAL, "arcface_r100"):
        assert name in help_text
