"""The ``numbaconv`` command: ``numbaconv bench``, ``numbaconv train``, ``numbaconv demo``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = """usage: numbaconv <command> [options]

commands:
  bench   time naive, fancy-index, numbaconv (and PyTorch) on the SPEC shapes
  train   train a LeNet-style CNN on scikit-learn's handwritten digits
  demo    run the classic shape through every implementation and check they agree

`numbaconv <command> --help` describes each command's options.
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if args[0] in ("-V", "--version"):
        from numbaconv import __version__

        print(f"numbaconv {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command == "bench":
        from numbaconv.bench.cli import main as run
    elif command == "train":
        from numbaconv.train import main as run
    elif command == "demo":
        from numbaconv.demo import main as run
    else:
        print(f"numbaconv: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return int(run(rest) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
