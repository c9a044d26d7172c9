"""f_NF of Sec. 3.1: the normalizing flow, a pure ``nn.Module`` (FrEIA blocks, no training loop,
no I/O).

>>> import torch
>>> flow = DifferNetFlow(dim=8, n_blocks=2, hidden=16, layers=3, alpha=3.0, seed=0)
>>> flow.nll(torch.zeros(4, 8)).shape
torch.Size([4])
"""

from __future__ import annotations

import math
from collections.abc import Callable

import FrEIA.framework as Ff
import FrEIA.modules as Fm
import numpy as np
import torch
from torch import nn


class AtanClamp:
    """f such that FrEIA's ``clamp * f(s)`` is Eq. 2: (2 alpha / pi) * atan(s / alpha).

    FrEIA's built-in "ATAN" computes alpha * 0.636 * atan(s), which is not Eq. 2.
    """

    def __init__(self, alpha: float):
        self.alpha = alpha

    def __call__(self, s: torch.Tensor) -> torch.Tensor:
        return (2.0 / math.pi) * torch.atan(s / self.alpha)


class AsFloat32(nn.Module):
    """The subnetwork's output in at least fp32 (a no-op at fp32 and fp64): under bf16 autocast
    the dense layers run in bf16, while the coupling's scale, shift and log-determinant stay
    fp32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def fully_connected(hidden: int, layers: int) -> Callable[[int, int], nn.Module]:
    """Subnetwork constructor: ``layers`` hidden dense layers with ReLU (Sec. 4.2, Fig. 3)."""

    def build(dim_in: int, dim_out: int) -> nn.Module:
        modules: list[nn.Module] = []
        width = dim_in
        for _ in range(layers):
            modules += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        modules += [nn.Linear(width, dim_out), AsFloat32()]  # no parameters: the same state
        return nn.Sequential(*modules)

    return build


class DifferNetFlow(nn.Module):
    """f_NF of Sec. 3.1: blocks of a fixed random permutation and a GLOW affine coupling whose
    one subnetwork regresses both scale and shift (Fig. 3), with soft clamping (Eq. 2)."""

    def __init__(self, dim: int, n_blocks: int, hidden: int, layers: int, alpha: float, seed: int):
        super().__init__()
        self.dim = dim
        # PermuteRandom(seed=k) calls np.random.seed(k); keep NumPy's global state untouched,
        # and draw the initial weights from the cell seed without touching torch's global RNG.
        numpy_state = np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                inn = Ff.SequenceINN(dim)
                for k in range(n_blocks):
                    inn.append(Fm.PermuteRandom, seed=(seed * 1009 + k) % 2**32)
                    inn.append(
                        Fm.GLOWCouplingBlock,
                        subnet_constructor=fully_connected(hidden, layers),
                        clamp=alpha,
                        clamp_activation=AtanClamp(alpha),
                    )
        finally:
            np.random.set_state(numpy_state)
        self.inn = inn

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z = f_NF(y) and log|det dz/dy| per sample."""
        z, log_jac_det = self.inn(y)
        return z, log_jac_det

    def nll(self, y: torch.Tensor) -> torch.Tensor:
        """L(y) of Eq. 4: ||z||^2 / 2 - log|det dz/dy| per sample."""
        z, log_jac_det = self(y)
        return 0.5 * z.pow(2).sum(dim=1) - log_jac_det

    def latent_nll(self, y: torch.Tensor) -> torch.Tensor:
        """-log p_Z(f_NF(y)) with p_Z = N(0, I), the summand of Eq. 5."""
        z, _ = self(y)
        return 0.5 * z.pow(2).sum(dim=1) + 0.5 * self.dim * math.log(2 * math.pi)
