"""Extractor type `arcface_r100`: ArcFace's iResNet-100, a 512-d face-identity embedding.

Seed paper 001's face extractor: insightface's `recognition/arcface_torch` r100 backbone
(`ms1mv3_arcface_r100_fp16/backbone.pth` of its model zoo). The model zoo links it only through
OneDrive / Baidu, so no script can download it and it has no standard place: give its path,
or put it into our weights folder as `ms1mv3_arcface_r100_fp16_backbone.pth`. Input: the
image resized to 112 x 112 (setting `align: none`, the default, as the seed-001 code does), or
aligned first with dlib's 5 face landmarks (`align: dlib`, which uses dlib's landmark model,
setting `landmarks`). Network (written here: no library ships it) and preprocessing:
`fidlens.extractors.networks.arcface`.
"""

from __future__ import annotations

import dataclasses

from fidlens.extractors import ExtractorType, register
from fidlens.extractors.dlib_face import DlibFace
from fidlens.weight_specs import WeightsFile, WeightsSpec

FILE_NAME = "ms1mv3_arcface_r100_fp16_backbone.pth"
MODEL_ZOO = "https://github.com/deepinsight/insightface/tree/master/recognition/arcface_torch"


@register
class ArcFaceR100(ExtractorType):
    name = "arcface_r100"
    summary = "ArcFace iResNet-100 (insightface arcface_torch, MS1MV3): 512-d face embedding"
    weights = WeightsSpec(
        extractor="arcface_r100",
        # insightface publishes no hash: a file is used as given, its sha256 recorded.
        files=(WeightsFile(FILE_NAME, made_by="insightface (arcface_torch model zoo)"),),
        manual_instructions=(
            f"insightface's model zoo ({MODEL_ZOO}, 'Model Zoo') links the file only through "
            "OneDrive and Baidu: download `ms1mv3_arcface_r100_fp16/backbone.pth` in a browser "
            f"and save it as {FILE_NAME}."
        ),
    )
    files = {
        # dlib's 5-landmark model, only for `align: dlib`.
        "landmarks": dataclasses.replace(DlibFace.files["landmarks"], extractor="arcface_r100"),
    }
    # Shorter side to 112 (PIL bilinear), centre crop 112, (x / 255 - 0.5) / 0.5.
    preprocess_modes = ("arcface",)
    feature_layer = "embedding"
    feature_dim = 512
    outputs = {
        "face_found": "align: dlib only: dlib's HOG detector found a face (else the whole "
        "image was aligned)",
    }
    attention_layer = "layer4"  # 512 x 7 x 7
    settings = {
        "align": {
            "description": "none: the image resized to 112 x 112 (face crops, as seed 001); "
            "dlib: aligned with dlib's 5 landmarks in the largest face its HOG detector finds",
            "enum": ["none", "dlib"],
            "default": "none",
        },
    }

    @classmethod
    def used_files(cls, settings):
        return ["landmarks"] if settings["align"] == "dlib" else []

    @classmethod
    def build(cls, weights, preprocess, settings, files):
        from fidlens.extractors.networks.arcface import load_arcface

        landmarks = files.get("landmarks")
        return load_arcface(
            weights, preprocess, settings["align"],
            str(landmarks.path) if landmarks is not None else None,
        )
