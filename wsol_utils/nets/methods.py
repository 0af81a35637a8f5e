"""The map methods, each declared in one place: CAM, ACoL and HCLNet (docs/methods.md §1.3-§1.5).

A method is a :class:`MapMethod`: its name, whether it has a second branch and, if so, *what branch B's features
are multiplied by* (:attr:`MapMethod.b_input`), its paper's default fusion and the options it reads. Models,
the engine, the suite and the explorer ask this registry instead of branching on method names, so a new method
is one decorated function (the timm ``register_model`` idea)::

    @register_method("my_method", label="Mine", default_fusion="add", options=("delta",), paper="...")
    def my_b_input(features, chosen_map, options):      # (B, K, h, w), (B, h', w') -> (B, 1, h, w)
        return erasing_mask(features, chosen_map, options.delta)

The registry is a module-level table, like timm's: registering is the only way to change it, and
:func:`unregister_method` undoes a registration (tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from wsol_utils.base.registry import Registry
from wsol_utils.nets.erasing import check_delta, complementary_weights, erasing_mask

__all__ = [
    "BInput",
    "MapMethod",
    "MethodOptions",
    "get_method",
    "list_methods",
    "register_method",
    "unregister_method",
]


@dataclass(frozen=True)
class MethodOptions:
    """The options a method's branch-B input may read (each method declares which in :attr:`MapMethod.options`).

    delta: erasing threshold in ``(0, 1)`` on the normalized map (ACoL; official 0.6, wsoleval 0.7).
    detach_complement: stop the gradient through ``1 - M_A`` (HCLNet; default ``True``).
    """

    delta: float = 0.6
    detach_complement: bool = True


#: ``(features (B, K, h, w), chosen raw map of branch A (B, h', w'), options) -> weights (B, 1, h, w)``.
BInput = Callable[[Tensor, Tensor, MethodOptions], Tensor]


@dataclass(frozen=True)
class MapMethod:
    """One map method.

    Attributes:
        name: registry key (``"cam"``, ``"acol"``, ``"hclnet"``).
        label: display name (``"CAM"``).
        b_input: what branch B's features are multiplied by, per cell; ``None`` for one-branch methods.
        default_fusion: the paper's fusion of the two branches' maps (``None`` for one-branch methods).
        options: the :class:`MethodOptions` fields this method reads (a knob outside it changes nothing).
        paper: where the method is defined.
        b_input_text: how to name branch B's input in figures, a ``str.format`` template over the options
            (``"M_A < {delta:.2f}"``).
    """

    name: str
    label: str
    b_input: BInput | None
    default_fusion: str | None
    options: tuple[str, ...]
    paper: str
    b_input_text: str = ""

    @property
    def two_branch(self) -> bool:
        """Whether the method has a branch B (and so a fused map)."""
        return self.b_input is not None

    @property
    def branches(self) -> tuple[str, ...]:
        """The maps the method gives: ``("a",)`` or ``("a", "b", "fused")``."""
        return ("a", "b", "fused") if self.two_branch else ("a",)

    @property
    def main_branch(self) -> str:
        """The map the papers score: ``"fused"`` for two-branch methods, else ``"a"``."""
        return self.branches[-1]

    def uses(self, option: str) -> bool:
        """Whether the option (``"delta"``, ``"detach_complement"``) changes this method's maps."""
        return option in self.options

    def describe_b_input(self, options: MethodOptions) -> str:
        """``b_input_text`` filled in with ``options`` (e.g. ``"M_A < 0.60"``); empty for one-branch methods."""
        return self.b_input_text.format(**vars(options))

    def branch_b_weights(self, features: Tensor, chosen_map: Tensor, options: MethodOptions) -> Tensor:
        """``(B, 1, h, w)`` in ``[0, 1]``: what branch B's features ``(B, K, h, w)`` are multiplied by, given the
        chosen class's raw map of branch A ``(B, h', w')``. A ValueError for one-branch methods."""
        if self.b_input is None:
            raise ValueError(
                f"method {self.name!r} has no branch B; two-branch methods: "
                f"{[m for m in list_methods() if get_method(m).two_branch]}"
            )
        return self.b_input(features, chosen_map, options)

    def erase(self, features: Tensor, chosen_map: Tensor, options: MethodOptions) -> Tensor:
        """What branch B sees: ``features * branch_b_weights`` ``(B, K, h, w)``, broadcast over channels."""
        return features * self.branch_b_weights(features, chosen_map, options)


_REGISTRY: Registry[MapMethod] = Registry(
    "method",
    unknown="unknown method {name!r}; valid methods: {names}",
    duplicate="register_method: a method named {name!r} is already registered",
)


def register_method(
    name: str,
    *,
    label: str,
    default_fusion: str | None,
    options: tuple[str, ...] = (),
    paper: str = "",
    b_input_text: str = "",
) -> Callable[[BInput | None], BInput | None]:
    """Decorator registering a method under ``name``, given its branch-B input function (see the module doc).

    A one-branch method registers ``None``: ``register_method("cam", ...)(None)``. A name may be registered
    once (a ValueError otherwise); ``options`` must be :class:`MethodOptions` fields.
    """
    known = set(MethodOptions.__dataclass_fields__)
    if not set(options) <= known:
        raise ValueError(
            f"register_method({name!r}): unknown option(s) {sorted(set(options) - known)}; known: {sorted(known)}"
        )

    def decorator(b_input: BInput | None) -> BInput | None:
        if (b_input is None) != (default_fusion is None):
            raise ValueError(
                f"register_method({name!r}): a two-branch method needs a default fusion, a one-branch method none"
            )
        _REGISTRY.add(name, MapMethod(name, label, b_input, default_fusion, tuple(options), paper, b_input_text))
        return b_input

    return decorator


def unregister_method(name: str) -> None:
    """Remove a registered method (for tests that register a toy one)."""
    _REGISTRY.remove(name)


def get_method(name: str) -> MapMethod:
    """The registered method ``name``; a ValueError listing the valid names otherwise."""
    return _REGISTRY.get(name)


def list_methods() -> tuple[str, ...]:
    """Registered method names, in registration order (``cam``, ``acol``, ``hclnet`` first)."""
    return _REGISTRY.names()


# -- the three methods of the papers ---------------------------------------------------------------------------

register_method(
    "cam",
    label="CAM",
    default_fusion=None,
    paper="Zhou et al., CVPR 2016; the class activation map (docs/methods.md §1.1)",
)(None)


@register_method(
    "acol",
    label="ACoL",
    default_fusion="max",
    options=("delta",),
    paper="Zhang et al., CVPR 2018, Algorithm 1 (docs/methods.md §1.3)",
    b_input_text="M_A < {delta:.2f}",
)
def acol_b_input(features: Tensor, chosen_map: Tensor, options: MethodOptions) -> Tensor:
    """ACoL threshold erasing: keep the cells where ``M_A < delta`` (detached 0/1 mask, docs/methods.md §1.3)."""
    return erasing_mask(features, chosen_map, check_delta(options.delta))


@register_method(
    "hclnet",
    label="HCLNet",
    default_fusion="add",
    options=("detach_complement",),
    paper="HCLNet, the complementary map C-CAM (docs/methods.md §1.4)",
    b_input_text="1 - M_A",
)
def hclnet_b_input(features: Tensor, chosen_map: Tensor, options: MethodOptions) -> Tensor:
    """HCLNet complementary map: ``1 - M_A`` (gradient through it only if ``detach_complement`` is False)."""
    return complementary_weights(features, chosen_map, options.detach_complement)
