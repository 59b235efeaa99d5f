"""Seed 000 §3.1's inspection loop: sample sheets, bad seeds, probes around them, good/bad
pairs, and its Table 1.

1. `sample_sheets`: contact sheets of the first K seeds of a generated dataset (the seed
   printed under each image) for a person to scan (seed 000: 1,000 samples per generator).
2. The person writes the seeds with visible defects into a bad-seeds file (`read_bad_seeds`:
   YAML `[3, 17]`, `{bad_seeds: [...]}` or `[{seed: 17, note: ...}]`, or CSV with a `seed`
   column).
3. `generate_probes`: for each bad seed s, probe 0 is s itself and probes 1..M are drawn
   uniformly in a ball of radius r around its code, in z (then mapped) or in w:

       x_i = x_s + r * u_i^(1/d) * g_i / ||g_i||,   g_i ~ N(0, I_d), u_i ~ U(0, 1)

   (a uniform point of the d-ball: a uniform direction, Muller 1959, at radius r u^(1/d)),
   drawn from `np.random.RandomState([seed, s, i])`, so probe i of s never depends on M or on
   the other bad seeds. The probes are their own dataset (images + latents), so pairs can
   name them; `probe_sheets` shows them with their probe ids `s-i`.
4. The person records good/bad pairs in a CSV with the columns `good_probe,bad_probe`
   (probe ids `s-i`, or row indices of the probes' latents file), or in the pair-file schema
   itself. `convert_pairs` turns it into the pair-file schema (`fidlens.pairs`:
   good_dataset,good_path,bad_dataset,bad_path) that the discard / replace experiment and the
   attention stage's pair sheets read: probe 0 of s names the generated set's own image of
   s (the same z, w and pixels), every other probe the probes dataset's image.
5. `table1`: seed 000's Table 1 (model, dataset, network file, number of pairs) with the
   loop's counts (samples inspected, bad seeds, probes each).

Light at import (no torch, matplotlib or h5py): the workflow reads bad-seeds and pair files
and converts pairs while it parses, to check them before any job.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fidlens.generators.dataset import image_name, parse_seeds
from fidlens.pairs import Pair, PairFileError

PROBE_DEFAULTS = {"of": None, "bad_seeds": None, "samples": 200, "radius": 2.0, "space": "z",
                  "seed": 0}  # fmt: skip
PROBE_SPACES = ("z", "w")
PROBE_COLUMNS = ("good_probe", "bad_probe")
SHEET_DEFAULTS = {"first": 1000, "per_page": 100, "columns": 10}
_PROBE_ID = re.compile(r"^\s*(\d+)\s*[-:]\s*(\d+)\s*$")
NO_NETWORK = "built-in (procedural)"


# ---------------------------------------------------------------------------------------------
# Bad seeds, probe ids and names
# ---------------------------------------------------------------------------------------------


def read_bad_seeds(path: str | os.PathLike) -> list[int]:
    """Sorted unique bad seeds of a YAML or CSV file (module docstring). FileNotFoundError,
    or ValueError naming the file (and the line for CSV) when it holds no valid seed list."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"bad-seeds file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if "seed" not in [name.strip() for name in reader.fieldnames or []]:
            raise ValueError(f"{path}: a bad-seeds CSV needs a 'seed' column (header: "
                             f"{reader.fieldnames})")
        items = []
        for line, row in enumerate(reader, start=2):
            value = {k.strip(): v for k, v in row.items() if k}.get("seed", "").strip()
            if not value.isdigit():
                raise ValueError(f"{path} line {line}: seed {value!r} is not a seed number")
            items.append(int(value))
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: not valid YAML ({error})") from None
        if isinstance(data, dict):
            data = data.get("bad_seeds")
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a list of seeds, [{{seed: N, note: ...}}] or "
                             "{bad_seeds: [...]}")
        items = [item.get("seed") if isinstance(item, dict) else item for item in data]
        bad = [item for item in items if not isinstance(item, int) or isinstance(item, bool)]
        if bad:
            raise ValueError(f"{path}: {bad[0]!r} is not a seed number")
    if not items:
        raise ValueError(f"{path} records no bad seed")
    return parse_seeds(items, str(path))


def probe_settings(spec: dict | None) -> dict:
    """datasets.<name>.probes with its defaults filled in; ValueError for unknown keys."""
    settings = {**PROBE_DEFAULTS, **(spec or {})}
    unknown = sorted(set(settings) - set(PROBE_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown probe settings {unknown}; known: {', '.join(PROBE_DEFAULTS)}")
    return settings


def probe_id(seed: int, index: int) -> str:
    """The id a probe sheet prints: `seed-index` (index 0 = the bad seed itself)."""
    return f"{int(seed)}-{int(index)}"


def probe_name(seed: int, index: int) -> str:
    """A probe's file name in the probes dataset."""
    return f"seed{int(seed):04d}_p{int(index):03d}.png"


def probe_rows(bad_seeds: Sequence[int], samples: int) -> list[tuple[int, int]]:
    """(seed, index) of each row of a probes latents file: bad seeds ascending, each with its
    probes 0..samples (row r = seed position x (samples + 1) + index)."""
    return [(int(seed), index) for seed in sorted(bad_seeds) for index in range(samples + 1)]


def parse_probe_ref(text: str, bad_seeds: Sequence[int], samples: int, where: str
                    ) -> tuple[int, int]:
    """(seed, index) of a probe id `s-i` (also `s:i`) or of a row index of the probes'
    latents file. PairFileError naming `where` for anything else or a probe not drawn."""
    text = (text or "").strip()
    match = _PROBE_ID.match(text)
    if match:
        seed, index = int(match.group(1)), int(match.group(2))
        if seed not in set(bad_seeds):
            raise PairFileError(f"{where}: probe {text!r} names seed {seed}, which is not a "
                                f"recorded bad seed ({', '.join(map(str, sorted(bad_seeds)))})")
        if index > samples:
            raise PairFileError(f"{where}: probe {text!r}: seed {seed} has probes 0..{samples}")
        return seed, index
    if text.isdigit():
        rows = probe_rows(bad_seeds, samples)
        if int(text) >= len(rows):
            raise PairFileError(f"{where}: latent index {text} is past the probes' "
                                f"{len(rows)} rows")
        return rows[int(text)]
    raise PairFileError(f"{where}: {text!r} is neither a probe id SEED-INDEX (as printed on "
                        "the probe sheets, e.g. 17-3) nor a latent row index")


def ball_offsets(dim: int, radius: float, probe_seed: int, centre_seed: int,
                 indices: Sequence[int]) -> np.ndarray:
    """(len(indices), dim) float64: uniform points of the d-ball of `radius` (module
    docstring), one RandomState([probe_seed, centre_seed, index]) per probe."""
    out = np.empty((len(indices), int(dim)), dtype=np.float64)
    for row, index in enumerate(indices):
        rng = np.random.RandomState([int(probe_seed), int(centre_seed), int(index)])
        direction = rng.standard_normal(int(dim))
        out[row] = radius * rng.random_sample() ** (1.0 / dim) * direction / np.linalg.norm(
            direction)
    return out


# ---------------------------------------------------------------------------------------------
# Pairs: the person's file -> the pair-file schema
# ---------------------------------------------------------------------------------------------


def pair_file_format(path: str | os.PathLike) -> str:
    """`probes` (good_probe,bad_probe columns) or `standard` (the pair-file schema), from the
    header. FileNotFoundError; PairFileError when it is neither."""
    from fidlens.pairs import PAIR_COLUMNS

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pair file not found: {path}")
    with open(path, newline="", encoding="utf-8") as handle:
        header = [field.strip() for field in next(csv.reader(handle), [])]
    if all(column in header for column in PAIR_COLUMNS):
        return "standard"
    if all(column in header for column in PROBE_COLUMNS):
        return "probes"
    found = ",".join(header) or "an empty file"
    raise PairFileError(f"{path}: line 1 must name the columns good_probe,bad_probe (probe "
                        f"ids) or {','.join(PAIR_COLUMNS)} (found: {found})")


def convert_pairs(path: str | os.PathLike, generated: str, probes: str | None = None,
                  bad_seeds: Sequence[int] = (), samples: int = 0) -> list[Pair]:
    """The pairs of a person's pair file in the pair-file schema (file order, with lines).

    A `good_probe,bad_probe` file (further columns, e.g. a note, are ignored) needs the
    probes dataset's name, bad seeds and samples; probe 0 of seed s becomes
    (generated, seedNNNN.png), probe i > 0 (probes, seedNNNN_pIII.png). A file in the
    pair-file schema is returned as it is. PairFileError naming the file and line for an
    unknown probe, a pair of one image with itself, or no pairs at all."""
    from fidlens.pairs import read_pairs

    if pair_file_format(path) == "standard":
        pairs = read_pairs(path)
    else:
        if probes is None:
            raise PairFileError(f"{path}: good_probe,bad_probe pairs need the probes dataset "
                                "they name (inspection.datasets.<name>.probes)")
        pairs = []
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = [field.strip() for field in next(reader)]
            where = [header.index(column) for column in PROBE_COLUMNS]
            for line, fields in enumerate(reader, start=2):
                if all(not field.strip() for field in fields) or fields[0].lstrip().startswith(
                        "#"):
                    continue
                refs = []
                for column, position in zip(PROBE_COLUMNS, where, strict=True):
                    value = fields[position] if position < len(fields) else ""
                    seed, index = parse_probe_ref(value, bad_seeds, samples,
                                                  f"{path} line {line} ({column})")
                    refs += [generated, image_name(seed)] if index == 0 else [
                        probes, probe_name(seed, index)]
                pairs.append(Pair(*refs, row=line))
    for pair in pairs:
        if (pair.good_dataset, pair.good_path) == (pair.bad_dataset, pair.bad_path):
            raise PairFileError(f"{path} line {pair.row}: the good and the bad image are the "
                                f"same ({pair.bad_dataset}/{pair.bad_path})")
    if not pairs:
        raise PairFileError(f"{path} holds no pairs")
    return pairs


# ---------------------------------------------------------------------------------------------
# Probes (job time)
# ---------------------------------------------------------------------------------------------


def generate_probes(folder, latents_path, generated_latents, generator_spec: dict,
                    probes_spec: dict, dataset_name: str, device: str = "auto",
                    progress: bool = True) -> dict:
    """Write the probes dataset `dataset_name`: for each bad seed of probes_spec (a bad-seeds
    file) probe 0 = the generated set's own code and M = `samples` probes in the ball
    (module docstring), as PNGs under `folder` (only the missing ones are drawn) and a latents
    file (paths, w, z for z-space probes, extra/centre_seed, extra/probe_index and, for the
    procedural generator, extra/defective).

    generated_latents: the latents file of the set the seeds were inspected in
    (probes_spec["of"]), drawn with generator_spec (datasets.<of>.generator); its codes are
    the centres. ValueError when a bad seed is not one of its seeds or it was drawn by another
    generator. Returns a summary (counts, settings)."""
    from fidlens.generators import load_generator
    from fidlens.generators.dataset import (
        generation_settings,
        generator_part,
        map_one_by_one,
        settings_digest,
        write_images,
    )
    from fidlens.generators.latents import Latents, read_latents, write_latents

    settings = probe_settings(probes_spec)
    if settings["space"] not in PROBE_SPACES:
        raise ValueError(f"datasets.{dataset_name}.probes.space: z or w, got "
                         f"{settings['space']!r}")
    bad_seeds = read_bad_seeds(settings["bad_seeds"])
    samples, radius = int(settings["samples"]), float(settings["radius"])
    of = settings["of"]
    source = read_latents(generated_latents)
    known = {int(s) for s in source.seeds} if source.seeds is not None else set()
    missing = [seed for seed in bad_seeds if seed not in known]
    if missing:
        raise ValueError(f"{settings['bad_seeds']}: bad seeds {missing[:5]} are not seeds of "
                         f"{of} ({source.attrs.get('seeds', 'none recorded')})")
    gen = generation_settings(generator_spec)
    psi, label = float(gen["truncation_psi"]), gen["class_label"]
    setting = f"datasets.{of}.generator"
    generator = load_generator(generator_part(gen), device=device, setting=setting)
    provenance = generator.provenance()
    drawn_with = source.attrs.get("settings_sha256")
    if drawn_with and drawn_with != settings_digest(provenance, psi, label):
        raise ValueError(f"{generated_latents} was drawn by another generator or settings than "
                         f"{setting} describes now; generate {of} again first")
    ball = {"space": settings["space"], "radius": radius, "seed": int(settings["seed"])}
    digest = settings_digest(provenance, psi, label, ball)
    rows = source.rows([image_name(seed) for seed in bad_seeds], f"{of}'s latents")
    z_rows, w_rows, names, tags, seeds_of, index_of = [], [], [], [], [], []
    for seed, row in zip(bad_seeds, rows, strict=True):
        z_c, w_c = source.z[row], source.w[row]
        dim = len(z_c) if settings["space"] == "z" else len(w_c)
        offsets = ball_offsets(dim, radius, ball["seed"], seed, range(1, samples + 1))
        if settings["space"] == "z":
            z = np.vstack([z_c, z_c + offsets])
            w = np.vstack([w_c, map_one_by_one(generator, z[1:], psi, label)])
            z_rows.append(z)
        else:
            w = np.vstack([w_c, w_c + offsets])
        w_rows.append(w)
        for index in range(samples + 1):
            names.append(probe_name(seed, index))
            tags.append({"settings": digest, "probe": probe_id(seed, index)})
            seeds_of.append(seed)
            index_of.append(index)
    w = np.vstack(w_rows)
    gen_batch = int(gen["batch_size"])
    counts = write_images(generator, folder, names, w, tags, gen_batch, progress)
    extra = {"centre_seed": np.asarray(seeds_of, dtype=np.int64),
             "probe_index": np.asarray(index_of, dtype=np.int64)}
    defective = generator.known_defective(w)
    if defective is not None:
        extra["defective"] = defective
    about = {"of": of, "bad_seeds": bad_seeds, "samples": samples, **ball,
             "bad_seeds_file": str(settings["bad_seeds"])}
    write_latents(
        latents_path,
        Latents(paths=names, w=w, z=np.vstack(z_rows) if z_rows else None, extra=extra,
                attrs={"generator": json.dumps(provenance, sort_keys=True),
                       "truncation_psi": psi, "class_label": json.dumps(label),
                       "probes": json.dumps(about, sort_keys=True), "settings_sha256": digest,
                       "dataset": dataset_name, "images": str(folder)}),
        description=f"{dataset_name}: probes around the bad seeds of {of} (seed 000 §3.1): "
        f"probe 0 = the bad seed, probes 1..{samples} uniform in a {settings['space']}-ball "
        f"of radius {radius}",
    )
    summary = {"dataset": dataset_name, "images": len(names), **counts, **about,
               "settings_sha256": digest, "generator": provenance}
    if defective is not None:
        summary["defective"] = int(np.sum(defective))
    return summary


# ---------------------------------------------------------------------------------------------
# Contact sheets (job time)
# ---------------------------------------------------------------------------------------------

LABEL_PX, PAD_PX, TITLE_PX, DPI = 18, 6, 58, 100


def cell_size(side: int) -> int:
    """Display side of one image on a sheet: its own, within 96..192 px."""
    return int(min(192, max(96, side)))


def _cell(image: np.ndarray, cell: int) -> np.ndarray:
    from PIL import Image

    side = image.shape[0]
    if side == cell:
        return image
    method = Image.Resampling.NEAREST if side < cell else Image.Resampling.LANCZOS
    return np.asarray(Image.fromarray(image).resize((cell, cell), method))


def contact_sheet(images: Sequence[np.ndarray], labels: Sequence[str], title: str, path,
                  columns: int = 10, framed: Sequence[int] = ()) -> None:
    """A grid of images (each (H, W, 3) uint8) with its label under each and a title; the
    images at positions `framed` get a black frame. Written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fidlens.files import atomic_path

    if not len(images):
        raise ValueError(f"{path}: a sheet needs at least one image")
    cell = cell_size(max(image.shape[0] for image in images))
    columns = max(1, min(int(columns), len(images)))
    rows = math.ceil(len(images) / columns)
    step_x, step_y = cell + PAD_PX, cell + LABEL_PX + PAD_PX
    width, height = columns * step_x + PAD_PX, rows * step_y + PAD_PX
    mosaic = np.full((height, width, 3), 255, dtype=np.uint8)
    framed = set(framed)
    for k, image in enumerate(images):
        y, x = PAD_PX + (k // columns) * step_y, PAD_PX + (k % columns) * step_x
        if k in framed:
            mosaic[max(0, y - 3) : y + cell + 3, max(0, x - 3) : x + cell + 3] = 0
        mosaic[y : y + cell, x : x + cell] = _cell(np.asarray(image, dtype=np.uint8), cell)
    width_in = max(width, 560) / DPI
    figure = plt.figure(figsize=(width_in, (height + TITLE_PX) / DPI), dpi=DPI)
    axes = figure.add_axes((0, 0, width / (width_in * DPI), height / (height + TITLE_PX)))
    axes.imshow(mosaic, interpolation="nearest")
    axes.set_axis_off()
    for k, label in enumerate(labels):
        y, x = PAD_PX + (k // columns) * step_y, PAD_PX + (k % columns) * step_x
        axes.text(x + cell / 2, y + cell + LABEL_PX / 2 + 1, label, ha="center", va="center",
                  fontsize=7.5, color="black")
    figure.suptitle(title, x=0.02, ha="left", y=1 - 6 / (height + TITLE_PX), va="top",
                    fontsize=8.5, wrap=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI)
    plt.close(figure)


def _read_images(folder, paths: Sequence[str]) -> list[np.ndarray]:
    from fidlens.datasets import decode_rgb

    return [decode_rgb(Path(folder, path).read_bytes()) for path in paths]


def sample_sheets(latents_path, folder, out_dir, dataset_name: str,
                  first: int = SHEET_DEFAULTS["first"], per_page: int = SHEET_DEFAULTS["per_page"],
                  columns: int = SHEET_DEFAULTS["columns"]) -> list[Path]:
    """Contact sheets of the first `first` seeds (ascending) of a generated dataset, `per_page`
    images a page, the seed printed under each: out_dir/sheet_001.png ..., and
    out_dir/seeds.csv (page, position, seed, path) to find an image again. Returns the pages."""
    from fidlens.files import write_text_atomic
    from fidlens.generators.latents import read_latents

    latents = read_latents(latents_path)
    if latents.seeds is None:
        raise ValueError(f"{latents_path} records no seeds: sample sheets need a dataset drawn "
                         "from seeds (datasets.<name>.generator)")
    order = np.argsort(latents.seeds, kind="stable")[: int(first)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pages = math.ceil(len(order) / per_page)
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(("page", "position", "seed", "path"))
    written = []
    for page in range(pages):
        rows = order[page * per_page : (page + 1) * per_page]
        seeds = [int(latents.seeds[row]) for row in rows]
        paths = [latents.paths[row] for row in rows]
        title = (f"{dataset_name}: seeds {seeds[0]}-{seeds[-1]} (page {page + 1} of {pages}; "
                 f"the first {len(order)} of {len(latents.paths)} seeds). Write the seeds with "
                 "visible defects into the bad-seeds file (datasets.<probes>.probes.bad_seeds)")
        target = out_dir / f"sheet_{page + 1:03d}.png"
        contact_sheet(_read_images(folder, paths), [f"seed {s}" for s in seeds], title, target,
                      columns)
        written.append(target)
        writer.writerows((page + 1, k + 1, s, p) for k, (s, p) in enumerate(zip(seeds, paths,
                                                                                 strict=True)))
    write_text_atomic(out_dir / "seeds.csv", table.getvalue())
    return written


def probe_sheets(latents_path, folder, out_dir, dataset_name: str,
                 columns: int = SHEET_DEFAULTS["columns"]) -> list[Path]:
    """One sheet per bad seed of a probes dataset: its probes 0..M with their ids (probe 0,
    the bad seed itself, framed): out_dir/seedNNNN.png. Returns the sheets."""
    from fidlens.generators.latents import read_latents

    latents = read_latents(latents_path)
    if "centre_seed" not in latents.extra:
        raise ValueError(f"{latents_path} is not a probes latents file (no extra/centre_seed)")
    about = json.loads(latents.attrs.get("probes", "{}"))
    centres, indices = latents.extra["centre_seed"], latents.extra["probe_index"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for seed in sorted({int(s) for s in centres}):
        rows = [r for r in np.flatnonzero(centres == seed)]
        rows.sort(key=lambda r: int(indices[r]))
        labels = [probe_id(seed, int(indices[r])) + (" (seed)" if indices[r] == 0 else "")
                  for r in rows]
        title = (f"{dataset_name}: probes around bad seed {seed} of {about.get('of', '?')} "
                 f"(framed, probe 0); probes 1-{len(rows) - 1} uniform in a "
                 f"{about.get('space', '?')}-ball of radius {about.get('radius', '?')}. Record "
                 f"pairs as good_probe,bad_probe, e.g. {probe_id(seed, 1)},{probe_id(seed, 0)}")
        target = out_dir / f"{image_name(seed).removesuffix('.png')}.png"
        contact_sheet(_read_images(folder, [latents.paths[r] for r in rows]), labels, title,
                      target, columns, framed=[0])
        written.append(target)
    return written


# ---------------------------------------------------------------------------------------------
# The converted pair file and seed 000's Table 1 (job time)
# ---------------------------------------------------------------------------------------------


def write_inspection_pairs(pairs_file, out_csv, out_json, generated: str,
                           generated_latents, probes: str | None = None,
                           probes_latents=None, model: str | None = None,
                           dataset_label: str | None = None, first: int | None = None) -> dict:
    """Convert a person's pair file (`convert_pairs`) into out_csv (the pair-file schema) and
    write out_json: the Table 1 row (model, dataset, network file, pairs) with the loop's
    counts, the ground truth where the generator knows its defective region, and provenance.
    Every pair's image must have a code in the generated or probes latents (KeyError
    otherwise, naming it). Returns the JSON's content."""
    from fidlens.generators.latents import read_latents
    from fidlens.pairs import write_pairs
    from fidlens.provenance import package_versions

    gen = read_latents(generated_latents)
    latents = {generated: gen}
    about_probes = {}
    if probes is not None and probes_latents is not None:
        latents[probes] = read_latents(probes_latents)
        about_probes = json.loads(latents[probes].attrs.get("probes", "{}"))
    pairs = convert_pairs(pairs_file, generated, probes, about_probes.get("bad_seeds", ()),
                          int(about_probes.get("samples", 0)))
    truth = {"bad_in_defective_region": 0, "good_outside_defective_region": 0}
    for pair in pairs:
        for role in ("good", "bad"):
            dataset, path = getattr(pair, f"{role}_dataset"), getattr(pair, f"{role}_path")
            if dataset not in latents:
                raise KeyError(f"{pairs_file} line {pair.row}: {role} image {dataset}/{path}: "
                               f"no latent codes known for {dataset!r} (known: "
                               f"{', '.join(latents)})")
            row = latents[dataset].rows([path], f"{dataset}'s latents")[0]
            flags = latents[dataset].extra.get("defective")
            if flags is None:
                truth = None
            elif truth is not None:
                inside = bool(flags[row])
                truth["bad_in_defective_region" if role == "bad" else
                      "good_outside_defective_region"] += int(inside if role == "bad" else
                                                              not inside)
    write_pairs(out_csv, pairs)
    provenance = gen.generator
    network = provenance.get("network")
    about = {
        "model": model or (Path(network).stem if network else provenance.get("adapter")),
        "dataset": dataset_label or generated,
        "network": Path(network).name if network else NO_NETWORK,
        "network_sha256": provenance.get("network_sha256"),
        "adapter": provenance.get("adapter"),
        "truncation_psi": gen.attrs.get("truncation_psi"),
        "pairs": len(pairs),
        "generated": generated,
        "n_seeds": len(gen.paths),
        "samples_inspected": min(int(first), len(gen.paths)) if first else None,
        "probes": probes,
        "bad_seeds": len(about_probes.get("bad_seeds", [])) if about_probes else None,
        "probes_per_seed": about_probes.get("samples"),
        "probe_space": about_probes.get("space"),
        "probe_radius": about_probes.get("radius"),
        "pairs_file": str(pairs_file),
        "format": pair_file_format(pairs_file),
        "converted": str(out_csv),
        "ground_truth": truth,
        "package_versions": package_versions(),
    }
    from fidlens.files import write_text_atomic

    write_text_atomic(out_json, json.dumps(about, indent=2, sort_keys=True) + "\n")
    return about


TABLE1_COLUMNS = ("Model", "Dataset", "PKL", "Num Seed Pairs", "Samples inspected",
                  "Bad seeds", "Probes per bad seed")  # fmt: skip


def table1_rows(abouts: Sequence[dict]) -> list[dict]:
    """Seed 000 Table 1's columns per inspected generator, then the loop's counts and
    provenance (one dict per pairs JSON)."""
    rows = []
    for about in abouts:
        probes = about.get("probes_per_seed")
        ball = (f"{probes} ({about['probe_space']}-ball, radius {about['probe_radius']:g})"
                if probes is not None else "")
        rows.append({
            "Model": about["model"], "Dataset": about["dataset"], "PKL": about["network"],
            "Num Seed Pairs": about["pairs"],
            "Samples inspected": "" if about.get("samples_inspected") is None
            else about["samples_inspected"],
            "Bad seeds": "" if about.get("bad_seeds") is None else about["bad_seeds"],
            "Probes per bad seed": ball,
            "generated": about["generated"], "probes": about.get("probes") or "",
            "adapter": about.get("adapter"), "network_sha256": about.get("network_sha256") or "",
            "truncation_psi": about.get("truncation_psi"), "pairs_file": about["pairs_file"],
        })
    return rows


def table1_csv(abouts: Sequence[dict]) -> str:
    rows = table1_rows(abouts)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def table1_markdown(abouts: Sequence[dict]) -> str:
    """Seed 000 Table 1 ("Summary of picked pairs for each model - dataset pair") as Markdown,
    with the inspection counts and, where known, the generator's ground truth."""
    rows = table1_rows(abouts)
    lines = [
        "# Picked good/bad pairs per model and dataset (seed 000 Table 1)",
        "",
        "Samples inspected: the first seeds of each generated set on its sample sheets; bad "
        "seeds: those recorded from them; probes: samples drawn around each bad seed, among "
        "which the pairs were picked (seed 000 §3.1: 1,000 samples, 20-30 bad seeds, 200 "
        "probes each).",
        "",
        "| " + " | ".join(TABLE1_COLUMNS) + " |",
        "|---|---|---|" + "---:|" * (len(TABLE1_COLUMNS) - 3),
    ]
    for row in rows:
        lines.append("| " + " | ".join(str(row[c]) for c in TABLE1_COLUMNS) + " |")
    total = sum(int(about["pairs"]) for about in abouts)
    lines += ["", f"{total} pairs in all, from {len(abouts)} generator(s)."]
    for about in abouts:
        truth = about.get("ground_truth")
        if truth:
            lines += ["", f"{about['generated']}: the generator knows its defective region: "
                      f"{truth['bad_in_defective_region']} of {about['pairs']} bad images lie "
                      f"in it, {truth['good_outside_defective_region']} of {about['pairs']} "
                      "good images outside it."]
    lines += ["", "Made by workflow_scripts/inspection_table.py; the converted pair files "
              "(pair-file schema) are results/inspection/<generated>/pairs.csv, their "
              "provenance pairs.json beside them."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Parse-time checks of probes datasets and inspection entries
# ---------------------------------------------------------------------------------------------


def probes_problems(name: str, spec: dict, generators: dict) -> list[str]:
    """What is wrong with datasets.<name>.probes before any job: `of` must be a generator
    dataset (generators: name -> its generator section), the bad-seeds file readable and
    every bad seed one of its seeds."""
    where = f"datasets.{name}.probes"
    try:
        settings = probe_settings(spec)
    except ValueError as error:
        return [f"{where}: {error}"]
    of = settings["of"]
    if of not in generators:
        return [f"{where}.of: {of!r} is not a dataset declared by a generator "
                f"(generator datasets: {', '.join(generators) or 'none'})"]
    try:
        bad = read_bad_seeds(settings["bad_seeds"])
    except (OSError, ValueError) as error:
        return [f"{where}.bad_seeds: {error}"]
    try:
        seeds = set(parse_seeds(generators[of].get("seeds"), f"datasets.{of}.generator.seeds"))
    except ValueError:
        return []  # reported for the generator dataset
    outside = [seed for seed in bad if seed not in seeds]
    if outside:
        return [f"{where}.bad_seeds: {settings['bad_seeds']}: seeds {outside[:5]} are not seeds "
                f"of {of}"]
    return []
