"""hepgan.reco.uncertainty and hepgan.ml.error_model: the error model's algebra and its fit."""

from __future__ import annotations

import numpy as np
import pytest

from hepgan.errors import InputError
from hepgan.ml.error_model import _fit_bin
from hepgan.reco.uncertainty import COVARIANCE_PAIRS, ErrorModel, covariance_columns


def _model(a=0.01, b=0.05, rho=0.3) -> ErrorModel:
    corr = np.eye(5)
    corr[0, 2] = corr[2, 0] = rho
    return ErrorModel((0.0, 1.5, 4.0), ((a,) * 5, (2 * a,) * 5), ((b,) * 5, (2 * b,) * 5), (tuple(map(tuple, corr)),) * 2)


def test_errors_follow_the_parametrisation_per_eta_bin():
    m = _model()
    theta = np.array([np.pi / 2, 2 * np.arctan(np.exp(-2.0))])  # eta 0 and 2
    qop = np.array([0.5, -0.5])
    s = m.errors(theta, qop)
    np.testing.assert_allclose(s[0], np.hypot(0.01, 0.05 * 0.5))
    np.testing.assert_allclose(s[1], np.hypot(0.02, 0.10 * 0.5))


def test_covariance_is_symmetric_positive_and_flattens_to_fifteen_branches():
    m = _model()
    theta = np.full(4, 1.0)
    qop = np.array([0.1, 1.0, -2.0, 0.01])
    cov = m.covariance(theta, qop)
    assert cov.shape == (4, 5, 5)
    np.testing.assert_allclose(cov, np.transpose(cov, (0, 2, 1)))
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    np.testing.assert_allclose(np.sqrt(np.diagonal(cov, axis1=1, axis2=2)), m.errors(theta, qop))
    cols = covariance_columns(cov)
    assert len(cols) == len(COVARIANCE_PAIRS) == 15
    assert "track_cov_d0_phi" in cols and "track_cov_phi_d0" not in cols
    np.testing.assert_allclose(cols["track_cov_d0_phi"], cov[:, 0, 2], rtol=1e-6)


def test_round_trip_and_bad_documents():
    m = _model()
    assert ErrorModel.from_dict(m.to_dict()) == m
    with pytest.raises(InputError, match="missing"):
        ErrorModel.from_dict({"eta_edges": [0, 1]})
    bad = m.to_dict()
    bad["a"][0][0] = -1.0
    with pytest.raises(InputError, match="non-negative"):
        ErrorModel.from_dict(bad)


def test_fit_recovers_known_terms():
    rng = np.random.default_rng(7)
    x = np.exp(rng.uniform(np.log(0.01), np.log(2.0), 40_000))  # |q/p| from 0.5 to 100 GeV
    a, b = 0.012, 0.08
    r = rng.normal(0.0, np.sqrt(a * a + (b * x) ** 2))
    fa, fb = _fit_bin(r, x)
    assert fa == pytest.approx(a, rel=0.06)
    assert fb == pytest.approx(b, rel=0.06)


# ---------------------------------------------------------------- the per-track quality term (issue 16)
def _with_quality(scale_qop=(0.9, 1.0, 1.6)) -> ErrorModel:
    from hepgan.reco.uncertainty import QualityTerm

    scale = tuple((1.0, 1.0, 1.0, 1.0, s) for s in scale_qop)
    term = QualityTerm("road_ambiguous_surfaces", (0.0, 1.0, 4.0), scale)
    base = _model()
    return ErrorModel(base.eta_edges, base.a, base.b, base.corr, term)


def test_quality_term_scales_sigma_per_class_and_defaults_to_the_base():
    m, base = _with_quality(), _model()
    theta = np.full(5, 1.0)
    qop = np.array([0.5, 0.5, 0.5, 0.5, 0.5])
    q = np.array([0, 1, 3, 4, 11])  # classes 0, 1, 1, 2, 2 (the last class is open above)
    s = m.errors(theta, qop, q)
    np.testing.assert_allclose(s[:, :4], base.errors(theta, qop)[:, :4])
    np.testing.assert_allclose(s[:, 4] / base.errors(theta, qop)[:, 4], [0.9, 1.0, 1.0, 1.6, 1.6])
    # no quality values (the engine's completion before, callers without the variable): the base
    np.testing.assert_allclose(m.errors(theta, qop), base.errors(theta, qop))
    # NaN quality: scale 1; a model without the term ignores quality values
    np.testing.assert_allclose(m.errors(theta[:1], qop[:1], [np.nan]), base.errors(theta[:1], qop[:1]))
    np.testing.assert_allclose(base.errors(theta, qop, q), base.errors(theta, qop))
    cov = m.covariance(theta, qop, q)
    np.testing.assert_allclose(np.sqrt(np.diagonal(cov, axis1=1, axis2=2)), s)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    with pytest.raises(InputError, match="5 tracks but quality values of shape"):
        m.errors(theta, qop, q[:3])


def test_quality_term_round_trip_and_old_documents_without_it():
    m = _with_quality()
    doc = m.to_dict()
    assert doc["quality"] == {"variable": "road_ambiguous_surfaces", "edges": [0.0, 1.0, 4.0],
                              "scale": [[1.0, 1.0, 1.0, 1.0, s] for s in (0.9, 1.0, 1.6)]}  # fmt: skip
    assert ErrorModel.from_dict(doc) == m
    # files calibrated before the term: no "quality" key (or null), every scale 1
    old = _model().to_dict()
    assert "quality" not in old
    assert ErrorModel.from_dict(old).quality is None
    assert ErrorModel.from_dict({**old, "quality": None}).quality is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"variable": "track_nhits"}, r"unknown variable 'track_nhits'; expected one of \['road_ambiguous_surfaces'\]"),
        ({"edges": [0.0, 4.0, 1.0]}, "expected increasing finite edges"),
        ({"edges": [0.0, 1.0]}, r"one per class.*got edges \[0.0, 1.0\], scale \(3, 5\)"),
        ({"scale": [[1.0] * 5, [1.0] * 5, [1.0, 1.0, 1.0, 1.0, 0.0]]}, "5 positive finite scales"),
        ({"scale": [[1.0] * 4] * 3}, r"scale \(3, 4\)"),
        ({"scale": [[1.0] * 5, [1.0] * 5, ["x"] * 5]}, "must be numbers"),
    ],
)
def test_bad_quality_terms_are_refused_with_the_place(change, message):
    doc = _with_quality().to_dict()
    doc["quality"].update(change)
    with pytest.raises(InputError, match=message) as err:
        ErrorModel.from_dict(doc, where="m.onnx: metadata 'error_model'")
    assert str(err.value).startswith("m.onnx: metadata 'error_model': ")


def test_quality_term_document_must_hold_its_fields():
    doc = _model().to_dict()
    for bad in ({"variable": "road_ambiguous_surfaces"}, [1, 2], "x"):
        with pytest.raises(InputError, match="'quality' must hold variable, edges and scale"):
            ErrorModel.from_dict({**doc, "quality": bad})


def test_road_ambiguous_surfaces_counts_surfaces_with_several_candidates():
    from hepgan.reco.engine import road_ambiguous_surfaces

    cand = -np.ones((3, 10, 4), np.int32)
    cand[0, :, 0] = 5  # one candidate everywhere
    cand[1, 2, :2] = (1, 2)
    cand[1, 7, :4] = (3, 4, 6, 8)
    cand[2, :, :] = 9
    np.testing.assert_array_equal(road_ambiguous_surfaces(cand), [0, 2, 10])
    assert road_ambiguous_surfaces(cand).dtype == np.int32
    assert road_ambiguous_surfaces(cand[:0]).shape == (0,)


def test_fit_recovers_quality_scales(monkeypatch):
    """Residuals whose width grows with the class: the fitted scales follow the truth's ratios,
    the pulls of every class come out 1, and without the variable the fit has no term."""
    from hepgan.ml import error_model as em
    from hepgan.perf.metrics import core_width

    rng = np.random.default_rng(11)
    n = 30_000
    x = np.exp(rng.uniform(np.log(0.01), np.log(2.0), n))
    q = rng.integers(0, 6, n).astype(float)
    true_s = np.array([0.8, 0.9, 1.0, 1.2, 1.5, 2.0])
    a, b = 0.012, 0.08
    r = rng.normal(0.0, np.sqrt(a * a + (b * x) ** 2) * true_s[q.astype(int)])
    theta = np.full(n, np.pi / 2)

    def fake_selected(h, p, t, *, bfield):
        return {k: r for k in ("d0", "z0", "phi", "theta", "qop")}, theta, x, t

    monkeypatch.setattr(em, "_selected", fake_selected)
    model, summary = em.fit_error_model([(None, None, q)], quality_edges=(0.0, 1.0, 2.0, 3.0, 4.0, 5.0))
    plain, _ = em.fit_error_model([(None, None, np.full(n, np.nan))])
    assert plain.quality is None
    s = np.asarray(model.quality.scale)[:, 4]
    np.testing.assert_allclose(s / s[2], true_s / true_s[2], rtol=0.05)
    assert summary["tracks_per_quality_class"] == np.bincount(q.astype(int)).tolist()
    pulls = r / model.errors(theta, x, q)[:, 4]
    for c in range(6):
        assert core_width(pulls[q == c]) == pytest.approx(1.0, abs=0.05), c
