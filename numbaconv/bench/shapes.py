"""The benchmark shapes of SPEC section 5, their FLOP counts and the naive-eligibility rule."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

OPS: tuple[str, ...] = ("im2col", "col2im", "forward", "backward", "forward+backward")
IMPLS: tuple[str, ...] = ("naive", "fancy", "numbaconv", "torch")
DTYPES: tuple[str, ...] = ("float32", "float64")

#: Multiplier of the forward FLOP count per op (backward = dX and dW, two GEMMs of the
#: forward's size). im2col/col2im move data and do no arithmetic worth counting.
FLOP_FACTOR: dict[str, int] = {"forward": 1, "backward": 2, "forward+backward": 3}

#: The naive references run only where one call is estimated to take under
#: NAIVE_MAX_SECONDS. They loop in Python over the N*K*Ho*Wo output entries with a small
#: NumPy operation each, so their cost is per output entry (about NAIVE_SECONDS_PER_OUTPUT
#: for the forward, twice that for the backward), not per FLOP. Of the SPEC shapes only
#: ``classic`` (5,000 outputs, ~0.2 s for forward+backward) qualifies; the next smallest,
#: ``lenet``, has 1.6 M outputs (over a minute for forward+backward).
NAIVE_SECONDS_PER_OUTPUT: float = 15e-6
NAIVE_MAX_SECONDS: float = 3.0


@dataclass(frozen=True)
class Shape:
    """One convolution problem: input (N, C, H, W), K filters of fh x fw, stride S, padding P."""

    name: str
    N: int
    C: int
    H: int
    W: int
    K: int
    fh: int
    fw: int
    S: int
    P: int

    @property
    def Ho(self) -> int:
        return (self.H + 2 * self.P - self.fh) // self.S + 1

    @property
    def Wo(self) -> int:
        return (self.W + 2 * self.P - self.fw) // self.S + 1

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        return (self.K, self.C, self.fh, self.fw)

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.K, self.Ho, self.Wo)

    @property
    def cols_shape(self) -> tuple[int, int]:
        """Shape of the classic im2col matrix, (C*fh*fw, Ho*Wo*N)."""
        return (self.C * self.fh * self.fw, self.Ho * self.Wo * self.N)

    @property
    def outputs(self) -> int:
        """Number of output entries N*K*Ho*Wo."""
        return self.N * self.K * self.Ho * self.Wo

    def forward_flops(self) -> int:
        """Multiply-adds of the forward pass counted as 2 FLOPs: 2*N*K*C*fh*fw*Ho*Wo."""
        return 2 * self.N * self.K * self.C * self.fh * self.fw * self.Ho * self.Wo

    def flops(self, op: str) -> int | None:
        """FLOPs of ``op`` (None for the pure data-movement ops im2col/col2im)."""
        factor = FLOP_FACTOR.get(op)
        return None if factor is None else factor * self.forward_flops()

    def describe(self) -> str:
        return (f"N={self.N} C={self.C} {self.H}x{self.W} K={self.K} "
                f"{self.fh}x{self.fw} S={self.S} P={self.P}")

    def to_dict(self) -> dict:
        return asdict(self)


def _s(name: str, N: int, C: int, H: int, K: int, f: int, S: int, P: int) -> Shape:
    return Shape(name, N, C, H, H, K, f, f, S, P)


#: SPEC section 5, in table order.
SHAPES: dict[str, Shape] = {s.name: s for s in (
    _s("classic", 5, 3, 10, 10, 3, 1, 1),
    _s("lenet", 64, 1, 28, 32, 5, 1, 2),
    _s("cifar", 64, 32, 32, 64, 3, 1, 1),
    _s("resnet56", 8, 64, 56, 64, 3, 1, 1),
    _s("downsample", 32, 64, 32, 128, 3, 2, 1),
    _s("stem", 8, 3, 224, 64, 7, 2, 3),
    _s("pointwise", 32, 128, 28, 256, 1, 1, 0),
)}

#: The ``--quick`` subset: small, medium and a strided shape; finishes in well under a minute.
QUICK_SHAPES: tuple[str, ...] = ("classic", "lenet", "downsample")


def naive_estimate_s(shape: Shape, op: str = "forward+backward") -> float:
    """Rough seconds of one naive call of ``op`` on ``shape`` (see NAIVE_SECONDS_PER_OUTPUT)."""
    return FLOP_FACTOR.get(op, 1) * shape.outputs * NAIVE_SECONDS_PER_OUTPUT


def naive_allowed(shape: Shape, op: str = "forward+backward") -> bool:
    """Whether the naive (Python-loop) reference is cheap enough to time ``op`` on ``shape``."""
    return naive_estimate_s(shape, op) <= NAIVE_MAX_SECONDS


def _split(value: str | Iterable[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item.strip()]


def _known_names(value: str | Iterable[str], known: Iterable[str], what: str,
                 kinds: str) -> list[str]:
    """Names from ``value``, deduplicated in order, each checked against ``known``."""
    names = _split(value)
    if not names:
        raise ValueError(f"expected at least one {what}, got an empty list")
    known = list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown {kinds} {', '.join(map(repr, unknown))}; "
                         f"expected names from {', '.join(known)}")
    return list(dict.fromkeys(names))


def parse_shapes(value: str | Iterable[str]) -> list[Shape]:
    """Turn ``"classic,lenet"`` (or a list of names) into Shape objects, in the given order."""
    return [SHAPES[n] for n in _known_names(value, SHAPES, "shape name", "shape(s)")]


def parse_ops(value: str | Iterable[str]) -> list[str]:
    """Turn ``"forward,backward"`` (or a list) into op names, validated against :data:`OPS`."""
    return _known_names(value, OPS, "op", "op(s)")


def parse_dtypes(value: str) -> list[str]:
    """``float32``, ``float64`` or ``both``."""
    if value == "both":
        return list(DTYPES)
    if value not in DTYPES:
        raise ValueError(f"dtype must be one of float32, float64, both; got {value!r}")
    return [value]
