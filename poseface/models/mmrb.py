"""Mixed multi-path residual block (MMRB, paper section 3.2, eqs. 4-10, Fig. 3).

    X1, X2 = Split(X_I)                          (4)  equal halves of C channels, no bottleneck
    P1  = PReLU(W3x3(X1))                        (5)
    P2  = PReLU(W5x5(X2))                        (6)
    P1' = PReLU(W3x3(Concat[P1, P2]))            (7)
    P2' = PReLU(W5x5(Concat[P1, P2]))            (8)
    P   = PReLU(W1x1(Concat[P1', P2']))          (9)
    X_O = X_I + P                                (10)

Channel widths (the paper gives only C and C/2 for the split): P1 and P2 have C/2 channels each,
so Concat[P1, P2] has C channels; P1' and P2' have `expansion * C/2` each and the 1x1 fusion maps
their `expansion * C` channels back to C (expansion 1 by default: 26.5 C^2 multiply-adds per pixel;
expansion 2 widens the second stage as in MSRN, whose 1x1 layer then reduces 2C -> C).
With `zero_init` the fusion conv starts at zero, so P = PReLU(0) = 0 and the block is the identity:
a model initialised from GPEN then computes exactly GPEN's function until training moves it.
"""

from __future__ import annotations

import torch
from torch import nn


class MMRB(nn.Module):
    def __init__(self, channels: int, expansion: int = 1, zero_init: bool = True):
        super().__init__()
        if channels % 2:
            raise ValueError(f"MMRB splits channels in two halves; got an odd channel count {channels}")
        half = channels // 2
        wide = half * expansion
        self.branch3 = nn.Conv2d(half, half, 3, padding=1)  # W1 of eq. 5
        self.act3 = nn.PReLU(half)
        self.branch5 = nn.Conv2d(half, half, 5, padding=2)  # W2 of eq. 6
        self.act5 = nn.PReLU(half)
        self.mix3 = nn.Conv2d(channels, wide, 3, padding=1)  # W1 of eq. 7
        self.mix_act3 = nn.PReLU(wide)
        self.mix5 = nn.Conv2d(channels, wide, 5, padding=2)  # W2 of eq. 8
        self.mix_act5 = nn.PReLU(wide)
        self.fuse = nn.Conv2d(2 * wide, channels, 1)  # W3 of eq. 9
        self.fuse_act = nn.PReLU(channels)
        if zero_init:
            nn.init.zeros_(self.fuse.weight)
            nn.init.zeros_(self.fuse.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = torch.chunk(x, 2, dim=1)
        p1 = self.act3(self.branch3(x1))
        p2 = self.act5(self.branch5(x2))
        c1 = torch.cat([p1, p2], dim=1)
        p1_mixed = self.mix_act3(self.mix3(c1))
        p2_mixed = self.mix_act5(self.mix5(c1))
        p = self.fuse_act(self.fuse(torch.cat([p1_mixed, p2_mixed], dim=1)))
        return x + p
