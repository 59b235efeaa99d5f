"""Grad-CAM of FID: where in an image the extractor's features move FID (seed 000 §4.1).

For an image with cached features f in a comparison (source = generated set, target = real
set), g = dFID/df is exact and closed-form (`fidlens.metrics.fid_gradient.FIDGradient`: the
image as the N-th member of the source set, its statistics updated as in seed 000 §4.1). g is
sent back through the network from its pooled output to the spatial activations A (K x h x w)
of the type's declared `attention_layer`, in one backward pass per batch (only the part of
the network after that layer is differentiated: the hook makes A a leaf), and

    alpha_k = mean_ij |dFID/dA^k_ij|     weighting `abs` (seed 000 §4.1, the default)
    alpha_k = mean_ij (dFID/dA^k_ij)^2   weighting `squared` (the seed-002 authors' code)
    map     = sum_k alpha_k A^k          (h x w; NO ReLU, as seed 000's formula: negative
                                          values are kept, unlike Selvaraju et al.'s Grad-CAM)

upsampled bilinearly (align_corners=False) onto the part of the image the network sees.

Transformer layers output tokens (B x T x C): the last h*w = T' tokens (the largest square
count, here 7 x 7, 16 x 16 or 24 x 24) are the patch grid in row-major order, the tokens before
them (class token, registers) are dropped, and C plays the role of K.

The network runs again on the decoded image (the extraction's decoding, working resolution and
preprocessing: read from the cache), and its pooled output must equal the cached row within
PARITY_TOLERANCE x max |cached row| (else an error naming the image and the cache): the map
then explains the very features the FID gradient was computed on. With `normalize: l2` the
FID is that of L2-normalised rows (seed 001's option); the normalisation runs inside the
graph (float64) so the gradient passes through it.

Images run in cache order in fixed batches [b*B, (b+1)*B), so maps are deterministic for a
given device and batch size. Influence: the exact FID of the source set without each image
(`FIDGradient.leave_one_out`), its change (without - with: negative = FID blames the image)
and |dFID/df|.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

# The maps' containers, files and placement live in attention_io (no torch, for the plots);
# re-exported here, where they have always been importable from.
from fidlens.attention_io import (  # noqa: F401
    INFLUENCE_COLUMNS,
    PAIR_RESULT_COLUMNS,
    AttentionResult,
    MapBatch,
    PairResult,
    average_maps,
    image_map,
    normalised,
    read_maps,
    read_pair_maps,
    upsample,
    write_influence,
    write_maps,
    write_pair_maps,
    write_pair_table,
)
from fidlens.cache import FeatureCache, read_features
from fidlens.datasets import ImageSource, decode_rgb, open_source, sha1_hex
from fidlens.extractors.base import Extractor
from fidlens.metrics import feature_statistics, l2_normalize
from fidlens.pairs import Pair
from fidlens.provenance import RANDOM_INIT, package_versions_json

log = logging.getLogger("fidlens")

WEIGHTINGS = ("abs", "squared")
NORMALIZATIONS = ("none", "l2")
LAYER_ARRAYS = {"pool": "features", "logits": "logits"}  # instance `layer` -> cached array
# Recomputed pooled features must equal the cached row within this x max |cached row|
# (the project's parity tolerance, ../shared/notes/clarifications.md).
PARITY_TOLERANCE = 1e-4
# The ramp probe of `input_region` resolves 1/255 of the image side; beyond this residual
# (px) the preprocessing is not an axis-aligned resize / crop and the whole image is used.
REGION_RESIDUAL_PX = 1.5


# ---------------------------------------------------------------- the maths of one batch


def attention_module(model: torch.nn.Module, layer: str) -> torch.nn.Module:
    """The extractor's attention layer by its declared name: inside `model.network` (the
    types that wrap a library network), else inside the extractor itself (inception).
    Raises ValueError naming the layer when neither has it."""
    for root in (getattr(model, "network", None), model):
        if isinstance(root, torch.nn.Module):
            try:
                return root.get_submodule(layer)
            except AttributeError:
                continue
    raise ValueError(
        f"{getattr(model, 'name', type(model).__name__)} has no layer {layer!r} (looked in "
        "its network and in the extractor)"
    )


def as_grid(activation: torch.Tensor) -> torch.Tensor:
    """Spatial activations as B x K x h x w: a conv map as it is; transformer tokens
    B x T x C as the patch grid (the last g*g tokens, g = isqrt(T), row-major), the leading
    T - g*g tokens (class token, registers) dropped. Raises ValueError for other shapes."""
    if activation.dim() == 4:
        return activation
    if activation.dim() == 3:
        tokens = activation.shape[1]
        side = math.isqrt(tokens)
        prefix = tokens - side * side
        if side < 1 or prefix > 2 * side:
            raise ValueError(f"{tokens} tokens do not hold a square patch grid")
        patches = activation[:, prefix:, :]
        return patches.transpose(1, 2).reshape(activation.shape[0], -1, side, side)
    raise ValueError(
        f"attention layer output of shape {tuple(activation.shape)} is neither B x K x h x w "
        "nor B x T x C tokens"
    )


def channel_weights(gradient: torch.Tensor, weighting: str = "abs") -> torch.Tensor:
    """alpha (B x K) from dFID/dA (B x K x h x w): mean over positions of |grad| (`abs`,
    seed 000 §4.1) or of grad^2 (`squared`, the seed-002 authors' code)."""
    if weighting == "abs":
        return gradient.abs().mean(dim=(2, 3))
    if weighting == "squared":
        return gradient.square().mean(dim=(2, 3))
    raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")


def combine(alpha: torch.Tensor, activation: torch.Tensor) -> torch.Tensor:
    """The map sum_k alpha_k A^k (B x h x w, float64) from alpha (B x K) and A (B x K x h x w);
    no ReLU (seed 000 §4.1)."""
    return torch.einsum("bk,bkhw->bhw", alpha.double(), activation.double())


def fid_space(values: torch.Tensor, normalize: str) -> torch.Tensor:
    """The features FID is computed on, inside the graph: as they are (`none`), or rows
    scaled to unit norm in float64 (`l2`; all-zero rows stay zero, as `l2_normalize`)."""
    if normalize == "none":
        return values
    if normalize == "l2":
        values = values.double()
        norms = values.norm(dim=1, keepdim=True)
        return values / torch.where(norms > 0, norms, torch.ones_like(norms))
    raise ValueError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, got {normalize!r}")


def gradcam_batch(
    model: Extractor,
    layer: torch.nn.Module,
    batch,
    gradients: np.ndarray,
    output: str = "features",
    normalize: str = "none",
    weighting: str = "abs",
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM maps of one batch for given output gradients.

    batch: the extractor's collated input (B images); gradients: (B, D) dFID/d(output row),
    the output in FID space (`fid_space`); layer: the module whose output is A.
    Returns (maps (B, h, w) float64, the network's `output` rows (B, D) float32, pre-FID-space)
    after one forward and one backward pass from the output to A. The parameters need no
    gradient (`prepare_for_attention`). Raises ValueError for a layer the output does not
    depend on, or outputs of the wrong shape.
    """
    kept = {}

    def keep_as_leaf(module, inputs, result):
        if not torch.is_tensor(result):
            raise ValueError(f"the attention layer returns {type(result).__name__}, not a tensor")
        leaf = result.detach().requires_grad_(True)
        kept["activation"] = leaf
        return leaf  # the rest of the network runs on the leaf: backward stops here

    handle = layer.register_forward_hook(keep_as_leaf)
    try:
        with torch.enable_grad():
            values = model(batch)[output]
            if values.dim() != 2 or tuple(values.shape) != tuple(gradients.shape):
                raise ValueError(
                    f"the network's {output!r} has shape {tuple(values.shape)}, the gradients "
                    f"{tuple(gradients.shape)}"
                )
            activation = kept.get("activation")
            if activation is None:
                raise ValueError("the attention layer did not run in the forward pass")
            if activation.shape[0] != values.shape[0]:
                raise ValueError(
                    f"the attention layer's output {tuple(activation.shape)} is not batch-first"
                )
            fid_features = fid_space(values, normalize)
            grad_outputs = torch.as_tensor(gradients, dtype=fid_features.dtype,
                                           device=fid_features.device)
            (gradient,) = torch.autograd.grad(fid_features, activation, grad_outputs=grad_outputs,
                                              allow_unused=False)
    finally:
        handle.remove()
    with torch.no_grad():
        grid, grid_gradient = as_grid(activation.detach()), as_grid(gradient)
        maps = combine(channel_weights(grid_gradient, weighting), grid)
    return maps.cpu().numpy(), values.detach().float().cpu().numpy()


def prepare_for_attention(model: Extractor, device: torch.device) -> Extractor:
    """The extractor on `device` in eval mode, its parameters needing no gradient (only the
    activations after the attention layer are differentiated)."""
    model = model.prepare(device)
    model.requires_grad_(False)
    return model


def check_parity(recomputed: np.ndarray, cached: np.ndarray, labels: Sequence[str],
                 cache_paths: Sequence[str]) -> None:
    """Each recomputed row must equal its cached row within PARITY_TOLERANCE x max |cached
    row|; else ValueError naming the image, its cache and the ratio."""
    for row, (ours, theirs) in enumerate(zip(recomputed, cached, strict=True)):
        scale = float(np.abs(theirs).max())
        ratio = float(np.abs(ours.astype(np.float64) - theirs).max()) / max(scale, 1e-30)
        if not np.isfinite(ratio) or ratio > PARITY_TOLERANCE:
            raise ValueError(
                f"{labels[row]}: the network's features differ from the cached row in "
                f"{cache_paths[row]} by {ratio:.3g} x max |feature| (tolerance "
                f"{PARITY_TOLERANCE:g}): "
                "the cache was made with other weights, preprocessing or resolution, or the "
                "image changed; rebuild the cache (snakemake reruns it when its inputs change)"
            )


# ---------------------------------------------------------------- where the map lies in the image


def input_region(preprocess: Callable, height: int, width: int) -> tuple[tuple[float, ...], bool]:
    """((top, left, height, width), exact) in image pixels: the part of an H x W image that
    the network's input covers after the extractor's preprocessing (a resize, a centre crop).

    Measured, not declared: three probe images (black, white, and R = x ramp, G = y ramp) go
    through `preprocess`; per channel the output is an affine function of the input (resize,
    then normalise), so the ramps give back the image coordinate each input pixel samples
    (exactly up to 256 px a side, to 1/255 of the side beyond). When the result is not an
    axis-aligned linear map (an aligning preprocessing), `exact` is False and the whole image
    is returned.
    """
    whole = (0.0, 0.0, float(height), float(width))
    ys, xs = np.mgrid[0:height, 0:width]
    ramp = np.zeros((height, width, 3), np.uint8)
    # Levels per pixel: an integer step where the side fits in 255 levels (then the ramp is
    # exactly linear), else 255 / (side - 1) rounded (exact to half a level).
    steps = [255 // (side - 1) if 1 < side <= 256 else 255 / max(side - 1, 1)
             for side in (width, height)]
    ramp[..., 0] = np.rint(steps[0] * xs)
    ramp[..., 1] = np.rint(steps[1] * ys)
    probes = [np.zeros_like(ramp), np.full_like(ramp, 255), ramp]
    try:
        black, white, coded = (np.asarray(preprocess(image), np.float64) for image in probes)
    except Exception:  # noqa: BLE001 - a preprocessing that cannot take the probes
        return whole, False
    if coded.ndim != 3 or coded.shape[0] < 2 or min(coded.shape[1:]) < 4:
        return whole, False
    span = (white - black)[:2].mean(axis=(1, 2))
    if np.any(np.abs(span) < 1e-12):
        return whole, False
    level = (coded[:2] - black[:2].mean(axis=(1, 2))[:, None, None]) / span[:, None, None]
    x_at = level[0] * 255 / steps[0] + 0.5  # continuous image coordinate of each input px
    y_at = level[1] * 255 / steps[1] + 0.5
    fitted = []
    for values, axis in ((x_at.mean(axis=0), 1), (y_at.mean(axis=1), 0)):
        n = len(values)
        inner = np.arange(n // 8, n - n // 8)
        slope, offset = np.polyfit(inner, values[inner], 1)
        residual = np.abs(np.polyval((slope, offset), inner) - values[inner]).max()
        across = (x_at if axis == 1 else y_at.T)[:, inner].std(axis=0).max()
        if slope <= 0 or residual > REGION_RESIDUAL_PX or across > REGION_RESIDUAL_PX:
            return whole, False
        fitted.append((offset - slope / 2, slope * n))  # edge of the first px, extent
    (left, region_width), (top, region_height) = fitted
    return (float(top), float(left), float(region_height), float(region_width)), True


# ---------------------------------------------------------------- images through the network


@dataclass(frozen=True)
class ImageRef:
    """One image to map: its dataset, path, expected content hash, cached row (raw, for the
    parity check), and how the extraction decoded it."""

    source: ImageSource
    relpath: str
    sha1: str | None
    cached: np.ndarray  # (D,) the cached row of the instance's layer
    cache_path: str
    resolution: int | None
    max_pixels: int
    label: str


class _Decoded(torch.utils.data.Dataset):
    def __init__(self, refs: Sequence[ImageRef], preprocess):
        self.refs, self.preprocess = refs, preprocess

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, index: int):
        ref = self.refs[index]
        data = ref.source.read_bytes(ref.relpath)
        if ref.sha1 is not None and sha1_hex(data) != ref.sha1:
            raise ValueError(
                f"{ref.label}: the image changed after {ref.cache_path} was made (its sha1 is "
                "not the cached one); rebuild the cache"
            )
        image = decode_rgb(data, ref.resolution, ref.max_pixels)
        prepared = self.preprocess(image)
        if isinstance(prepared, torch.Tensor):
            prepared = prepared.numpy()
        return index, prepared, image.shape[:2]


def _keep_list(batch):
    return batch


def gradcam_images(
    model: Extractor,
    refs: Sequence[ImageRef],
    gradients: Callable[[np.ndarray], np.ndarray],
    *,
    layer: str,
    output: str = "features",
    normalize: str = "none",
    weighting: str = "abs",
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    workers: int = 0,
    progress: bool = True,
    desc: str = "attention",
) -> MapBatch:
    """Grad-CAM maps of `refs`, in their order, in fixed batches of `batch_size`.

    gradients(indices) -> (len(indices), D) float64 dFID/df of those refs (in FID space).
    Each batch is decoded as the extraction decoded it, run forward, checked against the
    cached rows (`check_parity`), and sent back once. Raises ValueError for an image that
    changed or whose features differ from the cache; BadImageError for one that no longer
    decodes.
    """
    device = torch.device(device)
    module = attention_module(model, layer)
    preprocess = model.preprocessor()
    loader = torch.utils.data.DataLoader(
        _Decoded(refs, preprocess),
        batch_sampler=[list(range(start, min(start + batch_size, len(refs))))
                       for start in range(0, len(refs), batch_size)],
        num_workers=workers,
        collate_fn=_keep_list,
    )
    grids, sizes, regions, exact = [], [], [], []
    region_of: dict[tuple[int, int], tuple[tuple[float, ...], bool]] = {}
    bar = tqdm(total=len(refs), desc=desc, unit="img", disable=not progress, file=sys.stderr,
               mininterval=2.0)
    for items in loader:
        indices = np.array([item[0] for item in items])
        batch = model.collate([item[1] for item in items], device)
        maps, values = gradcam_batch(model, module, batch, gradients(indices), output,
                                     normalize, weighting)
        check_parity(values, np.stack([refs[i].cached for i in indices]),
                     [refs[i].label for i in indices], [refs[i].cache_path for i in indices])
        grids.append(maps)
        for item in items:
            size = tuple(int(v) for v in item[2])
            if size not in region_of:
                region_of[size] = input_region(preprocess, *size)
                if not region_of[size][1]:
                    log.warning("%s: the preprocessing of %s x %s images is no axis-aligned "
                                "resize or crop; maps are drawn over the whole image",
                                model.name, *size)
            sizes.append(size)
            regions.append(region_of[size][0])
            exact.append(region_of[size][1])
        bar.update(len(items))
    bar.close()
    if not grids:
        raise ValueError("no images to map")
    return MapBatch(np.concatenate(grids), np.array(sizes, np.int64),
                    np.array(regions, np.float64), np.array(exact, bool))


# ---------------------------------------------------------------- one comparison


@dataclass(frozen=True)
class AttentionSettings:
    weighting: str = "abs"
    normalize: str = "none"
    layer: str = "pool"  # the instance's `layer`: the cached array FID is computed on
    batch_size: int = 16
    device: str = "auto"
    allow_tf32: bool = False
    workers: int = 0

    def __post_init__(self):
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, "
                             f"got {self.weighting!r}")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, "
                             f"got {self.normalize!r}")
        if self.layer not in LAYER_ARRAYS:
            raise ValueError(f"layer must be pool or logits, got {self.layer!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")


@dataclass
class Side:
    """One dataset of a comparison: its cache, the rows FID uses, and their statistics."""

    name: str
    cache_path: str
    cache: FeatureCache
    cached: np.ndarray  # (N, D) float32: the cached array of the instance's layer, as stored
    rows: np.ndarray  # (N, D) float64 in FID space: `cached`, or its L2-normalised rows
    mean: np.ndarray | None  # (D,) of `rows`
    covariance: np.ndarray | None  # (D, D) unbiased, of `rows`

    @property
    def n(self) -> int:
        return len(self.rows)

    _rows_by_path: dict | None = field(default=None, init=False, repr=False)

    def index_of(self, relpath: str) -> int | None:
        """The row of an image (its path relative to the dataset), None if not cached."""
        if self._rows_by_path is None:
            self._rows_by_path = {path: i for i, path in enumerate(self.cache.paths)}
        return self._rows_by_path.get(relpath)


def read_side(name: str, cache_path, statistics_path, settings: AttentionSettings,
              statistics: bool = True) -> Side:
    """A dataset's cached layer and the statistics FID uses: the statistics file's (raw
    features, `normalize: none`) or those of the L2-normalised rows computed here
    (`fidlens.metrics.feature_statistics`); with `statistics=False` only the rows (mean and
    covariance None). Raises ValueError for a cache without per-row paths or the layer's
    array, or a statistics file not made from this cache."""
    from fidlens.statistics import read_statistics

    cache = read_features(cache_path, with_logits=settings.layer == "logits")
    cached = cache.features if settings.layer == "pool" else cache.logits
    if cached is None:
        raise ValueError(f"{cache_path} has no 'logits': layer logits needs a classifier cache")
    if cache.paths is None or len(cache.paths) != len(cached):
        raise ValueError(f"{cache_path} lists no image path per row: not a fidlens cache")
    cached = np.asarray(cached, np.float32)
    if not statistics:
        rows = l2_normalize(cached) if settings.normalize == "l2" else cached.astype(np.float64)
        return Side(name, str(cache_path), cache, cached, rows, None, None)
    if settings.normalize == "l2":
        rows = l2_normalize(cached)
        mean, covariance = feature_statistics(rows)
    else:
        rows = cached.astype(np.float64)
        stats = read_statistics(statistics_path)
        if stats.n != len(rows) or stats.layer != settings.layer or stats.dim != rows.shape[1]:
            raise ValueError(
                f"{statistics_path} (n {stats.n}, layer {stats.layer}, D {stats.dim}) was not "
                f"made from {cache_path} (n {len(rows)}, layer {settings.layer}, D "
                f"{rows.shape[1]}); rebuild it"
            )
        mean, covariance = stats.mean, stats.covariance
    return Side(name, str(cache_path), cache, cached, rows, mean, covariance)


def fid_gradient_of(source: Side, target: Side):
    """The comparison's FIDGradient (one factorisation; O(D^2) per image afterwards)."""
    from fidlens.metrics.fid_gradient import FIDGradient

    return FIDGradient(target.mean, target.covariance, source.mean, source.covariance, source.n)


def image_refs(
    side: Side, images: str | Path, indices: Sequence[int] | None = None
) -> list[ImageRef]:
    """ImageRefs of a side's rows (all, or `indices`), decoded as its cache records (the
    working resolution and pixel limit of the extraction)."""
    from fidlens.datasets import DEFAULT_MAX_PIXELS

    attrs = side.cache.attrs
    resolution = attrs.get("resolution", "native")
    resolution = None if resolution in (None, "native") else int(resolution)
    max_pixels = int(attrs.get("max_image_pixels", DEFAULT_MAX_PIXELS))
    source = open_source(images, side.name, include_hidden=True)
    sha1 = side.cache.sha1
    return [
        ImageRef(
            source=source,
            relpath=side.cache.paths[i],
            sha1=sha1[i] if sha1 is not None else None,
            cached=side.cached[i],
            cache_path=side.cache_path,
            resolution=resolution,
            max_pixels=max_pixels,
            label=f"{side.name}/{side.cache.paths[i]}",
        )
        for i in (range(side.n) if indices is None else indices)
    ]


def attention_layer_of(model: Extractor) -> str:
    """The built extractor's declared attention layer; ValueError when it has none."""
    layer = model.declared.get("attention_layer")
    if not layer or layer == "none" or not model.declared.get("has_gradients", True):
        raise ValueError(
            f"extractor {model.name!r} ({model.type_name}) declares no attention layer with "
            "gradients: attention maps need a torch network (attention_layer, has_gradients)"
        )
    return layer


def check_same_extractor(model: Extractor, side: Side) -> None:
    """The built extractor must be the one that made the cache (type, weights, preprocessing);
    else ValueError naming the cache and both values."""
    ours = model.provenance()
    for key in ("extractor_type", "weights_sha256", "preprocess"):
        theirs = side.cache.attrs.get(key)
        if theirs is not None and str(theirs) != str(ours.get(key)):
            raise ValueError(
                f"{side.cache_path} was made with {key} {theirs!r}, the extractor built now has "
                f"{ours.get(key)!r}: rebuild the cache or fix the extractor's settings"
            )


def attention_provenance(model: Extractor, source: Side, target: Side,
                         settings: AttentionSettings, device, fid: float) -> dict:
    """What an attention output records: the extractor and its weights (`weights`:
    pretrained or random-init, and `random_init`), the layer, the settings, the comparison,
    its FID, the caches and the package versions."""
    extractor = {key: value for key, value in model.provenance().items()
                 if isinstance(value, (str, bool))}
    return {
        **extractor,
        "random_init": extractor.get("weights") == RANDOM_INIT,
        "attention_layer": attention_layer_of(model),
        "layer": settings.layer,
        "weighting": settings.weighting,
        "normalize": settings.normalize,
        "relu": False,
        "upsampling": "bilinear (align_corners=False) onto the part of the image the network sees",
        "comparison": f"{source.name}__{target.name}",
        "source": source.name,
        "target": target.name,
        "n_source": int(source.n),
        "n_target": int(target.n),
        "fid": float(fid),
        "source_cache": source.cache_path,
        "target_cache": target.cache_path,
        "batch_size": int(settings.batch_size),
        "device": str(device),
        "resolution": str(source.cache.attrs.get("resolution", "native")),
        "package_versions": package_versions_json(),
    }


# ---------------------------------------------------------------- a comparison's maps and influence


LEAVE_ONE_OUT_CHUNK = 256


def comparison_attention(
    model: Extractor,
    source: Side,
    target: Side,
    images: str | Path,
    settings: AttentionSettings,
    device: torch.device,
    progress: bool = True,
    gradient=None,
) -> AttentionResult:
    """Maps of every source image (cache order) with its exact FID gradient re-added as the
    N-th image, and each image's leave-one-out FID. `model` is ready (`prepare_for_attention`);
    `gradient`: the comparison's FIDGradient if already made (else made here)."""
    check_same_extractor(model, source)
    gradient = gradient or fid_gradient_of(source, target)
    norms = np.zeros(source.n)

    def member_gradients(indices):
        values = gradient.member_gradients(source.rows[indices])
        norms[indices] = np.linalg.norm(values, axis=1)
        return values

    maps = gradcam_images(
        model, image_refs(source, images), member_gradients, layer=attention_layer_of(model),
        output=LAYER_ARRAYS[settings.layer], normalize=settings.normalize,
        weighting=settings.weighting, batch_size=settings.batch_size, device=device,
        workers=settings.workers, progress=progress,
        desc=f"{model.name} {source.name}->{target.name}",
    )
    without = np.concatenate([
        gradient.leave_one_out(source.rows[start:start + LEAVE_ONE_OUT_CHUNK])
        for start in range(0, source.n, LEAVE_ONE_OUT_CHUNK)
    ])
    attrs = attention_provenance(model, source, target, settings, device, gradient.fid)
    return AttentionResult(list(source.cache.paths), maps, norms, without, float(gradient.fid),
                           attrs)


# ---------------------------------------------------------------- good/bad pairs


def pair_attention(
    model: Extractor,
    pairs: Sequence[Pair],
    source: Side,
    target: Side,
    good_sides: dict[str, Side],
    images: dict[str, str],
    settings: AttentionSettings,
    device: torch.device,
    pair_file: str = "pair file",
    progress: bool = True,
    gradient=None,
) -> PairResult:
    """Maps of each pair's bad image (a member of `source`, from `member_gradients`) and its
    good image (from `FIDGradient.swapped`: the good image in the bad one's place), and the
    FID of each swapped set. `good_sides`: the caches of the good images' datasets;
    `images`: dataset name -> folder or zip; `gradient`: the comparison's FIDGradient if
    already made. Raises ValueError naming the pair file's line for a pair whose bad image is
    not in `source` or whose images are not in their caches (left out as bad images or by
    the extractor), before any computation."""
    check_same_extractor(model, source)
    if not pairs:
        raise ValueError(f"{pair_file}: no pair has its bad image in {source.name!r}")
    rows = []  # (bad row, good side, good row) per pair
    for pair in pairs:
        where = f"{pair_file} line {pair.row}"
        if pair.bad_dataset != source.name:
            raise ValueError(f"{where}: bad_dataset {pair.bad_dataset!r} is not {source.name!r}")
        good_side = good_sides.get(pair.good_dataset)
        if good_side is None or pair.good_dataset not in images:
            raise ValueError(f"{where}: no cache or images of good_dataset "
                             f"{pair.good_dataset!r} given")
        bad, good = source.index_of(pair.bad_path), good_side.index_of(pair.good_path)
        for role, index, side, relpath in (("bad", bad, source, pair.bad_path),
                                           ("good", good, good_side, pair.good_path)):
            if index is None:
                raise ValueError(
                    f"{where}: {role} image {relpath!r} has no row in {side.cache_path} (not in "
                    "the dataset, or left out as a bad image or by the extractor)"
                )
        rows.append((bad, good_side, good))
    for side in {id(side): side for _, side, _ in rows}.values():
        check_same_extractor(model, side)
    gradient = gradient or fid_gradient_of(source, target)
    swapped, good_grads = zip(*(gradient.swapped(source.rows[bad], side.rows[good])
                                for bad, side, good in rows), strict=True)
    good_grads = np.stack(good_grads)
    bad_rows = [bad for bad, _, _ in rows]
    bad_grads = gradient.member_gradients(source.rows[bad_rows])
    bad_refs = image_refs(source, images[source.name], bad_rows)
    good_refs = []
    for name in dict.fromkeys(pair.good_dataset for pair in pairs):  # one listing per dataset
        chosen = [i for i, pair in enumerate(pairs) if pair.good_dataset == name]
        refs = image_refs(rows[chosen[0]][1], images[name], [rows[i][2] for i in chosen])
        good_refs += list(zip(chosen, refs, strict=True))
    good_refs = [ref for _, ref in sorted(good_refs, key=lambda item: item[0])]
    common = dict(layer=attention_layer_of(model), output=LAYER_ARRAYS[settings.layer],
                  normalize=settings.normalize, weighting=settings.weighting,
                  batch_size=settings.batch_size, device=device, workers=settings.workers,
                  progress=progress)
    good = gradcam_images(model, good_refs, lambda idx: good_grads[idx],
                          desc=f"{model.name} good images", **common)
    bad = gradcam_images(model, bad_refs, lambda idx: bad_grads[idx],
                         desc=f"{model.name} bad images", **common)
    attrs = attention_provenance(model, source, target, settings, device, gradient.fid)
    attrs["pair_file"] = str(pair_file)
    return PairResult(list(pairs), good, bad, float(gradient.fid), np.array(swapped),
                      np.linalg.norm(good_grads, axis=1), np.linalg.norm(bad_grads, axis=1),
                      attrs)


# ---------------------------------------------------------------- entry points: paths in, files out


def build_for_attention(extractor: dict, settings: AttentionSettings) -> tuple[Extractor,
                                                                              torch.device]:
    """The extractor built through the registry (`extractor`: the keyword arguments of
    `fidlens.extractors.build_extractor`, `type_name` included) on its device (a free GPU
    when there is one and `device` allows, else the CPU), ready for attention."""
    from fidlens.extract import resolve_device, set_exact_numerics
    from fidlens.extractors import build_extractor

    model = build_extractor(**extractor)
    attention_layer_of(model)
    if model.cpu_only:
        raise ValueError(f"extractor {model.name!r} runs outside torch: no attention maps")
    device = resolve_device(settings.device)
    set_exact_numerics(device, settings.allow_tf32)
    return prepare_for_attention(model, device), device


def run_maps(
    extractor: dict,
    source: tuple[str, str, str | None, str],
    target: tuple[str, str, str | None],
    settings: AttentionSettings,
    out: str | Path,
    influence: str | Path,
    progress: bool = True,
) -> AttentionResult:
    """One (extractor, comparison): source = (name, cache, statistics file, images folder or
    zip), target = (name, cache, statistics file); the statistics files are read for raw
    features (`normalize: none`) and not needed for L2. Writes the maps' HDF5 (`write_maps`)
    and the influence CSV (`write_influence`)."""
    model, device = build_for_attention(extractor, settings)
    name, cache, statistics, images = source
    source_side = read_side(name, cache, statistics, settings)
    target_side = read_side(*target, settings)
    result = comparison_attention(model, source_side, target_side, images, settings, device,
                                  progress)
    write_maps(out, result)
    write_influence(influence, result)
    return result


def run_pairs(
    extractor: dict,
    pairs_file: str | Path,
    source: tuple[str, str, str | None],
    target: tuple[str, str, str | None],
    good_caches: dict[str, str],
    images: dict[str, str],
    settings: AttentionSettings,
    out: str | Path,
    table: str | Path,
    progress: bool = True,
) -> PairResult:
    """The pairs of `pairs_file` whose bad image is in the comparison's source set: maps and
    swap FIDs (`pair_attention`), written as the pairs' HDF5 and CSV. good_caches: dataset
    name -> its cache; images: dataset name -> folder or zip (the source's and the good
    datasets'). Raises ValueError (with the file and line) for a bad pair file."""
    from fidlens.pairs import pairs_of_source, read_pairs

    chosen = pairs_of_source(read_pairs(pairs_file), source[0])
    model, device = build_for_attention(extractor, settings)
    source_side = read_side(*source, settings)
    target_side = read_side(*target, settings)
    goods = {}
    for name in sorted({pair.good_dataset for pair in chosen}):
        if name not in good_caches or name not in images:
            raise ValueError(f"{pairs_file}: no cache or images given for good_dataset {name!r}")
        goods[name] = (source_side if name == source_side.name else
                       read_side(name, good_caches[name], None, settings, statistics=False))
    result = pair_attention(model, chosen, source_side, target_side, goods, images, settings,
                            device, str(pairs_file), progress)
    write_pair_maps(out, result)
    write_pair_table(table, result)
    return result
