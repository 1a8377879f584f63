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
