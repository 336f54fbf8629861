"""Efficient CNN building blocks, one module per family, re-exported here.

* ``layers``    -- conv_bn_act (Conv -> BN -> activation, the one builder all blocks use)
* ``mobilenet`` -- DepthwiseSeparableConv, InvertedResidual (MobileNet v1/v2/v3)
* ``se``        -- SqueezeExcite
* ``shuffle``   -- channel_shuffle, ShuffleV1Unit, ShuffleV2Block
* ``inception`` -- Inception / Xception / ResNeXt / IGC pieces
* ``ghost``     -- GhostModule
"""
from .layers import *  # noqa: F401,F403
from .mobilenet import *  # noqa: F401,F403
from .se import *  # noqa: F401,F403
from .shuffle import *  # noqa: F401,F403
from .inception import *  # noqa: F401,F403
from .ghost import *  # noqa: F401,F403
