"""Statistics in and out: round trips through pytorch-fid's and clean-fid's own readers, FID
from statistics alone, and the provenance checks of shared caches and imported statistics."""

from __future__ import annotations

import json

import cleanfid
import numpy as np
import pytest
from cleanfid import features as cleanfid_features
from cleanfid import fid as cleanfid_fid
from pytorch_fid import fid_score

from fidlens.cache import FeatureCache, read_features, write_cache
from fidlens.datasets import ManifestRow
from fidlens.interop import (
    UNAVAILABLE_L2,
    UNAVAILABLE_STATISTICS,
    ProvenanceMismatchError,
    check_imported_statistics,
    expected_provenance,
    import_cache,
    metrics_from_statistics,
)
from fidlens.metrics import feature_statistics, fid_from_features, frechet_distance
from fidlens.statistics import compute_statistics, write_statistics
from fidlens.stats_io import (
    StatisticsFormatError,
    export_clean_fid,
    export_pytorch_fid,
    import_statistics,
    parse_clean_fid_name,
    read_npz_statistics,
)

N, D = 40, 6  # N > D: both covariances full rank, so scipy's sqrtm in the tools is exact


def provenance(**changes) -> dict:
    """The attributes our extraction stamps for `inception` with `weights: random` (seed 0)."""
    attrs = {
        "extractor": "inception", "extractor_type": "inception", "feature_layer": "pool3",
        "preprocess": "clean", "weights": "random-init", "weights_sha256": "random-init",
        "weights_origin": "random (seed 0)", "weights_path": "random-init",
        "resolution": "native", "dataset": "real",
    }  # fmt: skip
    return attrs | changes


def make_cache(path, seed: int, shift: float = 0.0, n: int = N, attrs=None) -> FeatureCache:
    rng = np.random.default_rng(seed)
    features = (rng.normal(size=(n, D)) @ rng.normal(size=(D, D)) + shift).astype(np.float32)
    paths = [f"{i:03d}.png" for i in range(n)]
    cache = FeatureCache(
        features=features,
        attrs=attrs or provenance(),
        paths=paths,
        sha1=[f"{seed:02d}{i:038d}" for i in range(n)],
    )
    write_cache(path, cache)
    return cache


@pytest.fixture
def real_stats(tmp_path):
    cache = make_cache(tmp_path / "real.h5", seed=1)
    stats = compute_statistics(tmp_path / "real.h5")
    return cache, stats


# ---------------------------------------------------------------- pytorch-fid


def test_pytorch_fid_reads_our_export(tmp_path, real_stats):
    cache, stats = real_stats
    out = tmp_path / "real.pytorch-fid.npz"
    export_pytorch_fid(stats, out)
    # pytorch-fid's own reader (its .npz branch needs no network)
    mu, sigma = fid_score.compute_statistics_of_path(str(out), None, 1, D, "cpu")
    np.testing.assert_array_equal(mu, stats.mean)
    np.testing.assert_array_equal(sigma, stats.covariance)
    # and its own statistics of the same features (np.mean, np.cov) agree with ours
    features = cache.features.astype(np.float64)
    np.testing.assert_allclose(mu, features.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(features, rowvar=False), rtol=1e-10)
    # FID by pytorch-fid's formula on the file equals ours on the features
    other = make_cache(tmp_path / "gen.h5", seed=2, shift=0.5).features
    mu2, sigma2 = feature_statistics(other)
    theirs = fid_score.calculate_frechet_distance(mu2, sigma2, mu, sigma)
    assert theirs == pytest.approx(fid_from_features(other, cache.features), rel=1e-8)
    # our provenance travels inside, ignored by pytorch-fid, read back by us
    _, _, recorded = read_npz_statistics(out)
    assert recorded["weights"] == "random-init" and recorded["n"] == N


def test_import_of_a_pytorch_fid_file(tmp_path, real_stats):
    _, stats = real_stats
    path = tmp_path / "ffhq.npz"
    # exactly what pytorch-fid's save_fid_stats writes
    np.savez_compressed(path, mu=stats.mean, sigma=stats.covariance)
    imported = import_statistics(path, "pytorch-fid")
    np.testing.assert_array_equal(imported.covariance, stats.covariance)
    assert imported.attrs["provenance"] == "unknown" and imported.n == 0
    expected = {"extractor_type": "inception", "preprocess": "clean"}
    notes = check_imported_statistics(imported, expected, "inception", D)
    assert "taken on trust" in notes[0]
    with pytest.raises(ProvenanceMismatchError, match="dimension 6, but inception's features"):
        check_imported_statistics(imported, expected, "inception", 2048)


def test_bad_statistics_files_are_named(tmp_path):
    path = tmp_path / "wrong.npz"
    np.savez(path, feats=np.zeros((3, 2)))
    with pytest.raises(StatisticsFormatError, match="wrong.npz.*holds \\['feats'\\].*KID file"):
        read_npz_statistics(path)
    asymmetric = tmp_path / "asym.npz"
    np.savez(asymmetric, mu=np.zeros(2), sigma=np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(StatisticsFormatError, match="asym.npz: the covariance is not symmetric"):
        import_statistics(asymmetric, "pytorch-fid")


# ---------------------------------------------------------------- clean-fid


def test_clean_fid_reads_our_export(tmp_path, real_stats, monkeypatch):
    cache, stats = real_stats
    stats_folder = tmp_path / "cleanfid" / "stats"
    statistics_path, kid_path = export_clean_fid(stats, cache.features, stats_folder, "demo_real")
    assert statistics_path.name == "demo_real_clean_custom_na.npz"  # inception, mode clean
    assert kid_path.name == "demo_real_clean_custom_na_kid.npz"
    # clean-fid looks in <package folder>/stats: point it at ours
    monkeypatch.setattr(cleanfid, "__file__", str(tmp_path / "cleanfid" / "__init__.py"))
    assert cleanfid_fid.test_stats_exists("demo_real", "clean")
    mu, sigma = cleanfid_features.get_reference_statistics(
        "demo_real", 0, mode="clean", split="custom"
    )
    np.testing.assert_array_equal(mu, stats.mean)
    np.testing.assert_array_equal(sigma, stats.covariance)
    feats = cleanfid_features.get_reference_statistics(
        "demo_real", 0, mode="clean", split="custom", metric="KID"
    )
    np.testing.assert_array_equal(feats, cache.features)
    other = make_cache(tmp_path / "gen.h5", seed=2, shift=0.5).features
    theirs = cleanfid_fid.frechet_distance(*feature_statistics(other), mu, sigma)
    assert theirs == pytest.approx(fid_from_features(other, cache.features), rel=1e-8)


def test_clean_fid_names_and_modes(tmp_path, real_stats):
    _, stats = real_stats
    assert parse_clean_fid_name("ffhq_clean_trainval70k_1024.npz") == {
        "name": "ffhq", "mode": "clean", "model_name": "inception_v3",
        "split": "trainval70k", "res": "1024", "kid": False,
    }  # fmt: skip
    parsed = parse_clean_fid_name("my_set_legacy_pytorch_clip_vit_b_32_custom_na_kid.npz")
    assert parsed["name"] == "my_set" and parsed["model_name"] == "clip_vit_b_32"
    assert parsed["mode"] == "legacy_pytorch" and parsed["kid"]
    # clean-fid's own layout of a legacy_pytorch statistics file (make_custom_stats)
    path = tmp_path / "ffhq_legacy_pytorch_custom_na.npz"
    np.savez_compressed(path, mu=stats.mean, sigma=stats.covariance)
    imported = import_statistics(path, "clean-fid")
    assert imported.attrs["clean_fid_mode"] == "legacy_pytorch"
    ours = {"extractor_type": "inception", "preprocess": "clean"}
    with pytest.raises(ProvenanceMismatchError, match="mode 'legacy_pytorch'.*'pytorch-fid'"):
        check_imported_statistics(imported, ours, "inception", D)
    ok = check_imported_statistics(imported, ours | {"preprocess": "pytorch-fid"}, "inc", D)
    assert "matches preprocess 'pytorch-fid'" in ok[-1]


# ---------------------------------------------------------------- FID from statistics alone


def test_fid_from_statistics_alone(tmp_path, real_stats):
    real, stats = real_stats
    gen = make_cache(tmp_path / "gen.h5", seed=2, shift=0.5, attrs=provenance(dataset="gen"))
    export_pytorch_fid(stats, tmp_path / "real.npz")
    target = import_statistics(tmp_path / "real.npz", "pytorch-fid")
    doc = metrics_from_statistics(tmp_path / "gen.h5", target, metrics="fid,kid,pr",
                                  source_name="gen", target_name="real_stats")  # fmt: skip
    assert doc["raw"]["fid"] == pytest.approx(fid_from_features(gen.features, real.features),
                                              rel=1e-9)  # fmt: skip
    assert doc["raw"]["kid_mean"] is None and doc["l2"]["fid"] is None
    assert doc["unavailable"]["raw.precision"] == UNAVAILABLE_STATISTICS
    assert doc["unavailable"]["l2.fid"] == UNAVAILABLE_L2
    assert doc["weights"] == "random-init" and doc["target_kind"] == "statistics"
    # the tables say so
    from fidlens.tables import long_table, markdown_report, metric_rows

    long = long_table(metric_rows(doc, "gen__real_stats.json"))
    assert long.loc[long["metric"] == "kid_mean", "note"].iloc[0] == UNAVAILABLE_STATISTICS
    assert f"kid_mean, kid_std, precision, recall ({UNAVAILABLE_STATISTICS})" in markdown_report(
        long
    )
    # statistics of another extractor's weights: refused unless allow_mixed
    other = tmp_path / "other.npz"
    stats.attrs["weights_origin"] = "random (seed 7)"
    export_pytorch_fid(stats, other)
    with pytest.raises(ValueError, match="random-init seed 0.*random-init seed 7"):
        metrics_from_statistics(tmp_path / "gen.h5", import_statistics(other, "pytorch-fid"))


# ---------------------------------------------------------------- shared caches


def test_shared_cache_provenance_is_checked(tmp_path):
    """A cache made 'elsewhere' by the same instance passes; another preprocessing, other
    weights or other images are errors naming the setting and both values."""
    expected = expected_provenance("inception", weights="random", preprocess="clean")
    assert expected["weights"] == "random-init seed 0"
    cache = make_cache(tmp_path / "shared.h5", seed=3)
    manifest = [ManifestRow(p, 10, s) for p, s in zip(cache.paths, cache.sha1, strict=True)]
    summary = import_cache(tmp_path / "shared.h5", tmp_path / "here.h5", expected, "inception",
                           manifest)  # fmt: skip
    copied = read_features(tmp_path / "here.h5")
    np.testing.assert_array_equal(copied.features, cache.features)
    assert copied.attrs["imported_from"].endswith("shared.h5") and summary["n"] == N

    other = expected_provenance("inception", weights="random:1", preprocess="pytorch-fid")
    with pytest.raises(ProvenanceMismatchError) as error:
        import_cache(tmp_path / "shared.h5", tmp_path / "no.h5", other, "inception_pf", manifest)
    message = str(error.value)
    assert (
        "shared.h5 was not made with the settings of extractor instance 'inception_pf'" in message
    )
    assert "preprocess: the file has 'clean', this configuration makes 'pytorch-fid'" in message
    assert (
        "weights: the file has 'random-init seed 0', this configuration makes "
        "'random-init seed 1'" in message
    )
    assert not (tmp_path / "no.h5").exists()

    changed = [manifest[0]._replace(sha1="f" * 40), *manifest[1:-1]]
    with pytest.raises(ProvenanceMismatchError) as error:
        import_cache(tmp_path / "shared.h5", tmp_path / "no.h5", expected, "inception", changed)
    assert "000.png: sha1" in str(
        error.value
    ) and "039.png: in the cache, not in the dataset" in str(error.value)


def test_cache_without_provenance_is_refused(tmp_path):
    make_cache(tmp_path / "foreign.h5", seed=4, attrs={"note": "another tool"})
    expected = expected_provenance("inception", weights="random")
    with pytest.raises(ProvenanceMismatchError, match="extractor_type: the file has nothing"):
        import_cache(tmp_path / "foreign.h5", tmp_path / "x.h5", expected, "inception")


def test_exported_statistics_keep_the_statistics_rule_provenance(tmp_path, real_stats):
    _, stats = real_stats
    write_statistics(tmp_path / "s.h5", stats)
    from fidlens.statistics import read_statistics

    back = read_statistics(tmp_path / "s.h5")
    export_pytorch_fid(back, tmp_path / "s.npz")
    _, _, recorded = read_npz_statistics(tmp_path / "s.npz")
    assert recorded["cache_path"].endswith("real.h5")
    assert json.loads(recorded["statistics_package_versions"])["numpy"] == np.__version__
    again = import_statistics(tmp_path / "s.npz", "pytorch-fid")
    value = frechet_distance(again.mean, again.covariance, stats.mean, stats.covariance)
    assert abs(value) < 1e-9
