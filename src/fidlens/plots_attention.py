"""Pictures of FID attention, from the maps' HDF5 files (fidlens.attention) and the images.

Per image: a heatmap PNG and an overlay PNG at exactly the image's size (pixels, no axes:
images, not figures), the map min-max scaled per image and coloured with viridis (dark blue
to yellow, as seed 001's Fig. 2; it prints as a monotone grey ramp), overlays over the
image's grey levels; where the network does not look (outside a centre crop) the heatmap is
mid-grey and the overlay shows the image dimmed. Figures (matplotlib, Agg): contact sheets
of overlays, the influence sheet (the images FID blames most and least, the FID change under
each), the good/bad pair sheet, and the averaged map of a comparison, one panel per
extractor (seed 001 Fig. 2: the raw averaged map with a colour bar, and its overlay on a
sample image). Titles name the extractor, its weights (random-init marked), the comparison
and the settings.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from PIL import Image  # noqa: E402

from fidlens.attention_io import image_map, normalised  # noqa: E402
from fidlens.datasets import ImageSource, decode_rgb  # noqa: E402
from fidlens.files import atomic_path  # noqa: E402
from fidlens.provenance import RANDOM_INIT  # noqa: E402

CMAP = "viridis"
ALPHA = 0.55  # weight of the colour in an overlay (over the image in grey levels)
OUTSIDE_GREY = 128  # heatmap pixels the network does not see
OUTSIDE_DIM = 0.6  # overlay: brightness of the image where the network does not look
DPI = 130
ATTENTION_LABEL = "FID attention (each map min-max scaled)"


# ---------------------------------------------------------------- per-image pictures


def colourise(values: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] (NaN: not seen) -> H x W x 3 uint8 viridis, NaN mid-grey."""
    rgb = colormaps[CMAP](np.nan_to_num(np.clip(values, 0, 1)))[..., :3]
    rgb = np.rint(rgb * 255).astype(np.uint8)
    rgb[np.isnan(values)] = OUTSIDE_GREY
    return rgb


def scaled_image_map(grid: np.ndarray, image_size, region) -> np.ndarray:
    """The map on the image (H, W), min-max scaled to [0, 1] over the grid, NaN outside the
    region the network sees."""
    return image_map(normalised(np.asarray(grid)[None])[0], image_size, region).clip(0, 1)


def heatmap_rgb(grid: np.ndarray, image_size, region) -> np.ndarray:
    """H x W x 3 uint8: the map upsampled onto the image's frame, coloured."""
    return colourise(scaled_image_map(grid, image_size, region))


def overlay_rgb(image: np.ndarray, grid: np.ndarray, region, alpha: float = ALPHA) -> np.ndarray:
    """The image (H x W x 3 uint8) in grey levels with the coloured map blended in (weight
    `alpha`); where the network does not look, the image in its colours, dimmed."""
    values = scaled_image_map(grid, image.shape[:2], region)
    colour = colourise(values).astype(np.float64)
    picture = image.astype(np.float64)
    # The colours over the image's grey levels: the map stays readable on colourful images.
    grey = (picture @ np.array([0.299, 0.587, 0.114]))[..., None]
    blended = (1 - alpha) * grey + alpha * colour
    outside = np.isnan(values)
    blended[outside] = OUTSIDE_DIM * picture[outside]
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def save_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """An RGB array as a PNG of exactly its size, written atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")


def png_name(relpath: str) -> str:
    """Where an image's PNG goes, relative to a folder: its own path, `.png` appended unless
    it ends so (a.jpg -> a.jpg.png, b.png -> b.png), so no two images share a name."""
    return relpath if relpath.lower().endswith(".png") else relpath + ".png"


def load_image(source: ImageSource, relpath: str, image_size) -> np.ndarray:
    """An image decoded as the extraction decoded it: native, or resized to the recorded
    square working resolution (PIL bicubic, as `decode_rgb`)."""
    data = source.read_bytes(relpath)
    image = decode_rgb(data)
    height, width = (int(v) for v in image_size)
    if image.shape[:2] != (height, width):
        image = decode_rgb(data, height)
    return image


def sample_indices(n: int, sample: int | str) -> np.ndarray:
    """Which of n images get their own PNGs: `all`, or k spread evenly over the cache order
    (first and last included); k >= n is all."""
    if sample == "all" or int(sample) >= n:
        return np.arange(n)
    k = int(sample)
    if k <= 0:
        return np.arange(0)
    if k == 1:
        return np.array([0])
    return np.unique(np.rint(np.linspace(0, n - 1, k)).astype(np.int64))


# ---------------------------------------------------------------- figures


def describe(attrs: dict) -> str:
    """'inception (random-init)' or 'mobilenet_v2_imagenet': the extractor and its weights."""
    random_init = attrs.get("weights") == RANDOM_INIT or attrs.get("random_init") is True
    return str(attrs.get("extractor", "?")) + (" (random-init)" if random_init else "")


def settings_line(attrs: dict) -> str:
    normalize = "L2-normalised features" if attrs.get("normalize") == "l2" else "raw features"
    return (f"layer {attrs.get('attention_layer', '?')}, weighting {attrs.get('weighting', '?')}, "
            f"{normalize}, no ReLU")


@dataclass
class Tile:
    picture: np.ndarray  # H x W x 3 uint8
    caption: str


def _wrap(title: str, width_in: float) -> str:
    """The title's lines wrapped to the figure's width (about 9 characters an inch at 11 pt)."""
    width = max(30, int(width_in * 9))
    return "\n".join(textwrap.fill(line, width) for line in title.splitlines())


def _save(figure, path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=DPI, format="png")
    plt.close(figure)


def _colour_bar(figure, axes, label: str = ATTENTION_LABEL) -> None:
    mappable = ScalarMappable(norm=Normalize(0, 1), cmap=CMAP)
    bar = figure.colorbar(mappable, ax=axes, fraction=0.025, pad=0.02)
    bar.set_label(label)


def sheet_figure(
    path, sections: Sequence[tuple[str, Sequence[Tile]]], title: str, columns: int = 8
) -> None:
    """A contact sheet: each section a heading and rows of tiles, a caption under each tile,
    one colour bar for the attention scale."""
    columns = max(1, min(columns, max((len(tiles) for _, tiles in sections), default=1)))
    rows_of = [max(1, math.ceil(len(tiles) / columns)) for _, tiles in sections]
    total = sum(rows_of)
    width = max(7.5, 1.7 * columns + 0.9)
    figure = plt.figure(figsize=(width, 2.0 * total + 0.6 * len(sections) + 0.9),
                        layout="constrained")
    figure.suptitle(_wrap(title, width), fontsize=11)
    tiles_part, bar_part = figure.subfigures(1, 2, width_ratios=[width - 0.9, 0.9])
    subfigures = tiles_part.subfigures(len(sections), 1, height_ratios=rows_of, squeeze=False)
    for subfigure, (heading, tiles), rows in zip(subfigures[:, 0], sections, rows_of,
                                                 strict=True):
        if heading:
            subfigure.suptitle(heading, fontsize=10, x=0.01, ha="left")
        axes = subfigure.subplots(rows, columns, squeeze=False)
        for index, ax in enumerate(axes.flat):
            ax.set_axis_off()
            if index < len(tiles):
                ax.imshow(tiles[index].picture, interpolation="nearest")
                ax.text(0.5, -0.03, tiles[index].caption, transform=ax.transAxes, ha="center",
                        va="top", fontsize=7)
        if not tiles:
            axes.flat[0].text(0.5, 0.5, "none", ha="center", va="center",
                              transform=axes.flat[0].transAxes)
    bar = figure.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=CMAP),
                          cax=bar_part.add_axes((0.15, 0.1, 0.25, 0.8)))
    bar.set_label(ATTENTION_LABEL)
    _save(figure, path)


def pair_figure(path, pairs: Sequence[tuple[Tile, Tile]], title: str, columns: int = 8) -> None:
    """Good/bad pairs (seed 000 Figs. 5-8): each pair a column, the good image above its bad
    twin, both overlaid with their FID attention, the captions under each."""
    columns = max(1, min(columns, len(pairs)))
    blocks = max(1, math.ceil(len(pairs) / columns))
    width = max(7.5, 1.8 * columns + 1.4)
    figure, axes = plt.subplots(2 * blocks, columns, squeeze=False, layout="constrained",
                                figsize=(width, 4.1 * blocks + 1.2))
    figure.suptitle(_wrap(title, width), fontsize=11)
    for ax in axes.flat:
        ax.set_axis_off()
    for index, (good, bad) in enumerate(pairs):
        block, column = divmod(index, columns)
        for offset, tile in enumerate((good, bad)):
            ax = axes[2 * block + offset, column]
            ax.imshow(tile.picture, interpolation="nearest")
            ax.text(0.5, -0.03, tile.caption, transform=ax.transAxes, ha="center", va="top",
                    fontsize=7)
        if column == 0:
            axes[2 * block, 0].text(-0.08, 0.5, "good", rotation=90, transform=axes[
                2 * block, 0].transAxes, ha="right", va="center", fontsize=9)
            axes[2 * block + 1, 0].text(-0.08, 0.5, "bad", rotation=90, transform=axes[
                2 * block + 1, 0].transAxes, ha="right", va="center", fontsize=9)
    _colour_bar(figure, list(axes.flat))
    _save(figure, path)


@dataclass
class AveragePanel:
    label: str  # extractor (and random-init)
    layer: str
    fid: float
    mean_grid: np.ndarray  # (h, w): the averaged map
    image: np.ndarray | None  # a sample image, H x W x 3 uint8
    region: Sequence[float] | None


def average_figure(path, panels: Sequence[AveragePanel], title: str) -> None:
    """Seed 001 Fig. 2: one row, per extractor its raw averaged map (grid resolution, its own
    colour bar) and that map's overlay on a sample image."""
    width = max(7.5, 3.3 * 2 * len(panels) + 0.5)
    figure, axes = plt.subplots(1, 2 * len(panels), squeeze=False, layout="constrained",
                                figsize=(width, 4.1))
    figure.suptitle(_wrap(title, width), fontsize=11)
    for index, panel in enumerate(panels):
        raw, over = axes[0, 2 * index], axes[0, 2 * index + 1]
        h, w = panel.mean_grid.shape
        shown = raw.imshow(panel.mean_grid, cmap=CMAP, interpolation="nearest")
        raw.set_title(f"{panel.label}, FID {panel.fid:.4g}\naveraged map, {h} x {w} "
                      f"({panel.layer})", fontsize=9)
        raw.set_xlabel("grid column")
        raw.set_ylabel("grid row")
        bar = figure.colorbar(shown, ax=raw, fraction=0.046, pad=0.03)
        bar.set_label("mean of min-max scaled maps")
        if panel.image is not None:
            over.imshow(overlay_rgb(panel.image, panel.mean_grid, panel.region))
            over.set_title(f"{panel.label}\noverlay on a sample image", fontsize=9)
            over.set_xlabel("x (px)")
            over.set_ylabel("y (px)")
        else:
            over.set_axis_off()
    _save(figure, path)


def write_image_pngs(folder: str | os.PathLike, relpath: str, rgb: np.ndarray) -> Path:
    """Save one per-image PNG under `folder` (its subfolders made), return its path."""
    target = Path(folder) / png_name(relpath)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_png(target, rgb)
    return target


# ---------------------------------------------------------------- from the maps' files


def _comparison_title(attrs: dict) -> str:
    return (f"{attrs.get('source', '?')} → {attrs.get('target', '?')}: FID "
            f"{float(attrs.get('fid', np.nan)):.4g}")


def draw_comparison(
    maps_path,
    images,
    *,
    sample: int | str = 16,
    top_k: int = 8,
    heatmaps: str | os.PathLike,
    overlays: str | os.PathLike,
    average: str | os.PathLike,
    sheet: str | os.PathLike,
    influence: str | os.PathLike,
    progress: bool = True,
) -> dict[str, int]:
    """Every picture of one (extractor, comparison) from its maps file and the source
    images: per-image heatmap and overlay PNGs of the sample, the averaged map, the contact
    sheet of the sample's overlays and the influence sheet (top and bottom `top_k`).
    Returns counts of what was drawn."""
    from tqdm import tqdm

    from fidlens.attention_io import read_maps
    from fidlens.datasets import open_source

    result = read_maps(maps_path)
    attrs, maps = result.attrs, result.maps
    source = open_source(images, attrs.get("source"), include_hidden=True)
    n = len(result.paths)
    chosen = sample_indices(n, sample)
    for folder in (heatmaps, overlays):
        Path(folder).mkdir(parents=True, exist_ok=True)
    pictures: dict[int, np.ndarray] = {}

    def overlay_of(i: int) -> np.ndarray:
        if i not in pictures:
            image = load_image(source, result.paths[i], maps.image_sizes[i])
            pictures[i] = overlay_rgb(image, maps.grids[i], maps.regions[i])
        return pictures[i]

    for i in tqdm(chosen, desc="attention PNGs", unit="img", disable=not progress):
        write_image_pngs(heatmaps, result.paths[i],
                         heatmap_rgb(maps.grids[i], maps.image_sizes[i], maps.regions[i]))
        write_image_pngs(overlays, result.paths[i], overlay_of(i))
    who = f"{describe(attrs)}, {_comparison_title(attrs)}"
    change = result.fid_change
    sheet_figure(sheet, [("", [Tile(overlay_of(i), result.paths[i]) for i in chosen])],
                 f"FID attention of {len(chosen)} of {n} source images\n{who}\n"
                 f"{settings_line(attrs)}")
    order = np.argsort(change, kind="stable")
    k = max(0, min(int(top_k), n))
    top, bottom = order[:k], order[::-1][:k]
    caption = "{path}\nΔFID {change:+.4g}".format
    sheet_figure(
        influence,
        [
            (f"FID blames most: FID drops most without them (top {k})",
             [Tile(overlay_of(i), caption(path=result.paths[i], change=change[i])) for i in top]),
            (f"FID blames least: FID rises most without them (bottom {k})",
             [Tile(overlay_of(i), caption(path=result.paths[i], change=change[i]))
              for i in bottom]),
        ],
        f"Per-image FID influence: ΔFID = FID without the image − FID with it\n{who}\n"
        f"{settings_line(attrs)}",
    )
    mean = _mean_grid(maps_path)
    first = int(chosen[0]) if len(chosen) else 0
    average_figure(
        average,
        [AveragePanel(describe(attrs), str(attrs.get("attention_layer", "?")),
                      float(attrs.get("fid", np.nan)), mean,
                      load_image(source, result.paths[first], maps.image_sizes[first]),
                      maps.regions[first])],
        f"Averaged FID attention over all {n} source images, {who}",
    )
    return {"images": n, "pngs": 2 * len(chosen), "top_k": k}


def _mean_grid(maps_path) -> np.ndarray:
    import h5py

    with h5py.File(maps_path, "r") as handle:
        return handle["mean_grid"][()]


def draw_average_figure(maps_paths: Sequence, images, out) -> None:
    """Seed 001 Fig. 2 for one comparison: a panel per extractor (in the order given), each
    its averaged map and the overlay on the same sample image (the first source image)."""
    from fidlens.attention_io import read_maps
    from fidlens.datasets import open_source

    panels, attrs, source = [], {}, None
    for path in maps_paths:
        result = read_maps(path)
        attrs = result.attrs
        if source is None:
            source = open_source(images, attrs.get("source"), include_hidden=True)
        image = load_image(source, result.paths[0], result.maps.image_sizes[0])
        panels.append(AveragePanel(describe(attrs), str(attrs.get("attention_layer", "?")),
                                   result.fid, _mean_grid(path), image, result.maps.regions[0]))
    if not panels:
        raise ValueError("no attention maps given")
    average_figure(
        out, panels,
        f"Averaged FID attention over all {len(result.paths)} source images, "
        f"{attrs.get('source')} → {attrs.get('target')}; sample image {result.paths[0]}\n"
        f"weighting {attrs.get('weighting')}, "
        f"{'L2-normalised' if attrs.get('normalize') == 'l2' else 'raw'} features, no ReLU",
    )


def draw_pairs(pairs_path, images: dict[str, str], out, columns: int = 8) -> int:
    """The good/bad pair sheet of one (extractor, comparison) from its pairs file; images:
    dataset name -> folder or zip. Returns the number of pairs drawn."""
    from fidlens.attention_io import read_pair_maps
    from fidlens.datasets import open_source

    result = read_pair_maps(pairs_path)
    sources: dict[str, ImageSource] = {}

    def source_of(name: str) -> ImageSource:
        if name not in sources:
            if name not in images:
                raise ValueError(f"no folder given for dataset {name!r} (--dataset NAME=PATH)")
            sources[name] = open_source(images[name], name, include_hidden=True)
        return sources[name]

    tiles = []
    for i, pair in enumerate(result.pairs):
        row = []
        for role, dataset, relpath in (("good", pair.good_dataset, pair.good_path),
                                       ("bad", pair.bad_dataset, pair.bad_path)):
            maps = getattr(result, role)
            image = load_image(source_of(dataset), relpath, maps.image_sizes[i])
            caption = f"{dataset}/{relpath}"
            if role == "bad":
                caption += f"\nswap ΔFID {result.fid_change[i]:+.4g}"
            row.append(Tile(overlay_rgb(image, maps.grids[i], maps.regions[i]), caption))
        tiles.append(tuple(row))
    attrs = result.attrs
    pair_figure(
        out, tiles,
        f"Good/bad pairs with their FID attention, {describe(attrs)}, {_comparison_title(attrs)}"
        "\nswap ΔFID = FID with the bad image replaced by the good one − FID as it is "
        f"(negative: better)\n{settings_line(attrs)}",
        columns=columns,
    )
    return len(tiles)
