"""FlowRL objective (docs/design.md 4): hand values, gradients with the importance weight held fixed,
the LAD-kl equivalence of docs/design.md 2.6 in the exact bandit, robustness and padding.

About finite differences: the weight w = min(pi_theta/pi_old, clip) is *detached* by design (an
off-policy correction, not something to optimise), so autograd returns d(w delta^2)/d logprobs with w
frozen: 2 w delta / len on each real token. A plain central difference of the reported loss also moves
w and measures an extra (dw/dlogprob) delta^2 = w delta^2 (unclipped w = exp(sum of log-ratios)). So the
FD check must hold w fixed: we shift old_logprobs together with logprobs (the log-ratio, hence w, stays
put) and pass ref_logprobs explicitly (otherwise ref := old_logprobs would move delta too). We also
check the analytic 2 w delta / len, and that the plain FD differs from autograd by exactly w delta^2.
"""

from __future__ import annotations

import math

import pytest
import torch

from ladkit.errors import LadkitError
from ladkit.objectives import FlowRLConfig, LADConfig, aggregate, flowrl_loss, lad_loss


def _scalar(logprobs, old, advantages, mask, config, ref=None, log_z=None):
    return aggregate(flowrl_loss(logprobs, old, advantages, mask, config, ref, log_z), mask)


def _batch(mask: torch.Tensor, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    n, t = mask.shape
    old = -torch.rand(n, t, generator=g, dtype=torch.float64) * 2 - 0.2  # [N, T]
    logprobs = (old + 0.2 * torch.randn(n, t, generator=g, dtype=torch.float64)).requires_grad_(True)
    ref = old + 0.3 * torch.randn(n, t, generator=g, dtype=torch.float64)
    advantages = torch.randn(n, generator=g, dtype=torch.float64)
    log_z = (0.5 * torch.randn(n, generator=g, dtype=torch.float64)).requires_grad_(True)
    return logprobs, old, ref, advantages, log_z


def _analytic(logprobs, old, ref, advantages, log_z, mask, config):
    """(w [N], delta [N], lengths [N]) computed here from the definitions, float64."""
    m = mask.to(torch.float64)
    lengths = m.sum(-1)
    delta = log_z + (logprobs * m).sum(-1) / lengths - config.beta * advantages - (ref * m).sum(-1) / lengths
    seq_log_ratio = ((logprobs - old) * m).sum(-1)
    w = seq_log_ratio.exp() if config.importance_clip is None else seq_log_ratio.exp().clamp(max=config.importance_clip)
    return w.detach(), delta.detach(), lengths


def test_loss_by_hand():
    # beta = 2, ref := old (ref_logprobs None), importance_clip 10 (inactive here).
    # Row 0: log-probs [-1, -3], old [-1.5, -2.5]: sequence log-ratio 0 so w = 1; mean logp = mean ref = -2,
    #        delta = log Z - beta A = 1.5 - 2 * 0.5 = 0.5; loss 1 * 0.25 = 0.25.
    # Row 1: one real token, logp -1, old -1 - log 2: w = 2; delta = 0.2 + (-1) - 2 * 0.1 - (-1 - log 2)
    #        = log 2; loss 2 (log 2)^2 = 0.960906. With importance_clip = 1.5: w = 1.5, loss 0.720680.
    logprobs = torch.tensor([[-1.0, -3.0], [-1.0, float("nan")]], dtype=torch.float64)
    old = torch.tensor([[-1.5, -2.5], [-1.0 - math.log(2), 0.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1], [1, 0]], dtype=torch.bool)
    advantages = torch.tensor([0.5, 0.1], dtype=torch.float64)
    log_z = torch.tensor([1.5, 0.2], dtype=torch.float64)
    out = flowrl_loss(logprobs, old, advantages, mask, FlowRLConfig(beta=2.0), log_z=log_z)
    torch.testing.assert_close(out.losses, torch.tensor([0.25, 2 * math.log(2) ** 2], dtype=torch.float64))
    assert out.metrics["flowrl/weight_mean"].item() == pytest.approx(1.5)
    assert out.metrics["flowrl/residual_abs"].item() == pytest.approx((0.5 + math.log(2)) / 2)
    clipped = flowrl_loss(logprobs, old, advantages, mask, FlowRLConfig(beta=2.0, importance_clip=1.5), log_z=log_z)
    assert clipped.losses[1].item() == pytest.approx(1.5 * math.log(2) ** 2, rel=1e-12)


def test_log_z_gradient_matches_finite_differences(ragged_mask, central_diff):
    # w does not depend on log Z, so the plain FD of the reported loss is the right check: 2 w delta / N.
    logprobs, old, ref, advantages, log_z = _batch(ragged_mask, seed=1)
    config = FlowRLConfig(beta=1.5)
    (autograd,) = torch.autograd.grad(_scalar(logprobs, old, advantages, ragged_mask, config, ref, log_z), log_z)
    numeric = central_diff(lambda z: _scalar(logprobs, old, advantages, ragged_mask, config, ref, z), log_z)
    torch.testing.assert_close(autograd, numeric, rtol=1e-7, atol=1e-10)
    w, delta, _ = _analytic(logprobs, old, ref, advantages, log_z, ragged_mask, config)
    torch.testing.assert_close(autograd, 2 * w * delta / 3, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("importance_clip", [None, 10.0])
def test_logprob_gradient_holds_the_detached_weight_fixed(importance_clip, ragged_mask, central_diff):
    logprobs, old, ref, advantages, log_z = _batch(ragged_mask, seed=2)
    config = FlowRLConfig(beta=1.5, importance_clip=importance_clip)
    loss = _scalar(logprobs, old, advantages, ragged_mask, config, ref, log_z)
    (autograd,) = torch.autograd.grad(loss, logprobs)
    w, delta, lengths = _analytic(logprobs, old, ref, advantages, log_z, ragged_mask, config)
    assert w.max().item() < 10.0  # the clip is inactive: w = exp(sequence log-ratio)
    # analytic: d/d logprob_t of w (... + logp_t / len ...)^2, mean over N = 3
    analytic = (2 * w * delta / (lengths * 3))[:, None] * ragged_mask
    torch.testing.assert_close(autograd, analytic, rtol=1e-12, atol=1e-14)
    # FD with w fixed: logprobs and old_logprobs move together, ref is explicit
    held = central_diff(
        lambda lp: _scalar(lp, old + (lp - logprobs.detach()), advantages, ragged_mask, config, ref, log_z),
        logprobs,
    )
    torch.testing.assert_close(autograd, held, rtol=1e-7, atol=1e-10)
    # plain FD also differentiates w = exp(sum_t l_t): it adds w delta^2 / N on every real token
    plain = central_diff(lambda lp: _scalar(lp, old, advantages, ragged_mask, config, ref, log_z), logprobs)
    torch.testing.assert_close(plain - autograd, (w * delta**2 / 3)[:, None] * ragged_mask, rtol=1e-6, atol=1e-9)


def test_clipped_weight_is_locally_constant_so_plain_fd_agrees(ragged_mask, central_diff):
    # With every sequence log-ratio above log(importance_clip) the weight is the constant clip, and the
    # plain FD of the reported loss equals autograd (here ref := old, so delta uses old_logprobs).
    logprobs, old, _, advantages, log_z = _batch(ragged_mask, seed=3)
    logprobs = (logprobs.detach() + 1.0).requires_grad_(True)  # +1 per token: sequence log-ratios ~ 2 to 4
    config = FlowRLConfig(beta=1.5, importance_clip=1.5)
    assert (((logprobs - old) * ragged_mask).sum(-1) > math.log(1.5) + 0.1).all()
    (autograd,) = torch.autograd.grad(_scalar(logprobs, old, advantages, ragged_mask, config, None, log_z), logprobs)
    plain = central_diff(lambda lp: _scalar(lp, old, advantages, ragged_mask, config, None, log_z), logprobs)
    torch.testing.assert_close(autograd, plain, rtol=1e-7, atol=1e-10)


def test_missing_or_misshapen_log_z_is_an_error(ragged_mask):
    logprobs = torch.zeros(ragged_mask.shape)
    with pytest.raises(LadkitError, match="log_z"):
        flowrl_loss(logprobs, logprobs, torch.zeros(3), ragged_mask)
    with pytest.raises(LadkitError, match="log_z"):
        flowrl_loss(logprobs, logprobs, torch.zeros(3), ragged_mask, log_z=torch.zeros(3, 1))


# ------------------------------------------------------------ docs/design.md 2.6: LAD-kl vs FlowRL


@pytest.mark.parametrize("inv_eta", [0.5, 4.0])
@pytest.mark.parametrize("log_z_value", [None, -0.7, 2.0])
def test_lad_kl_expected_gradient_equals_flowrl_with_beta_inv_eta(inv_eta, log_z_value):
    # Exact bandit, T = 1, expectation over y ~ pi_old via weights = pi_old (pi_old != pi_theta here).
    # LAD-kl: E_old[r (l - u + 1) grad log pi] = sum_k pi_k (l_k - A_k/eta) grad log pi_k, since
    #         sum_k pi_k grad log pi_k = 0 removes the "+1".
    # FlowRL (ref := old, beta = 1/eta, unclipped w = r, delta = log Z + l - beta A):
    #         E_old[r 2 delta grad log pi] = 2 sum_k pi_k (l_k - A_k/eta) grad log pi_k + 2 log Z * 0.
    # So grad FlowRL = 2 grad LAD-kl for *every* log Z (not only the optimum), on- or off-policy; the 2 is
    # the square's derivative. (With T > 1 FlowRL length-normalises its log-probs and the identity breaks.)
    theta = torch.tensor([0.3, -0.5, 1.2, 0.0, -1.0, 0.7], dtype=torch.float64)  # [K]
    old_logits = torch.tensor([0.0, 0.4, 0.6, -0.3, -0.2, 0.1], dtype=torch.float64)
    advantages = torch.tensor([1.5, -0.3, 0.8, -1.2, 0.1, -0.9], dtype=torch.float64)
    mask = torch.ones(6, 1, dtype=torch.bool)
    old = torch.log_softmax(old_logits, 0)[:, None]  # [K, 1]
    pi_old = old.exp()[:, 0]

    def grad_of(objective):
        t = theta.clone().requires_grad_(True)
        logprobs = torch.log_softmax(t, 0)[:, None]  # [K, 1]
        if objective == "lad":
            output = lad_loss(logprobs, old, advantages, mask, LADConfig(divergence="kl", inv_eta=inv_eta))
        else:
            if log_z_value is None:  # FlowRL's optimum: d/d log Z = 2 E_theta[delta] = 0
                log_z = (inv_eta * advantages - (logprobs - old)[:, 0]).detach() @ logprobs.detach().exp()[:, 0]
            else:
                log_z = torch.tensor(log_z_value, dtype=torch.float64)
            config = FlowRLConfig(beta=inv_eta, importance_clip=None)
            output = flowrl_loss(logprobs, old, advantages, mask, config, log_z=log_z.expand(6))
        return torch.autograd.grad(aggregate(output, mask, weights=pi_old), t)[0]

    lad, flowrl = grad_of("lad"), grad_of("flowrl")
    torch.testing.assert_close(flowrl, 2 * lad, rtol=1e-10, atol=1e-13)
    assert lad.norm().item() > 1e-2


def test_flowrl_log_z_optimum_zeroes_its_gradient():
    # delta_k = log Z + l_k - beta A_k; E_old[w delta] = sum_k pi_theta,k delta_k = 0 at
    # log Z* = sum_k pi_theta,k (beta A_k - l_k): check the optimum used above really is one.
    old = torch.log_softmax(torch.tensor([0.0, 0.4, 0.6], dtype=torch.float64), 0)[:, None]  # [K, 1]
    logprobs = torch.log_softmax(torch.tensor([0.3, -0.5, 1.2], dtype=torch.float64), 0)[:, None]
    advantages = torch.tensor([1.0, -0.5, 0.2], dtype=torch.float64)
    pi = logprobs.exp()[:, 0]
    log_z = ((2.0 * advantages - (logprobs - old)[:, 0]) @ pi).requires_grad_(True)  # one prompt: a scalar
    mask = torch.ones(3, 1, dtype=torch.bool)
    config = FlowRLConfig(beta=2.0, importance_clip=None)
    output = flowrl_loss(logprobs, old, advantages, mask, config, log_z=log_z.expand(3))
    (grad,) = torch.autograd.grad(aggregate(output, mask, weights=old.exp()[:, 0]), log_z)
    assert abs(grad.item()) < 1e-14
    output = flowrl_loss(logprobs, old, advantages, mask, config, log_z=(log_z + 0.1).expand(3))
    (grad,) = torch.autograd.grad(aggregate(output, mask, weights=old.exp()[:, 0]), log_z)
    assert grad.item() == pytest.approx(2 * 0.1, rel=1e-9)  # 2 E_theta[delta] = 2 * 0.1 off the optimum


# ---------------------------------------------------------------- robustness: extremes and padding


@pytest.mark.parametrize("importance_clip", [None, 10.0])
@pytest.mark.parametrize("per_token", [100.0, 500.0])
def test_extremes_and_nan_padding_stay_finite(importance_clip, per_token):
    mask = torch.tensor([[1] * 5 + [0]] * 4 + [[0] * 6], dtype=torch.bool)  # [5, 6]
    signs = torch.tensor([1.0, 1.0, -1.0, -1.0, 1.0])[:, None]
    old = torch.full((5, 6), -2.0)
    logprobs = old + signs * per_token
    for t in (logprobs, old):
        t.masked_fill_(~mask, float("nan"))
    logprobs[-1] = float("inf")
    logprobs.requires_grad_(True)
    advantages = torch.tensor([50.0, -50.0, 50.0, -50.0, 50.0])
    log_z = torch.tensor([3.0, -3.0, 0.0, 1.0, 2.0], requires_grad=True)
    output = flowrl_loss(logprobs, old, advantages, mask, FlowRLConfig(importance_clip=importance_clip), log_z=log_z)
    loss = aggregate(output, mask)
    grad, grad_z = torch.autograd.grad(loss, (logprobs, log_z))
    assert torch.isfinite(loss) and torch.isfinite(grad).all() and torch.isfinite(grad_z).all()
    assert all(torch.isfinite(v).all() for v in output.metrics.values()), output.metrics
    assert grad[~mask].abs().max().item() == 0.0


@pytest.mark.parametrize("with_ref", [False, True])
def test_appending_padded_columns_changes_nothing(with_ref, ragged_mask):
    logprobs, old, ref, advantages, log_z = _batch(ragged_mask, seed=4)
    config = FlowRLConfig(beta=1.5)

    def run(lp, old_lp, ref_lp, mask):
        lp, z = lp.detach().clone().requires_grad_(True), log_z.detach().clone().requires_grad_(True)
        output = flowrl_loss(lp, old_lp, advantages, mask, config, ref_lp if with_ref else None, z)
        loss = aggregate(output, mask)
        return (loss, *torch.autograd.grad(loss, (lp, z)), output.metrics)

    clean = [t.detach().masked_fill(~ragged_mask, 0.0) for t in (logprobs, old, ref)]
    loss_ref, grad_ref, grad_z_ref, metrics_ref = run(*clean, ragged_mask)
    wide_mask = torch.cat([ragged_mask, torch.zeros(3, 3, dtype=torch.bool)], dim=1)  # [3, 7]
    garbage = (float("nan"), float("inf"), float("-inf"))
    wide = [
        torch.cat([t.detach(), torch.zeros(3, 3, dtype=torch.float64)], 1).masked_fill(~wide_mask, bad)
        for t, bad in zip((logprobs, old, ref), garbage, strict=True)
    ]
    loss, grad, grad_z, metrics = run(*wide, wide_mask)
    torch.testing.assert_close(loss, loss_ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad[:, :4], grad_ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad_z, grad_z_ref, rtol=1e-12, atol=1e-14)
    assert grad[~wide_mask].abs().max().item() == 0.0
    for key, value in metrics_ref.items():
        torch.testing.assert_close(metrics[key], value, rtol=1e-12, atol=1e-14, msg=key)
