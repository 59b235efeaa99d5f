"""Extractor types `clip_vitb32` and `clip_vitl14_336`: OpenAI's CLIP image encoders.

`clip_vitb32`: ViT-B/32, 224 px input, the 512-d projected image embedding (seed paper 001's
CLIP, and the CLIP of "CLIP-FID" in torch-fidelity and clean-fid). `clip_vitl14_336`:
ViT-L/14 at 336 px, the 768-d embedding: the network of CMMD's official definition. Weights:
OpenAI's own files (`ViT-B-32.pt`, `ViT-L-14-336px.pt`; TorchScript archives, whose URLs
embed their full sha256), found in our weights folder, OpenAI's client cache `~/.cache/clip/`
or torch-fidelity's cache. open_clip builds the network; network and preprocessing:
`fidlens.extractors.networks.clip`.
"""

from __future__ import annotations

from fidlens.extractors import ExtractorType, register
from fidlens.weight_specs import WeightsFile, WeightsSpec

TYPES = ("clip_vitb32", "clip_vitl14_336")

_OPENAI_URL = "https://openaipublic.azureedge.net/clip/models/{sha256}/{name}"


def _openai_spec(type_name: str, name: str, sha256: str, torch_fidelity_name: str):
    return WeightsSpec(
        extractor=type_name,
        files=(
            # OpenAI's file: its URL embeds the full sha256, which is checked.
            WeightsFile(name, made_by="OpenAI (openai/CLIP)", sha256=sha256, hash_verified=True),
            # torch-fidelity downloads the same URL with check_hash=True under this name.
            WeightsFile(f"{torch_fidelity_name}-{sha256}.pt", made_by="torch-fidelity",
                        sha256=sha256, hash_verified=True),
        ),
        places=("{home}/.cache/clip", "{torch_home}/hub/checkpoints"),
        url=_OPENAI_URL.format(sha256=sha256, name=name),
    )


class _Clip(ExtractorType):
    """What both CLIP variants share; `build` imports open_clip."""

    preprocess_modes = ("openai",)  # bicubic shorter side, centre crop, CLIP mean / std
    feature_layer = "embedding"

    @classmethod
    def build(cls, weights, preprocess, settings, files):
        from fidlens.extractors.networks.clip import load_clip

        return load_clip(cls.name, weights, preprocess)


@register
class ClipViTB32(_Clip):
    name = "clip_vitb32"
    summary = "OpenAI CLIP ViT-B/32: 512-d projected image embedding (224 px)"
    weights = _openai_spec(
        "clip_vitb32",
        "ViT-B-32.pt",
        "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
        "clip-vit-b-32",
    )
    feature_dim = 512
    attention_layer = "transformer.resblocks.10"  # the block before the last; 7 x 7 tokens


@register
class ClipViTL14At336(_Clip):
    name = "clip_vitl14_336"
    summary = "OpenAI CLIP ViT-L/14 at 336 px: 768-d projected image embedding (CMMD's)"
    weights = _openai_spec(
        "clip_vitl14_336",
        "ViT-L-14-336px.pt",
        "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
        "clip-vit-l-14-336px",
    )
    feature_dim = 768
    attention_layer = "transformer.resblocks.22"  # the block before the last; 24 x 24 tokens
