"""Benchmark tooling behind ``numbaconv bench``.

One small module per job: :mod:`.shapes` (the SPEC shape table, FLOP counts, the naive rule),
:mod:`.timing` (the timers), :mod:`.machine` (what the machine is, the GEMM rate),
:mod:`.threads` (``--threads``), :mod:`.impls` (the callables that are timed), :mod:`.runner`
(the matrix and the speedups), :mod:`.report` (text and Markdown tables), :mod:`.check` (the
regression gate), :mod:`.plot`, :mod:`.profile`, :mod:`.startup` and :mod:`.cli`.
"""
