"""Moves in vector registers, generated as LLVM IR: a square block transpose, for the
batch-last copies of ``_classic_kernels``, and copies and sums of short runs, for the
depthwise kernels' short rows.

Moving an (N, M) array to (M, N) with scalar code costs one store per element, and a store per
cycle is all a core does: the pointwise transpose ran at a third of the speed of a plain copy.
:func:`transpose_block` loads a block of ``V x V`` elements (``V = 32 // itemsize``: one AVX
register per row) as ``V`` vectors, transposes them with vector shuffles and stores ``V``
vectors.  The shuffles are plain LLVM IR, which LLVM lowers for the machine it compiles for:
on x86 with AVX2, the 24 unpack and 128-bit lane-permute instructions of the textbook 8 x 8
transpose (checked in the assembly of Numba 0.68).

A loop over a row of a few elements costs the vectoriser's overlap and length checks and a
scalar remainder, about 30 cycles for a row of 7 floats, far more than the copy.
:func:`copy_run` moves a run of any length as a few vectors that cover it exactly (the last
ones overlapping), :func:`split_pairs` and :func:`join_pairs` do the same for a row's two
stride-2 phases, and :func:`multiply_add_vector` and :func:`add_vector` add one vector of
running sums.  They are intrinsics rather than Numba functions: a Numba helper with these
branches, inlined or not, took 10x the time of one vector move per row.
No C compiler is involved, and Numba caches the kernels that use them as usual.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

VECTOR_BYTES = 32  # one AVX register: 8 float32 or 4 float64 per row of a block

# (first, second) shuffle masks of each step of the block transpose; indices >= V pick from
# the second vector.  Step 1 interleaves neighbouring rows, step 2 (8 x 8 only) pairs of
# elements, the last step the 16-byte halves.
_STEPS = {
    8: ((0, 8, 1, 9, 4, 12, 5, 13), (2, 10, 3, 11, 6, 14, 7, 15),
        (0, 1, 8, 9, 4, 5, 12, 13), (2, 3, 10, 11, 6, 7, 14, 15),
        (0, 1, 2, 3, 8, 9, 10, 11), (4, 5, 6, 7, 12, 13, 14, 15)),
    4: ((0, 4, 2, 6), (1, 5, 3, 7),
        (0, 1, 4, 5), (2, 3, 6, 7)),
}
# The rows each step combines: step 1 pairs rows (0, 1), (2, 3), ...; for 8 x 8, step 2 pairs
# the results (0, 2), (1, 3), (4, 6), (5, 7); the last step pairs result j with j + V/2.
_PAIRS = {8: (((0, 1), (2, 3), (4, 5), (6, 7)), ((0, 2), (1, 3), (4, 6), (5, 7))),
          4: (((0, 1), (2, 3)),)}


def _shuffle(builder: ir.IRBuilder, a: ir.Value, b: ir.Value, mask: tuple[int, ...]):
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(ir.IntType(32), len(mask)),
                                                    list(mask)))


def transposed_rows(builder: ir.IRBuilder, rows: list[ir.Value]) -> list[ir.Value]:
    """The ``V`` columns of the ``V x V`` block whose rows are the vectors ``rows``."""
    lanes = len(rows)
    masks = _STEPS[lanes]
    for step, pairs in enumerate(_PAIRS[lanes]):
        first, second = masks[2 * step], masks[2 * step + 1]
        rows = [_shuffle(builder, rows[i], rows[j], mask)
                for i, j in pairs for mask in (first, second)]
    half = lanes // 2
    first, second = masks[-2], masks[-1]
    return ([_shuffle(builder, rows[j], rows[j + half], first) for j in range(half)]
            + [_shuffle(builder, rows[j], rows[j + half], second) for j in range(half)])


def _is_float_vector(array: types.Type) -> bool:
    return (isinstance(array, types.Array) and array.ndim == 1 and array.layout == "C"
            and array.dtype in (types.float32, types.float64))


def _itemsize_and_lanes(context, dtype) -> tuple[int, int]:
    """Bytes of one element of ``dtype`` and ``V``, the elements of one vector register."""
    itemsize = context.get_abi_sizeof(context.get_data_type(dtype))
    return itemsize, VECTOR_BYTES // itemsize


def _vector_at(context, builder, array_type, array, start, lanes):
    """Pointer to the vector of ``lanes`` elements at ``array[start]``."""
    vector = ir.VectorType(context.get_data_type(array_type.dtype), lanes).as_pointer()
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [start]), vector)


def _row_pointers(context, builder, array_type, array, start, step, lanes):
    """Pointers to ``lanes`` vectors at ``array[start + row * step]``."""
    return [_vector_at(context, builder, array_type, array, builder.add(
        start, builder.mul(step, ir.Constant(ir.IntType(64), row))), lanes)
        for row in range(lanes)]


def _block_codegen(pairs: bool):
    """Code of :func:`transpose_block` (``pairs`` False) or :func:`transpose_block_pairs`."""

    def codegen(context, builder, signature, args):
        src_type, dst_type = signature.args[0], signature.args[3]  # src may be read-only
        itemsize, lanes = _itemsize_and_lanes(context, src_type.dtype)

        def offset(k):  # argument k as an int64
            return context.cast(builder, args[k], signature.args[k], types.int64)

        # (src, src_start, src_step, dst, dst_start[, odd_start], dst_step)
        src, dst = args[0], args[3]
        src_start, src_step, dst_step = offset(1), offset(2), offset(len(args) - 1)
        dst_starts = [offset(k) for k in range(4, len(args) - 1)]
        loads = [builder.load(pointer, align=itemsize) for pointer in _row_pointers(
            context, builder, src_type, src, src_start, src_step, lanes)]
        if pairs:  # the second vector of each row, then even and odd columns apart
            seconds = [builder.load(pointer, align=itemsize) for pointer in _row_pointers(
                context, builder, src_type, src, builder.add(
                    src_start, ir.Constant(ir.IntType(64), lanes)), src_step, lanes)]
            blocks = [[_shuffle(builder, a, b, tuple(range(phase, 2 * lanes, 2)))
                       for a, b in zip(loads, seconds, strict=True)] for phase in (0, 1)]
        else:
            blocks = [loads]
        for rows, dst_start in zip(blocks, dst_starts, strict=True):
            pointers = _row_pointers(context, builder, dst_type, dst, dst_start, dst_step,
                                     lanes)
            for column, pointer in zip(transposed_rows(builder, rows), pointers,
                                       strict=True):
                builder.store(column, pointer, align=itemsize)
        return context.get_dummy_value()

    return codegen


def _typed(src, dst, offsets):
    return (_is_float_vector(src) and _is_float_vector(dst) and src.dtype == dst.dtype
            and dst.mutable and all(isinstance(value, types.Integer) for value in offsets))


@intrinsic
def transpose_block(typingctx, src, src_start, src_step, dst, dst_start, dst_step):
    """``dst[dst_start + j*dst_step + i] = src[src_start + i*src_step + j]`` for ``i, j < V``,
    ``V = 32 // itemsize``; ``src`` and ``dst`` are 1-d contiguous arrays of one float dtype
    (``src`` may be read-only).

    No bounds are checked: the caller keeps the block inside both arrays."""
    if not _typed(src, dst, (src_start, src_step, dst_start, dst_step)):
        return None
    signature = types.none(src, src_start, src_step, dst, dst_start, dst_step)
    return signature, _block_codegen(pairs=False)


@intrinsic
def transpose_block_pairs(typingctx, src, src_start, src_step, dst, even_start, odd_start,
                          dst_step):
    """:func:`transpose_block` of a ``V x 2V`` block whose even and odd columns go to two
    blocks (a stride-2 phase split): ``dst[even_start + j*dst_step + i] =
    src[src_start + i*src_step + 2j]`` and ``dst[odd_start + ...] = src[... + 2j + 1]``."""
    if not _typed(src, dst, (src_start, src_step, even_start, odd_start, dst_step)):
        return None
    signature = types.none(src, src_start, src_step, dst, even_start, odd_start, dst_step)
    return signature, _block_codegen(pairs=True)


def _emit_run(builder, count, lanes, move):
    """Code that calls ``move(width, offset)`` on blocks covering ``[0, count)`` exactly:
    ``count >= lanes``: blocks of ``lanes``, the last one ending at ``count`` (overlapping the
    one before); shorter: two blocks of the largest power of two ``width <= count``, at 0 and
    at ``count - width``; nothing for 0."""
    i64 = ir.IntType(64)

    def pair(width, otherwise):
        with builder.if_else(builder.icmp_signed(">=", count, ir.Constant(i64, width))) as (
                then, other):
            with then:
                move(width, ir.Constant(i64, 0))
                move(width, builder.sub(count, ir.Constant(i64, width)))
            with other:
                otherwise()

    def shorter(width):
        if width == 1:
            with builder.if_then(builder.icmp_signed(">", count, ir.Constant(i64, 0))):
                move(1, ir.Constant(i64, 0))
        else:
            pair(width, lambda: shorter(width // 2))

    with builder.if_else(builder.icmp_signed(">=", count, ir.Constant(i64, lanes))) as (
            then, other):
        with then:
            last = builder.sub(count, ir.Constant(i64, lanes))
            with cgutils.for_range_slice(builder, ir.Constant(i64, 0), last,
                                         ir.Constant(i64, lanes), intp=i64) as (j, _):
                move(lanes, j)
            move(lanes, last)
        with other:
            shorter(lanes // 2)


def _starts(context, builder, signature, args, positions):
    """Arguments ``positions`` (array starts) and the last one (the count) as int64."""
    return [context.cast(builder, args[k], signature.args[k], types.int64)
            for k in (*positions, len(args) - 1)]


def _run_codegen(kind: str):
    """Code of :func:`copy_run` (``kind`` "copy"), :func:`split_pairs` ("split") or
    :func:`join_pairs` ("join")."""

    def codegen(context, builder, signature, args):
        itemsize, lanes = _itemsize_and_lanes(context, signature.args[0].dtype)

        def at(k, start, offset, width):  # vector pointer into array argument k
            return _vector_at(context, builder, signature.args[k], args[k],
                              builder.add(start, offset), width)

        def load(k, start, offset, width):
            return builder.load(at(k, start, offset, width), align=itemsize)

        def store(value, k, start, offset, width):
            builder.store(value, at(k, start, offset, width), align=itemsize)

        if kind == "copy":  # (dst, d, src, s, count)
            d, src, count = _starts(context, builder, signature, args, (1, 3))

            def move(width, offset):
                store(load(2, src, offset, width), 0, d, offset, width)
        elif kind == "split":  # (dst, even, odd, src, s, pairs)
            even, odd, src, count = _starts(context, builder, signature, args, (1, 2, 4))

            def move(width, offset):
                both = load(3, src, builder.shl(offset, ir.Constant(offset.type, 1)), 2 * width)
                store(_shuffle(builder, both, both, tuple(range(0, 2 * width, 2))), 0, even,
                      offset, width)
                store(_shuffle(builder, both, both, tuple(range(1, 2 * width, 2))), 0, odd,
                      offset, width)
        else:  # join: (dst, d, src, even, odd, pairs)
            d, even, odd, count = _starts(context, builder, signature, args, (1, 3, 4))

            def move(width, offset):
                mask = tuple(k for j in range(width) for k in (j, width + j))
                both = _shuffle(builder, load(2, even, offset, width),
                                load(2, odd, offset, width), mask)
                store(both, 0, d, builder.shl(offset, ir.Constant(offset.type, 1)), 2 * width)

        _emit_run(builder, count, lanes, move)
        return context.get_dummy_value()

    return codegen


@intrinsic
def copy_run(typingctx, dst, dst_start, src, src_start, count):
    """``dst[dst_start + j] = src[src_start + j]`` for ``j < count``, writing nothing else,
    in vectors: a run of at least ``V`` elements as whole vectors, the last one overlapping
    the one before; a shorter run as two overlapping vectors of the largest power-of-two
    width that fits (``src`` and ``dst`` must not overlap; ``src`` may be read-only).  No
    bounds are checked: the caller keeps the run inside both arrays."""
    if not _typed(src, dst, (dst_start, src_start, count)):
        return None
    return types.none(dst, dst_start, src, src_start, count), _run_codegen("copy")


@intrinsic
def split_pairs(typingctx, dst, even_start, odd_start, src, src_start, pairs):
    """``dst[even_start + j] = src[src_start + 2j]`` and ``dst[odd_start + j] =
    src[src_start + 2j + 1]`` for ``j < pairs``, in vectors as :func:`copy_run` moves them
    (a row's two stride-2 phases; the three ranges must not overlap)."""
    if not _typed(src, dst, (even_start, odd_start, src_start, pairs)):
        return None
    return (types.none(dst, even_start, odd_start, src, src_start, pairs),
            _run_codegen("split"))


@intrinsic
def join_pairs(typingctx, dst, dst_start, src, even_start, odd_start, pairs):
    """``dst[dst_start + 2j] = src[even_start + j]`` and ``dst[dst_start + 2j + 1] =
    src[odd_start + j]`` for ``j < pairs``: :func:`split_pairs` undone."""
    if not _typed(src, dst, (dst_start, even_start, odd_start, pairs)):
        return None
    return (types.none(dst, dst_start, src, even_start, odd_start, pairs),
            _run_codegen("join"))


@intrinsic
def vector_lanes(typingctx, array):
    """``V = 32 // array.itemsize`` as a compile-time constant (``array.itemsize`` is read
    from the array at run time)."""
    if not (isinstance(array, types.Array) and array.dtype in (types.float32, types.float64)):
        return None

    def codegen(context, builder, signature, args):
        return ir.Constant(ir.IntType(64), _itemsize_and_lanes(context, array.dtype)[1])

    return types.int64(array), codegen


def _accumulate_codegen(products: bool):
    """Code of :func:`multiply_add_vector` (``products``) or :func:`add_vector`."""

    def codegen(context, builder, signature, args):
        itemsize, lanes = _itemsize_and_lanes(context, signature.args[0].dtype)

        def vector(k):  # pointer to the vector at array argument k, start argument k + 1
            start = context.cast(builder, args[k + 1], signature.args[k + 1], types.int64)
            return _vector_at(context, builder, signature.args[k], args[k], start, lanes)

        target = vector(0)
        term = builder.load(vector(2), align=itemsize)
        if products:  # a product, then a sum, each rounded: what the scalar loop computes
            term = builder.fmul(term, builder.load(vector(4), align=itemsize))
        builder.store(builder.fadd(builder.load(target, align=itemsize), term), target,
                      align=itemsize)
        return context.get_dummy_value()

    return codegen


@intrinsic
def multiply_add_vector(typingctx, acc, a_start, g, g_start, x, x_start):
    """``acc[a_start + j] += g[g_start + j] * x[x_start + j]`` for ``j < V``, in vectors (the
    product rounded, then the sum, as the scalar code does); ``acc`` must not overlap ``g``
    or ``x``.  A loop over a few vectors of running sums costs more in the vectoriser's
    checks than the sums themselves."""
    if not (_typed(g, acc, (a_start, g_start, x_start)) and _typed(x, acc, ())):
        return None
    return (types.none(acc, a_start, g, g_start, x, x_start), _accumulate_codegen(True))


@intrinsic
def add_vector(typingctx, acc, a_start, g, g_start):
    """``acc[a_start + j] += g[g_start + j]`` for ``j < V``, in vectors."""
    if not _typed(g, acc, (a_start, g_start)):
        return None
    return types.none(acc, a_start, g, g_start), _accumulate_codegen(False)
