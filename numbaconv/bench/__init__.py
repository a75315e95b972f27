"""Benchmark tooling behind ``numbaconv bench``.

One small module per job: :mod:`.shapes` (the SPEC shape table, FLOP counts, the naive rule),
:mod:`.timing` (the timers), :mod:`.machine` (what the machine is, the GEMM rate),
:mod:`.threads` (``--threads``), :mod:`.impls` (the callables that are timed), :mod:`.runner`
(the matrix and the speedups), :mod:`.report` (text and Markdown tables), :mod:`.check` (the
regression gate), :mod:`.plot`, :mod:`.profile`, :mod:`.startup` and :mod:`.cli`.

Real networks (``--network``): :mod:`.layers` (one conv layer: sizes, FLOPs, products),
:mod:`.networks` (the layer lists of VGG-16, ResNet-50, U-Net, MobileNetV2, ResNeXt-50 and
the DCGAN generator), :mod:`.netimpls` (numbaconv, the bare products and torch per layer),
:mod:`.netrun` (timing in alternation, network sums), :mod:`.netreport` (tables and
``--list-shapes``), :mod:`.netprofile` and :mod:`.netcli`.  The OpenBLAS kernel of the
machine header and the variables that force it: :mod:`.openblas`.
"""
