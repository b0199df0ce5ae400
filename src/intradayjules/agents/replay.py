"""``SampleViewReplayBuffer``: SB3's ``ReplayBuffer`` whose samples become tensors without a second copy.

SB3's ``ReplayBuffer._get_samples`` gathers a batch with numpy fancy indexing (a fresh array per field) and
then ``to_torch`` copies each array again (``th.tensor``). The fresh arrays belong to nobody else, so this
subclass wraps them (``th.as_tensor``: shares memory on the CPU, copies to another device as before).
Same random draws, same values, one copy of each batch less (DQN and QR-DQN use it: agents/algos.py).
Only ``_get_samples`` calls ``to_torch`` in ``ReplayBuffer``.
"""

from __future__ import annotations

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer


class SampleViewReplayBuffer(ReplayBuffer):
    def to_torch(self, array: np.ndarray, copy: bool = False) -> th.Tensor:
        return th.tensor(array, device=self.device) if copy else th.as_tensor(array, device=self.device)
