"""Padding arguments: the forms ``padding`` may take and the names of the padding modes.

``padding`` is an int, a pair ``(ph, pw)`` (both sides of each axis), a pair of pairs
``((top, bottom), (left, right))``, ``'valid'`` (none) or ``'same'`` (stride 1 only; per axis
the total ``D*(f - 1)`` is split as ``before = total // 2``, ``after = total - before``, as
PyTorch does, so an even kernel pads one more at the end).  Everything resolves to the four
amounts ``(top, bottom, left, right)``; the kernels take the top and left amounts as offsets
and the output size, so asymmetric zero padding needs no kernel of its own.
"""

from __future__ import annotations

from numbaconv._validation import MAX_SIZE, as_int, as_pair

PADDING_STRINGS = ("valid", "same")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# Integer codes of the modes inside the kernels (see _pad_modes).
MODE_CODES = {name: code for code, name in enumerate(PADDING_MODES)}

Padding = int | tuple[int, int] | tuple[tuple[int, int], tuple[int, int]] | str

_FORMS_2D = ("an int, a pair (ph, pw), a pair of pairs ((top, bottom), (left, right)), "
             "'valid' or 'same'")


def _is_sequence(value: object) -> bool:
    return isinstance(value, (tuple, list))


def _side_pair(value: object, whole: object) -> tuple[int, int]:
    """One ``(before, after)`` pair of a pair of pairs, as ints ``>= 0``."""
    if not _is_sequence(value) or len(value) != 2:
        raise ValueError(f"padding must be {_FORMS_2D}, got {whole!r}")
    try:
        before, after = as_int("padding", value[0]), as_int("padding", value[1])
    except TypeError:
        raise TypeError(f"padding must be {_FORMS_2D} of ints, got {whole!r}") from None
    if before < 0 or after < 0:
        raise ValueError(f"padding must be non-negative, got {whole!r}")
    if max(before, after) >= MAX_SIZE:
        raise ValueError(f"padding = {whole!r} is too large: sizes would overflow int64 "
                         f"indexing")
    return before, after


def same_padding(size: int, dilation: int) -> tuple[int, int]:
    """``(before, after)`` of ``'same'`` for a kernel of ``size`` taps ``dilation`` apart."""
    total = dilation * (size - 1)
    return total // 2, total - total // 2


def as_padding(value: object, fh: int, fw: int, stride: tuple[int, int],
               dilation: tuple[int, int]) -> tuple[int, int, int, int]:
    """``padding`` in any of its 2-D forms as ``(top, bottom, left, right)``."""
    if type(value) is str:
        if value == "valid":
            return 0, 0, 0, 0
        if value == "same":
            if stride != (1, 1):
                raise ValueError(
                    f"padding='same' is not supported for strided convolutions, got stride "
                    f"{stride}; give the padding as numbers instead")
            return (*same_padding(fh, dilation[0]), *same_padding(fw, dilation[1]))
        raise ValueError(
            f"Invalid padding string {value!r}, should be one of {PADDING_STRINGS}")
    if _is_sequence(value) and len(value) == 2 and (
            _is_sequence(value[0]) or _is_sequence(value[1])):
        top, bottom = _side_pair(value[0], value)
        left, right = _side_pair(value[1], value)
        return top, bottom, left, right
    ph, pw = as_pair("padding", value, 0)
    return ph, ph, pw, pw


def check_padding_mode(mode: object) -> str:
    """``mode`` if it is one of :data:`PADDING_MODES`, else a ValueError (TypeError if it is
    not a string)."""
    if type(mode) is str and mode in MODE_CODES:
        return mode
    if not isinstance(mode, str):
        raise TypeError(
            f"padding_mode must be a string, one of {list(PADDING_MODES)}, got {mode!r} "
            f"({type(mode).__name__})")
    raise ValueError(
        f"padding_mode must be one of {list(PADDING_MODES)}, but got padding_mode='{mode}'")


def check_mode_fits(mode: str, x_shape: tuple[int, ...],
                    pads: tuple[int, int, int, int], op: str = "conv2d") -> None:
    """Reflect padding must be smaller than the input on its axis, circular padding no
    larger (the border is copied from the input once, never wrapped twice)."""
    if mode in ("zeros", "replicate"):
        return
    h, w = x_shape[-2], x_shape[-1]
    for axis, size, amounts in (("height", h, pads[:2]), ("width", w, pads[2:])):
        largest = max(amounts)
        if mode == "reflect" and largest >= size:
            raise ValueError(
                f"{op}: reflect padding must be smaller than the input on its axis: padding "
                f"{amounts} (before, after) on the {axis} axis of size {size} of input "
                f"{list(x_shape)}")
        if mode == "circular" and largest > size:
            raise ValueError(
                f"{op}: circular padding must not be larger than the input on its axis "
                f"(it would wrap around more than once): padding {amounts} (before, after) "
                f"on the {axis} axis of size {size} of input {list(x_shape)}")
