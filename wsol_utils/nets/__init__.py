"""Layer 1, networks: what turns an image into class scores and localization maps.

Registries of backbones (:mod:`~wsol_utils.nets.backbones`) and map methods (:mod:`~wsol_utils.nets.methods`),
the models behind :func:`~wsol_utils.nets.models.create_model`, ACoL's erasing and HCLNet's complementary map
(:mod:`~wsol_utils.nets.erasing`), fusion (:mod:`~wsol_utils.nets.fusion`), the one map normalization
(:mod:`~wsol_utils.nets.maps`) and pretrained weights (:mod:`~wsol_utils.nets.pretrained`).

May import: :mod:`wsol_utils.base`.
"""
