"""Extractor type `inception`: the FID InceptionV3 (TensorFlow's 2015-12-05 graph).

The network every published FID number is computed with: pool3 features (2048-d) and the
graph's 1008 logits. Weights: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (or
torch-fidelity's copy) from the weights folder or the torch hub cache; not on PyPI. Network
and preprocessing: `fidlens.extractors.networks.inception`.
"""

from __future__ import annotations

from fidlens.extractors import ExtractorType, register
from fidlens.weight_specs import WeightsFile, WeightsSpec


@register
class Inception(ExtractorType):
    name = "inception"
    summary = "FID InceptionV3 (TF 2015-12-05 graph): pool3 features, 1008 logits"
    weights = WeightsSpec(
        extractor="inception",
        files=(
            # pytorch-fid's release file: known to hash to the prefix in its name.
            WeightsFile(
                "pt_inception-2015-12-05-6726825d.pth",
                made_by="pytorch-fid",
                sha256_prefix="6726825d",
                hash_verified=True,
            ),
            # torch-fidelity's file: same key layout and name suffix, probably the same bytes,
            # but not checked here.
            WeightsFile(
                "weights-inception-2015-12-05-6726825d.pth",
                made_by="torch-fidelity",
                sha256_prefix="6726825d",
                hash_verified=False,
            ),
        ),
        places=("{torch_home}/hub/checkpoints",),
        url=(
            "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
            "pt_inception-2015-12-05-6726825d.pth"
        ),
    )
    # clean (clean-fid's PIL bicubic), pytorch-fid (torch bilinear), torch-fidelity (TF1
    # bilinear): each reproduces that tool's resize to 299 (see networks/inception.py).
    preprocess_modes = ("clean", "pytorch-fid", "torch-fidelity")
    feature_layer = "pool3"
    feature_dim = 2048
    logits_dim = 1008
    outputs = {
        "logits_unbiased": "the 1008 logits without the last layer's bias (torch-fidelity's "
        "logits_unbiased, the Inception Score's default input)",
    }
    attention_layer = "Mixed_7c"  # 2048 x 8 x 8, the last spatial map before pool3

    @classmethod
    def build(cls, weights, preprocess, settings, files):
        from fidlens.extractors.networks.inception import load_inception

        return load_inception(weights, preprocess)
