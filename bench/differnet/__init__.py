"""DifferNet (Rudolph, Wandt, Rosenhahn, WACV 2021): a normalizing flow on frozen multi-scale
features of transformed images (Sec. 3), scored by the mean negative log-likelihood over test
transforms (Eq. 5), localised by gradient maps (Sec. 3.3, Eq. 7).

- ``config``: ``DifferNetConfig`` (its hyperparameters, each with its paper section) and ``PRESETS``.
- ``flow``: ``DifferNetFlow``, the pure ``nn.Module`` (FrEIA coupling blocks, Eq. 1-4).
- ``detector``: ``DifferNet``, the Detector around it (its epoch step for ``bench.training``, scoring).
- ``localization``: the gradient maps.
"""

from bench.differnet.config import DifferNetConfig
from bench.differnet.detector import DifferNet
from bench.differnet.flow import AtanClamp, DifferNetFlow

__all__ = ["AtanClamp", "DifferNet", "DifferNetConfig", "DifferNetFlow"]
