"""The ``groups`` argument: its checks against the input and weight shapes.

With ``groups = g`` the C input channels and the K filters are cut into g equal groups;
filter k sees only the ``C/g`` channels of group ``k // (K/g)``, so the weights have shape
``(K, C/g, fh, fw)`` (PyTorch's layout).
"""

from __future__ import annotations

from numbaconv._validation import as_int


def as_groups(groups: object) -> int:
    """``groups`` as a Python int ``>= 1``."""
    if type(groups) is int and groups >= 1:  # the common case, first
        return groups
    try:
        value = as_int("groups", groups)
    except TypeError:
        raise TypeError(
            f"groups must be a positive int, got {groups!r} ({type(groups).__name__})"
        ) from None
    if value < 1:
        raise ValueError(f"groups must be a positive int, got {value} "
                         f"(non-positive groups is not supported)")
    return value


def check_grouped_shapes(groups: int, x_shape: tuple[int, ...],
                         w_shape: tuple[int, ...], layout: str = "(K, C/groups, fh, fw)") -> None:
    """Raise unless ``groups`` divides the input channels ``x_shape[1]`` and the filters
    ``w_shape[0]``, and ``w_shape[1]`` is ``C/groups``."""
    c, k, c_group = x_shape[1], w_shape[0], w_shape[1]
    if c % groups:
        raise ValueError(
            f"Given groups={groups}, expected input{list(x_shape)} to have a number of "
            f"channels divisible by {groups}, but got {c} channels")
    if k % groups:
        raise ValueError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension "
            f"0, but got weight of size {list(w_shape)} instead (the {k} filters must be "
            f"divisible by groups)")
    if c_group * groups != c:
        raise ValueError(
            f"Given groups={groups}, weight of size {list(w_shape)}, expected "
            f"input{list(x_shape)} to have {c_group * groups} channels, but got {c} channels "
            f"instead (weight must be {layout} = ({k}, {c // groups}, ...))")
