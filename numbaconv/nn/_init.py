"""PyTorch's default initialisation of the convolution layers, drawn with NumPy.

``torch.nn.Conv2d`` and its kin run ``kaiming_uniform_(weight, a=sqrt(5))`` and draw the bias
uniformly in ``±1/sqrt(fan_in)``.  With ``a = sqrt(5)`` the gain is ``sqrt(2 / (1 + a**2)) =
sqrt(1/3)``, so the weight bound ``gain * sqrt(3 / fan_in)`` is ``1/sqrt(fan_in)`` as well.
``fan_in`` is ``weight.shape[1]`` times the receptive field (the product of the kernel
sizes), as ``torch.nn.init._calculate_fan_in_and_fan_out`` counts it: ``C/groups * fh * fw``
for a convolution, whose weight is ``(K, C/groups, fh, fw)``, and ``K/groups * fh * fw`` for a
transposed one, whose weight is ``(C, K/groups, fh, fw)``.
"""

from __future__ import annotations

import math

import numpy as np

Generator = np.random.Generator | np.random.RandomState


def as_generator(rng: object) -> Generator:
    """The source of a layer's random initialisation.

    ``None`` is a fresh ``np.random.default_rng()`` (new entropy each time); an int seeds
    ``np.random.default_rng(rng)``; a ``numpy.random.Generator`` or ``RandomState`` is used
    as it is (and moves on), so one generator passed to every layer of a model reproduces it.
    """
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    if isinstance(rng, (bool, np.bool_)):
        raise TypeError(f"rng must be None, an int seed >= 0, a numpy.random.Generator or a "
                        f"RandomState, got {rng!r}")
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as err:  # default_rng's own words, with what is expected
        raise type(err)(f"rng must be None, an int seed >= 0, a numpy.random.Generator or a "
                        f"RandomState, got {rng!r} ({err})") from None


def fan_in(weight_shape: tuple[int, ...]) -> int:
    """PyTorch's fan-in of a weight: ``shape[1]`` times the product of the kernel sizes."""
    return weight_shape[1] * math.prod(weight_shape[2:])


def draw_parameters(weight_shape: tuple[int, ...], bias_size: int | None, rng: object,
                    dtype: np.dtype) -> list[np.ndarray]:
    """``[weight]``, or ``[weight, bias]`` with a bias of ``bias_size`` entries, drawn as
    PyTorch's ``reset_parameters`` does: the weight uniform in ``±1/sqrt(fan_in)``
    (Kaiming-uniform with ``a = sqrt(5)``), then the bias uniform in ``±1/sqrt(fan_in)``.

    The values are drawn in float64 (weight first, then bias) and cast to ``dtype``.
    """
    generator = as_generator(rng)
    bound = 1.0 / math.sqrt(fan_in(weight_shape))
    params = [generator.uniform(-bound, bound, weight_shape).astype(dtype)]
    if bias_size is not None:
        params.append(generator.uniform(-bound, bound, bias_size).astype(dtype))
    return params
