"""Actions -> target positions and orders, the environment's rule in plain Python.

The step kernel (``env/kernel.py``) turns an action into orders inside numba; a live loop and the
pre-trade wrapper (``risk/pretrade_env.py``) need the same decision outside it, before any order goes
out. :func:`decide` repeats the kernel's arithmetic in the kernel's order (a test checks it against the
kernel on random states), so both sides compute the same shares to the last bit.

For one account of K symbols, with ``unit[k]`` in {-1, 0, +1} the current target direction, ``target[k]``
the current target (shares), ``pos[k]`` the position (shares), ``close[k]`` the decision bar's close (USD)
and ``cash`` (USD):

* ``eq0 = cash + sum_k pos[k] * close[k]`` (summed in symbol order);
* the action sets the requested units ``req``: single mode ``req[0] = action - 1`` (0 short, 1 flat,
  2 long); multi mode ``action = 0`` changes nothing, ``action = 1 + 3k + j`` sets ``req[k] = j - 1``;
  a symbol whose requested unit differs from ``unit[k]`` is *changed*;
* a changed symbol's new target is ``req[k] * floor(position_size * max(eq0, 0) / close[k])`` shares;
* multi mode: when any symbol changed and ``sum_k |new target_k| * close[k] / eq0`` exceeds
  ``max_gross_exposure * (1 + 1e-9)``, every change is refused (``limit_hit``);
* membership (``env/membership.py``): a symbol with ``tradable[k]`` False gets ``req[k] = 0``, target 0
  and the order ``-pos[k]`` (closed in full at the next open); an action that asks it for a non-flat
  target (single mode: any action but flat; multi mode: ``1 + 3k + j`` with ``j != 1``) is *refused*;
  it is *changed* when its unit or position is not 0, and the gross limit never reverts it;
* the order of symbol k is ``new target_k - pos[k]`` when it changed (or, under ``market.unfilled =
  carry``, always, or when it is not tradable), else 0.

An unfilled order is cancelled (``cancel``): afterwards the target is the position. Under ``carry`` the
target stays and the rest is ordered again at every bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Intent:
    """What an action asks for. Per symbol: ``req`` units, ``changed``, ``new_target`` (shares) and
    ``orders`` (signed shares to trade); ``eq0`` the equity at the decision (USD); ``limit_hit`` when
    the gross limit refused the change; ``refused`` per symbol: the membership rule refused what the
    action asked for it."""

    req: tuple[int, ...]
    changed: tuple[bool, ...]
    new_target: tuple[float, ...]
    orders: tuple[float, ...]
    eq0: float
    limit_hit: bool
    refused: tuple[bool, ...] = ()


def n_actions(n_symbols: int, multi: bool) -> int:
    return 1 + 3 * n_symbols if multi else 3


def noop_action(unit: Sequence[int], multi: bool) -> int:
    """The action that changes nothing: 0 (multi) or the current unit's action (single)."""
    return 0 if multi else int(unit[0]) + 1


def equity(cash: float, pos: Sequence[float], close: Sequence[float]) -> float:
    """``cash + sum_k pos[k] * close[k]`` in symbol order (the kernel's order)."""
    eq = float(cash)
    for p, c in zip(pos, close):
        eq += float(p) * float(c)
    return eq


def decide(action: int, unit: Sequence[int], target: Sequence[float], pos: Sequence[float],
           close: Sequence[float], cash: float, *, multi: bool, position_size: float, max_gross_exposure: float,
           carry: bool = False, tradable: Sequence[bool] | None = None) -> Intent:
    """The orders ``action`` places (module docstring); raises ``ValueError`` for an action out of range.
    ``tradable``: per symbol, may it be held now (None: all)."""
    K = len(pos)
    a = int(action)
    if not 0 <= a < n_actions(K, multi):
        raise ValueError(f"action {a} is not in [0, {n_actions(K, multi)})")
    eq0 = equity(cash, pos, close)
    req = [int(u) for u in unit]
    changed = [False] * K
    if multi:
        if a > 0:
            k = (a - 1) // 3
            req[k] = (a - 1) % 3 - 1
            changed[k] = req[k] != int(unit[k])
    else:
        req[0] = a - 1
        changed[0] = req[0] != int(unit[0])
    blocked = [False] * K if tradable is None else [not bool(x) for x in tradable]
    refused = [False] * K
    for k in range(K):
        if blocked[k]:
            asked = (not multi) or (a > 0 and (a - 1) // 3 == k)
            refused[k] = asked and req[k] != 0
            req[k] = 0
            changed[k] = int(unit[k]) != 0 or float(pos[k]) != 0.0
    eqp = eq0 if eq0 > 0.0 else 0.0
    new_target = [float(x) for x in target]
    gross = 0.0
    any_changed = False
    for k in range(K):
        if blocked[k]:
            new_target[k] = 0.0
        elif changed[k]:
            any_changed = True
            sh = math.floor(position_size * eqp / float(close[k]))
            new_target[k] = float(req[k] * sh)
        gross += abs(new_target[k]) * float(close[k])
    limit = False
    if multi and any_changed:
        if gross / (eq0 if eq0 > 0.0 else 1e-9) > max_gross_exposure * (1.0 + 1e-9):
            limit = True
            for k in range(K):
                if changed[k] and not blocked[k]:
                    changed[k] = False
                    new_target[k] = float(target[k])
    orders = tuple(new_target[k] - float(pos[k]) if (carry or changed[k] or blocked[k]) else 0.0
                   for k in range(K))
    return Intent(tuple(req), tuple(changed), tuple(new_target), orders, eq0, limit, tuple(refused))
