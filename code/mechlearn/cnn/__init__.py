"""Part I, convolutional networks from scratch on torch tensors (ARENA 0.2).

* `~mechlearn.cnn.functional` — ``conv1d``, ``conv2d``, ``maxpool2d`` and padding through ``as_strided`` (Day 14).
* `~mechlearn.cnn.layers` — ``Linear``, ``ReLU``, ``Flatten``, ``Conv2d``, ``MaxPool2d``, ``BatchNorm2d`` (Days 13–15).
* `~mechlearn.cnn.resnet` — residual blocks and a ResNet with torchvision's parameter names (Day 16).

Each equals ``torch.nn`` / ``torch.nn.functional`` with copied weights (see the tests). Importing it imports torch.
"""

from mechlearn._optional import require

require("torch", "mechlearn.cnn")  # before the submodules, so a missing torch names its extra

from mechlearn.cnn import functional
from mechlearn.cnn.layers import BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU
from mechlearn.cnn.resnet import BlockGroup, ResidualBlock, ResNet

__all__ = ["functional", "Linear", "ReLU", "Flatten", "Conv2d", "MaxPool2d", "BatchNorm2d", "ResidualBlock", "BlockGroup", "ResNet"]
