"""``DQN``: Stable-Baselines3's DQN whose gradient step is written out, bit-identical and ~1.8x cheaper.

SB3's ``DQN.train`` spends most of a step in dispatch, not arithmetic: on the quickstart's network (MLP
[64, 64], 459-dim observation, batch 64, one CPU thread) one step costs ~1.1-1.3 ms, of which the matmuls
are ~0.25 ms; the rest is autograd's graph, ~100 small ops, the replay buffer's sample object and
``Optimizer.step``'s bookkeeping (benchmarks/README.md). This class keeps everything of SB3's DQN (collection,
exploration, target sync, save/load, callbacks) and replaces the body of ``train`` by the same update with
the gradient computed by hand, for the network SB3 builds by default: ``Linear`` layers with ``ReLU``
between them.

One gradient step, B transitions ``(s, a, r, s', d)`` drawn exactly as SB3's ``ReplayBuffer.sample`` draws
them (the same two ``np.random.randint`` calls, so the same batches), ``d`` the terminal flag without
time-outs::

    y      = r + (1 - d) * gamma * max_a' Q_target(s', a')           (no gradient)
    h_0    = s,   z_i = h_{i-1} W_i^T + b_i,   h_i = relu(z_i),   Q(s, .) = z_n
    loss   = mean_b smooth_l1(Q(s_b, a_b) - y_b)                      (Huber, beta 1)
    dz_n   = onehot(a) * clamp(Q(s, a) - y, -1, 1) / B
    dW_i   = dz_i^T h_{i-1},   db_i = sum_b dz_i,   dz_{i-1} = (dz_i W_i) * [h_{i-1} > 0]

then SB3's clipping (``clip_grad_norm_``: the norm of the per-tensor norms, coefficient ``min(1, c / (norm +
1e-6))``) and the model's own optimiser, Adam's fused kernel called on the optimiser's state (its ``step``
without the Python around it; any other optimiser: its ``step``). Every op is the one autograd runs for
these layers (``addmm``/``mm``/``threshold_backward``, in the same order of operands), so parameters,
optimiser state and the logged loss come out **bit-identical** to ``stable_baselines3.DQN.train`` from the
same state and numpy seed (tests/agents/test_dqn_step.py checks it over many steps, with clipping, terminal
and timed-out transitions, and other network depths). The gradients live in one flat buffer (each
parameter's ``.grad`` a view of it).

Anything else falls back to SB3's ``train``, unchanged: a non-CPU device, another activation or feature
extractor, an n-step or memory-optimised buffer, ``VecNormalize``, an optimiser with hooks, or
``fast_step = False`` on the instance or class (benchmarks compare both with it).
:func:`fast_step_unsupported` says which.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch as th
import torch.nn.functional as F
from torch.optim import optimizer as _optimizer
from stable_baselines3 import DQN as SB3DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.dqn.policies import DQNPolicy

from .replay import SampleViewReplayBuffer

__all__ = ["DQN", "fast_step_unsupported"]


def _linear_relu_stack(seq: th.nn.Module) -> list[th.nn.Linear] | None:
    """The Linear layers of ``Linear (ReLU Linear)*`` (SB3's ``create_mlp`` with ReLU), else None."""
    mods = list(seq.children()) if isinstance(seq, th.nn.Sequential) else []
    if not mods or len(mods) % 2 == 0:
        return None
    for i, mod in enumerate(mods):
        if not isinstance(mod, th.nn.ReLU if i % 2 else th.nn.Linear):
            return None
    linears = [m for m in mods if isinstance(m, th.nn.Linear)]
    return linears if all(lin.bias is not None for lin in linears) else None


def fast_step_unsupported(model: SB3DQN) -> str | None:
    """Why ``model``'s gradient step cannot be written out (module docstring), or None when it can."""
    if not getattr(model, "fast_step", False):
        return "fast_step is off"
    if model.device.type != "cpu":
        return f"device {model.device} (the written-out step is CPU only)"
    if type(model.policy) is not DQNPolicy:
        return f"policy {type(model.policy).__name__}"
    for net in (model.q_net, model.q_net_target):
        if not isinstance(net.features_extractor, FlattenExtractor) or len(net.observation_space.shape or ()) != 1:
            return "a feature extractor other than flattening a 1-D Box"
        if _linear_relu_stack(net.q_net) is None:
            return "a Q network other than Linear layers with ReLU between them"
    rb = model.replay_buffer
    if not isinstance(rb, ReplayBuffer) or type(rb) not in (ReplayBuffer, SampleViewReplayBuffer) \
            or rb.optimize_memory_usage:
        return f"replay buffer {type(rb).__name__} (optimize_memory_usage={getattr(rb, 'optimize_memory_usage', None)})"
    if model._vec_normalize_env is not None:
        return "VecNormalize"
    arrays = (rb.observations, rb.next_observations, rb.actions, rb.rewards, rb.dones, rb.timeouts)
    dtypes = (np.float32, np.float32, np.int64, np.float32, np.float32, np.float32)
    if any(not isinstance(a, np.ndarray) or a.dtype != d or not a.flags.c_contiguous for a, d in zip(arrays, dtypes)):
        return "replay arrays of other dtypes or layouts"
    opt = model.policy.optimizer
    if len(opt.param_groups) != 1 or [id(p) for p in opt.param_groups[0]["params"]] != \
            [id(p) for p in model.q_net.parameters()]:
        return "an optimiser over other parameters"
    return None


class _Step:
    """Views of one model's replay arrays, parameters and gradients, and the step itself."""

    def __init__(self, model: SB3DQN, batch_size: int):
        self.model, self.batch_size = model, int(batch_size)
        self.rb = rb = cast(ReplayBuffer, model.replay_buffer)  # fast_step_unsupported checked its type
        self.opt = opt = model.policy.optimizer
        self.lin = _linear_relu_stack(model.q_net.q_net) or []
        self.tlin = _linear_relu_stack(model.q_net_target.q_net) or []
        self.params = list(opt.param_groups[0]["params"])
        self.flat = th.zeros(sum(p.numel() for p in self.params))
        self.grads, off = [], 0
        for p in self.params:
            self.grads.append(self.flat[off:off + p.numel()].view_as(p))
            off += p.numel()
        d = rb.observations.shape[-1]
        self.obs_all = th.from_numpy(rb.observations.reshape(-1, d))  # shares memory with the buffer
        self.next_all = th.from_numpy(rb.next_observations.reshape(-1, d))
        self.act_all = th.from_numpy(rb.actions.reshape(-1))
        self.rew_all = th.from_numpy(rb.rewards.reshape(-1))
        self.done_all = th.from_numpy(rb.dones.reshape(-1))
        self.timeout_all = th.from_numpy(rb.timeouts.reshape(-1))
        b = self.batch_size
        self.obs, self.next_obs = th.empty(b, d), th.empty(b, d)
        self.act, self.rew = th.empty(b, dtype=th.int64), th.empty(b)
        self.done, self.timeout = th.empty(b), th.empty(b)
        self.dq = th.zeros(b, int(self.lin[-1].out_features))

    @staticmethod
    def key(model: SB3DQN, batch_size: int) -> tuple[Any, ...]:
        """What the views depend on: a different key (a loaded buffer, a new optimiser...) rebuilds them."""
        return (model.fast_step, model.device, model._vec_normalize_env, model.policy, model.q_net,  # type: ignore[attr-defined]
                model.q_net_target, model.replay_buffer, model.policy.optimizer, int(batch_size))

    def _sample(self) -> tuple[th.Tensor, ...]:
        """SB3's ``ReplayBuffer.sample`` + ``_get_samples``: the same draws, written into fixed tensors."""
        rb, b = self.rb, self.batch_size
        batch_inds = np.random.randint(0, rb.buffer_size if rb.full else rb.pos, size=b)
        env_inds = np.random.randint(0, high=rb.n_envs, size=(b,))
        idx = th.from_numpy(batch_inds * rb.n_envs + env_inds)
        th.index_select(self.obs_all, 0, idx, out=self.obs)
        th.index_select(self.next_all, 0, idx, out=self.next_obs)
        th.index_select(self.act_all, 0, idx, out=self.act)
        th.index_select(self.rew_all, 0, idx, out=self.rew)
        th.index_select(self.done_all, 0, idx, out=self.done)
        th.index_select(self.timeout_all, 0, idx, out=self.timeout)
        done = self.done.mul_(self.timeout.neg_().add_(1.0))  # dones * (1 - timeouts), as SB3
        return self.obs, self.act.unsqueeze(1), self.next_obs, done.unsqueeze(1), self.rew.unsqueeze(1)

    def _clip(self, max_norm: float) -> None:
        """``clip_grad_norm_``'s arithmetic (foreach per-tensor norms, then their norm) on the flat buffer."""
        total = th.linalg.vector_norm(th.stack(th._foreach_norm(self.grads, 2.0)), 2.0)
        self.flat.mul_((max_norm / (total + 1e-6)).clamp_(max=1.0))

    def _optimise(self) -> None:
        """Adam's fused kernel on the optimiser's own state, as ``Adam.step`` calls it; else ``step``."""
        opt, group = self.opt, self.opt.param_groups[0]
        states = [opt.state.get(p) for p in self.params]
        plain_fused_adam = (type(opt) is th.optim.Adam and group.get("fused") and not group["amsgrad"]
                            and not group["maximize"] and not group.get("decoupled_weight_decay", False)
                            and not isinstance(group["lr"], th.Tensor) and not opt._optimizer_step_pre_hooks
                            and not opt._optimizer_step_post_hooks and all(states))
        if not plain_fused_adam or _optimizer._global_optimizer_pre_hooks \
                or _optimizer._global_optimizer_post_hooks:
            opt.step()
            return
        steps = [s["step"] for s in states]  # type: ignore[index]
        th._foreach_add_(steps, 1)
        beta1, beta2 = group["betas"]
        th._fused_adam_(self.params, self.grads, [s["exp_avg"] for s in states],  # type: ignore[index]
                        [s["exp_avg_sq"] for s in states], [], steps, amsgrad=False,  # type: ignore[index]
                        lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
                        eps=group["eps"], maximize=False, grad_scale=None, found_inf=None)

    def run(self, gradient_steps: int) -> list[float]:
        m, lin, tlin, n = self.model, self.lin, self.tlin, len(self.lin)
        for p, g in zip(self.params, self.grads):
            p.grad = g  # the optimiser's fallback ``step`` reads them there
        losses = th.empty(gradient_steps)
        with th.no_grad():
            for k in range(gradient_steps):
                obs, act, next_obs, done, rew = self._sample()
                h = next_obs
                for i, layer in enumerate(tlin):
                    h = th.addmm(layer.bias, h, layer.weight.t())
                    if i < n - 1:
                        h.relu_()
                target = h.amax(dim=1, keepdim=True).mul_(done.neg_().add_(1.0)).mul_(m.gamma).add_(rew)
                acts = [obs]
                for i, layer in enumerate(lin):
                    obs = th.addmm(layer.bias, obs, layer.weight.t())
                    if i < n - 1:
                        obs.relu_()
                    acts.append(obs)
                q = obs.gather(1, act)
                losses[k] = F.smooth_l1_loss(q, target)
                dz = self.dq.zero_().scatter_(1, act, q.sub_(target).clamp_(-1.0, 1.0).mul_(1.0 / self.batch_size))
                for i in range(n - 1, -1, -1):
                    th.mm(dz.t(), acts[i], out=self.grads[2 * i])
                    th.sum(dz, 0, out=self.grads[2 * i + 1])
                    if i:
                        dz = th.ops.aten.threshold_backward(th.mm(dz, lin[i].weight), acts[i], 0)
                self._clip(m.max_grad_norm)
                self._optimise()
        return losses.tolist()


class DQN(SB3DQN):
    """SB3's DQN with the written-out gradient step (module docstring); same arguments, same files.

    >>> import gymnasium as gym
    >>> model = DQN("MlpPolicy", gym.make("CartPole-v1"), learning_starts=0, buffer_size=500, seed=0)
    >>> fast_step_unsupported(model) is None, DQN.__name__
    (True, 'DQN')
    """

    fast_step: bool = True
    _step: tuple[tuple[Any, ...], _Step | None] | None = None  # (key, the step or None: unsupported)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        key = _Step.key(self, batch_size)
        if self._step is None or self._step[0] != key:  # tuple equality: identity for the objects
            self._step = (key, _Step(self, batch_size) if fast_step_unsupported(self) is None else None)
        step = self._step[1]
        if step is None:
            super().train(gradient_steps, batch_size)
            return
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses = step.run(gradient_steps)
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_step"]

    def __getstate__(self) -> dict[str, Any]:  # views of this object's buffers: rebuilt, never copied
        state = self.__dict__.copy()
        state.pop("_step", None)
        return state
