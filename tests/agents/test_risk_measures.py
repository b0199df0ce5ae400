"""Risk measures over quantiles, against hand computations and an independent numpy reference."""

import numpy as np
import pytest
import torch

from intradayjules.agents.risk_measures import RiskMeasure, cvar_weights, risk_action, risk_values


def _np_cvar(q: np.ndarray, alpha: float, reps: int = 1000) -> float:
    """Reference: each quantile stands for mass 1/N; repeat each `reps` times (equal-mass atoms) and average
    the lowest alpha share of them. Exact when alpha * N * reps is an integer."""
    atoms = np.sort(np.repeat(q, reps))
    k = alpha * len(atoms)
    assert abs(k - round(k)) < 1e-9
    return float(atoms[: int(round(k))].mean())


def test_hand_computed_values():
    # one observation, N = 4 quantiles, two actions; action 0 is a wide distribution, action 1 a sure 1
    q = torch.tensor([[[7.0, 1.0], [-4.0, 1.0], [1.0, 1.0], [0.0, 1.0]]])  # unsorted on purpose
    torch.testing.assert_close(risk_values(q, "mean", 1.0, 0.0), torch.tensor([[1.0, 1.0]]))
    # worst half of {-4, 0, 1, 7}: (-4 + 0) / 2
    torch.testing.assert_close(risk_values(q, "cvar", 0.5, 0.0), torch.tensor([[-2.0, 1.0]]))
    # alpha = 0.375: all of -4 (mass .25) and half of 0 (mass .125): (-4*.25 + 0*.125) / .375
    torch.testing.assert_close(risk_values(q, "cvar", 0.375, 0.0), torch.tensor([[-1.0 / 0.375, 1.0]]))
    # population sd of {7, -4, 1, 0}: mean 1, squares 36 + 25 + 0 + 1 = 62, /4 -> sqrt(15.5)
    sd = 15.5 ** 0.5
    torch.testing.assert_close(risk_values(q, "mean_std", 1.0, 0.5), torch.tensor([[1.0 - 0.5 * sd, 1.0]]))
    # the choice: mean ties -> first action; cvar and mean_std prefer the sure thing
    assert risk_action(q + torch.tensor([0.1, 0.0]), "mean", 1.0, 0.0).tolist() == [0]
    assert risk_action(q + torch.tensor([0.1, 0.0]), "cvar", 0.5, 0.0).tolist() == [1]
    assert risk_action(q + torch.tensor([0.1, 0.0]), "mean_std", 1.0, 0.5).tolist() == [1]


@pytest.mark.parametrize("n,alpha", [(50, 0.25), (50, 0.1), (25, 0.3), (8, 0.05), (8, 1.0), (200, 0.013)])
def test_cvar_matches_the_equal_mass_atom_reference(n, alpha):
    rng = np.random.default_rng(n)
    q = rng.standard_t(3, size=(16, n, 3)).astype(np.float64)
    got = risk_values(torch.as_tensor(q), "cvar", alpha, 0.0).numpy()
    reps = 1000
    for b in range(16):
        for a in range(3):
            assert got[b, a] == pytest.approx(_np_cvar(q[b, :, a], alpha, reps), rel=1e-9, abs=1e-12)


def test_cvar_limits_and_weights():
    q = torch.randn(32, 40, 5, dtype=torch.float64)
    torch.testing.assert_close(risk_values(q, "cvar", 1.0, 0.0), q.mean(dim=1))  # alpha 1: the mean
    torch.testing.assert_close(risk_values(q, "cvar", 1 / 40, 0.0), q.min(dim=1).values)  # one atom: the min
    w = cvar_weights(40, 0.3, torch.float64, torch.device("cpu"))
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-12) and bool((w >= 0).all())


def test_mean_std_matches_numpy():
    q = np.random.default_rng(3).normal(size=(10, 30, 4))
    got = risk_values(torch.as_tensor(q), "mean_std", 1.0, 1.7).numpy()
    np.testing.assert_allclose(got, q.mean(axis=1) - 1.7 * q.std(axis=1, ddof=0), rtol=1e-12)


def test_scripted_function_equals_python():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(risk_values)
    q = torch.randn(100, 50, 3)
    for m, a, lam in (("mean", 1.0, 0.0), ("cvar", 0.1, 0.0), ("mean_std", 1.0, 0.8)):
        assert torch.equal(scripted(q, m, a, lam), risk_values(q, m, a, lam))


def test_measure_validation_names_the_rule():
    with pytest.raises(ValueError, match="one of"):
        RiskMeasure("var")
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\]"):
        RiskMeasure("cvar", alpha=0.0)
    with pytest.raises(ValueError, match="lambda must be >= 0"):
        RiskMeasure("mean_std", lam=-1.0)
