"""``numbaconv train``: train a LeNet-style CNN on scikit-learn's handwritten digits.

The data set is ``sklearn.datasets.load_digits`` (1797 grey-scale 8x8 images of the digits
0-9, bundled with scikit-learn, no download). It is split into a stratified, seeded
train / test split; the network is built from :class:`numbaconv.Conv` and the layers of
:mod:`numbaconv.nn`, and trained with mini-batch Adam or SGD.

Timing: the first batch is run once on a throw-away copy of the network to JIT-compile (or
load from the cache) every Numba kernel; that time is reported separately. Epoch times cover
the training pass only (forward, backward, optimizer step), not the evaluation. At the end
the first epoch is replayed with the classic fancy-index layer
(:class:`numbaconv.reference.FancyConv`, same initial weights, same batches) to show the
speedup. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from numbaconv._compile_notice import compiling_notice
from numbaconv._lanes import single_threaded_blas
from numbaconv._progress import ProgressBar
from numbaconv.layer import Conv
from numbaconv.nn import (
    SGD,
    Adam,
    Dense,
    Flatten,
    MaxPool2d,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
)
from numbaconv.nn.sequential import layer_forward
from numbaconv.reference import FancyConv

# The extra's name quoted (shells such as zsh expand the brackets otherwise); from a checkout
# the package is ".", from an index it is the name.
TRAIN_EXTRA_HINT = ('pip install ".[train]"  (from a checkout of numbaconv), or  '
                    'pip install "numbaconv[train]"  (from a package index)')
INSTALL_HINT = (
    "numbaconv train needs scikit-learn for its data set (sklearn.datasets.load_digits).\n"
    f"Install it with:  {TRAIN_EXTRA_HINT}")

DEFAULTS = {"epochs": 30, "batch_size": 32, "lr": 2e-3, "optimizer": "adam", "seed": 0,
            "dtype": "float32", "test_size": 0.25, "weight_decay": 5e-4}
# Learning rate used when --optimizer sgd is chosen without --lr.
SGD_DEFAULT_LR = 0.05
SGD_MOMENTUM = 0.9
# Times the first epoch is replayed with each conv layer for the speed comparison.
REPLAYS = 3


def build_model(dtype: object = np.float32, seed: int = 0, conv: Callable = Conv) -> Sequential:
    """The LeNet-style network for 1x8x8 images and 10 classes.

    ``conv`` is the convolution layer class (``numbaconv.Conv`` or ``FancyConv``); the weights
    only depend on ``seed``.
    """
    rng = np.random.default_rng(seed)
    c1 = conv((1, 8, 8), 32, 3, 3, 1, 1, dtype=dtype, rng=rng)       # -> 32 x 8 x 8
    c2 = conv((32, 4, 4), 64, 3, 3, 1, 1, dtype=dtype, rng=rng)      # -> 64 x 4 x 4
    return Sequential(
        c1, ReLU(), MaxPool2d(2),                                     # -> 32 x 4 x 4
        c2, ReLU(), MaxPool2d(2),                                     # -> 64 x 2 x 2
        Flatten(),
        Dense(64 * 2 * 2, 128, dtype=dtype, rng=rng), ReLU(),
        Dense(128, 10, dtype=dtype, rng=rng),
    )


def describe(model: Sequential) -> str:
    """One-line summary of the architecture."""
    parts = []
    for layer in model:
        if isinstance(layer, (Conv, FancyConv)):
            parts.append(f"Conv({layer.d_X}->{layer.n_filter}, {layer.h_filter}x"
                         f"{layer.w_filter}, pad {layer.padding})")
        elif isinstance(layer, MaxPool2d):
            parts.append(f"MaxPool{layer.kernel_size[0]}")
        elif isinstance(layer, Dense):
            parts.append(f"Dense({layer.in_features}->{layer.out_features})")
        else:
            parts.append(type(layer).__name__)
    return " ".join(parts)


def load_data(seed: int, dtype: object, test_size: float = 0.25
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified, seeded split of the digits, scaled to [0, 1], shaped (N, 1, 8, 8)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = (digits.images / 16.0).astype(dtype)[:, None, :, :]
    y = digits.target.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=seed)
    return (np.ascontiguousarray(X_train), y_train, np.ascontiguousarray(X_test), y_test)


def make_optimizer(name: str, params: list[np.ndarray], lr: float,
                   weight_decay: float = 0.0) -> SGD | Adam:
    if name == "adam":
        return Adam(params, lr=lr, weight_decay=weight_decay)
    return SGD(params, lr=lr, momentum=SGD_MOMENTUM, weight_decay=weight_decay)


def cosine_lr(base: float, step: int, total: int) -> float:
    """Cosine decay from ``base`` at step 0 towards 0 at step ``total``."""
    return 0.5 * base * (1.0 + np.cos(np.pi * step / total))


def train_epoch(model: Sequential, loss: SoftmaxCrossEntropy, opt: SGD | Adam,
                X: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int,
                schedule: Callable[[int], float] | None = None,
                first_step: int = 0) -> tuple[float, float]:
    """One pass over ``X[order]`` in mini-batches; returns (mean loss, seconds).

    ``schedule(step)`` gives the learning rate of every optimizer step, counted globally
    from ``first_step``.
    """
    start = time.perf_counter()
    total = 0.0
    for k, i in enumerate(range(0, len(order), batch_size)):
        if schedule is not None:
            opt.lr = schedule(first_step + k)
        idx = order[i:i + batch_size]
        value, _ = model.train_step(X[idx], y[idx], loss, opt)
        total += value * len(idx)
    return total / len(order), time.perf_counter() - start


def accuracy(model: Sequential, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model.predict(X, batch_size=512) == y))


class _Timed:
    """Wrap a layer and add the time spent in its forward and backward to ``clock[0]``."""

    def __init__(self, layer: object, clock: list[float]) -> None:
        self.layer, self.clock = layer, clock
        self.params = layer.params

    def forward(self, X: np.ndarray, train: bool = True) -> np.ndarray:
        start = time.perf_counter()
        out = layer_forward(self.layer, X, train)
        self.clock[0] += time.perf_counter() - start
        return out

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        start = time.perf_counter()
        result = self.layer.backward(dout)
        self.clock[0] += time.perf_counter() - start
        return result


def time_conv_layers(model: Sequential) -> list[float]:
    """Wrap every conv layer of ``model`` in place; the returned one-element list
    accumulates the seconds spent in their forward and backward passes."""
    clock = [0.0]
    model.layers = [_Timed(layer, clock) if isinstance(layer, (Conv, FancyConv)) else layer
                    for layer in model.layers]
    return clock


def copy_weights(src: Sequential, dst: Sequential) -> None:
    for p_src, p_dst in zip(src.params, dst.params, strict=True):
        p_dst[...] = p_src


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text}")
    return value


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="numbaconv train",
        description="Train a LeNet-style CNN (numbaconv.Conv + ReLU + MaxPool2d + Dense) on "
                    "scikit-learn's 8x8 handwritten digits and compare the epoch time with "
                    "the classic fancy-index conv layer.")
    p.add_argument("--epochs", type=_positive_int, default=DEFAULTS["epochs"],
                   help="passes over the training set (default: %(default)s)")
    p.add_argument("--batch-size", type=_positive_int, default=DEFAULTS["batch_size"],
                   help="mini-batch size (default: %(default)s)")
    p.add_argument("--lr", type=_positive_float, default=None,
                   help=f"learning rate (default: {DEFAULTS['lr']} for adam, "
                        f"{SGD_DEFAULT_LR} for sgd)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default=DEFAULTS["optimizer"],
                   help=f"adam, or sgd with momentum {SGD_MOMENTUM} (default: %(default)s)")
    p.add_argument("--weight-decay", type=_non_negative_float, default=DEFAULTS["weight_decay"],
                   help="L2 weight decay added to the gradients (default: %(default)s)")
    p.add_argument("--seed", type=_non_negative_int, default=DEFAULTS["seed"],
                   help="seed of the train/test split, the weights and the batch order "
                        "(default: %(default)s)")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="Numba threads (default: Numba's default, one per core)")
    p.add_argument("--dtype", choices=("float32", "float64"), default=DEFAULTS["dtype"],
                   help="dtype of data and parameters (default: %(default)s)")
    p.add_argument("--json", metavar="PATH", type=Path, default=None,
                   help="write the results (accuracy, timings, per-epoch history) as JSON")
    p.add_argument("--plot", metavar="PATH.png", type=Path, default=None,
                   help="draw loss and accuracy curves to a PNG (needs matplotlib)")
    p.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")
    p.add_argument("--skip-fancy", action="store_true",
                   help="do not time the classic FancyConv epoch")
    return p.parse_args(list(argv))


def plot_history(history: list[dict], path: Path, title: str) -> None:
    """Loss and accuracy per epoch, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.6))
    ax_loss.plot(epochs, [h["loss"] for h in history], marker="o", ms=3)
    ax_loss.set(xlabel="epoch", ylabel="training loss (cross-entropy)", yscale="log",
                title="loss")
    ax_acc.plot(epochs, [100 * h["train_accuracy"] for h in history], marker="o", ms=3,
                label="train")
    ax_acc.plot(epochs, [100 * h["test_accuracy"] for h in history], marker="s", ms=3,
                label="test (held out)")
    ax_acc.axhline(98, color="grey", lw=0.8, ls="--")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax_acc.set_ylim(max(0, min(100 * h["test_accuracy"] for h in history) - 2), 100.5)
    ax_acc.legend(loc="lower right")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``numbaconv train``; returns the process exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print(f"numbaconv train: {INSTALL_HINT}", file=sys.stderr)
        return 1
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(f"numbaconv train: --plot needs matplotlib; install it with:  "
                  f"{TRAIN_EXTRA_HINT}", file=sys.stderr)
            return 1
    import numba

    if args.threads is not None:
        if args.threads > numba.config.NUMBA_NUM_THREADS:
            print(f"numbaconv train: --threads {args.threads} exceeds the "
                  f"{numba.config.NUMBA_NUM_THREADS} threads Numba was started with",
                  file=sys.stderr)
            return 2
        numba.set_num_threads(args.threads)
    # This network's matrices are far below the size where BLAS threads pay off, and idle
    # BLAS threads would fight Numba's for the cores.
    with single_threaded_blas():
        return _run(args, numba.get_num_threads())


def _run(args: argparse.Namespace, threads: int) -> int:
    lr = args.lr if args.lr is not None else (
        DEFAULTS["lr"] if args.optimizer == "adam" else SGD_DEFAULT_LR)
    wd = args.weight_decay
    dtype = np.dtype(args.dtype)

    X_train, y_train, X_test, y_test = load_data(args.seed, dtype, DEFAULTS["test_size"])
    model = build_model(dtype, args.seed)
    n_params = sum(p.size for p in model.params)
    print(f"numbaconv train: LeNet-style CNN on scikit-learn digits "
          f"({len(X_train)} train / {len(X_test)} test images, 1x8x8, stratified split, "
          f"seed {args.seed})")
    print(f"model: {describe(model)}  ({n_params:,} parameters)")
    print(f"optimizer: {args.optimizer} lr={lr:g} (cosine decay), weight decay {wd:g}, "
          f"batch {args.batch_size}, {args.epochs} epochs, {args.dtype}, "
          f"{threads} Numba threads")

    # JIT warm-up on a throw-away copy so the real model's state is untouched.
    start = time.perf_counter()
    with compiling_notice():  # says so on stderr when the kernels are compiled
        scratch = build_model(dtype, args.seed)
        scratch.train_step(X_train[:args.batch_size], y_train[:args.batch_size],
                           SoftmaxCrossEntropy(),
                           make_optimizer(args.optimizer, scratch.params, lr, wd))
        scratch.predict(X_test[:args.batch_size])
    compile_seconds = time.perf_counter() - start
    print(f"JIT warm-up (compile or load cached kernels): {compile_seconds:.2f} s, "
          f"not counted in epoch times")

    loss_fn = SoftmaxCrossEntropy()
    initial = build_model(dtype, args.seed)  # kept for the FancyConv comparison
    opt = make_optimizer(args.optimizer, model.params, lr, wd)
    order_rng = np.random.default_rng([args.seed, 1])
    orders = [order_rng.permutation(len(X_train)) for _ in range(args.epochs)]
    steps_per_epoch = -(-len(X_train) // args.batch_size)
    total_steps = steps_per_epoch * args.epochs

    def schedule(step: int) -> float:
        return cosine_lr(lr, step, total_steps)

    history = []
    with ProgressBar(args.epochs, enabled=not args.no_progress) as bar:
        for epoch, order in enumerate(orders, start=1):
            loss, seconds = train_epoch(model, loss_fn, opt, X_train, y_train, order,
                                        args.batch_size, schedule,
                                        (epoch - 1) * steps_per_epoch)
            history.append({
                "epoch": epoch, "loss": loss,
                "train_accuracy": accuracy(model, X_train, y_train),
                "test_accuracy": accuracy(model, X_test, y_test),
                "seconds": seconds,
            })
            h = history[-1]
            bar.update(f"epoch {epoch}: loss {loss:.4f}  train {100 * h['train_accuracy']:.2f}%"
                       f"  test {100 * h['test_accuracy']:.2f}%  ({seconds:.2f} s)")
    train_seconds = sum(h["seconds"] for h in history)
    numbaconv_epoch = float(np.median([h["seconds"] for h in history]))

    # Replay epoch 1 from the initial weights with both conv layers, alternating, and keep
    # the fastest of REPLAYS runs each: alternating and taking the minimum makes the ratio
    # robust to other processes on the machine.
    fancy_epoch = fancy_loss = None
    if not args.skip_fancy:
        times: dict[str, list[float]] = {"numbaconv": [], "fancy": []}
        conv_times: dict[str, list[float]] = {"numbaconv": [], "fancy": []}
        for _ in range(REPLAYS):
            for name, conv in (("numbaconv", Conv), ("fancy", FancyConv)):
                replica = build_model(dtype, args.seed, conv=conv)
                copy_weights(initial, replica)
                clock = time_conv_layers(replica)
                replay_loss, seconds = train_epoch(
                    replica, SoftmaxCrossEntropy(),
                    make_optimizer(args.optimizer, replica.params, lr, wd),
                    X_train, y_train, orders[0], args.batch_size, schedule)
                times[name].append(seconds)
                conv_times[name].append(clock[0])
                if name == "fancy":
                    fancy_loss = replay_loss
        numbaconv_epoch, fancy_epoch = min(times["numbaconv"]), min(times["fancy"])
        numbaconv_conv, fancy_conv = min(conv_times["numbaconv"]), min(conv_times["fancy"])

    final = history[-1]
    n_test = len(y_test)
    n_right = int(round(final["test_accuracy"] * n_test))
    print()
    print("summary")
    print(f"  test accuracy      {100 * final['test_accuracy']:.2f}% ({n_right}/{n_test} "
          f"held-out digits)")
    print(f"  train accuracy     {100 * final['train_accuracy']:.2f}%")
    print(f"  final train loss   {final['loss']:.4f}")
    print(f"  training time      {train_seconds:.2f} s for {args.epochs} epochs "
          f"(+ {compile_seconds:.2f} s JIT warm-up)")
    speedup = None
    if fancy_epoch is None:
        print(f"  one epoch, numbaconv.Conv          {numbaconv_epoch:.3f} s (median)")
    else:
        speedup = fancy_epoch / numbaconv_epoch
        print(f"  one epoch, timed on epoch 1 replayed from the same initial weights and "
              f"batches (best of {REPLAYS}):")
        print("                           whole epoch   conv layers only")
        print(f"    numbaconv.Conv          {numbaconv_epoch:7.3f} s      {numbaconv_conv:7.3f} s")
        print(f"    reference.FancyConv     {fancy_epoch:7.3f} s      {fancy_conv:7.3f} s")
        print(f"    speedup                 {speedup:7.2f}x       "
              f"{fancy_conv / numbaconv_conv:7.2f}x    (timings are noisy on a shared machine)")
        print(f"    replayed epoch-1 loss: FancyConv {fancy_loss:.6f}, numbaconv.Conv "
              f"{history[0]['loss']:.6f}")

    if args.json is not None:
        result = {
            "test_accuracy": final["test_accuracy"],
            "train_accuracy": final["train_accuracy"],
            "final_loss": final["loss"],
            "train_seconds": train_seconds,
            "compile_seconds": compile_seconds,
            "epochs": args.epochs,
            "history": history,
            "config": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": lr,
                       "lr_schedule": "cosine", "weight_decay": wd,
                       "optimizer": args.optimizer, "seed": args.seed, "dtype": args.dtype,
                       "threads": threads, "test_size": DEFAULTS["test_size"],
                       "n_train": len(y_train), "n_test": n_test, "parameters": n_params,
                       "model": describe(model)},
            "fancy_epoch_seconds": fancy_epoch,
            "fancy_first_epoch_loss": fancy_loss,
            "numbaconv_epoch_seconds": numbaconv_epoch,
            "epoch_speedup": speedup,
            "numbaconv_conv_seconds": None if fancy_epoch is None else numbaconv_conv,
            "fancy_conv_seconds": None if fancy_epoch is None else fancy_conv,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"  results written to {args.json}")
    if args.plot is not None:
        plot_history(history, args.plot,
                     f"numbaconv train: digits, {args.optimizer} lr={lr:g}, batch "
                     f"{args.batch_size}, {args.dtype}, seed {args.seed} - test accuracy "
                     f"{100 * final['test_accuracy']:.2f}%")
        print(f"  curves drawn to {args.plot}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
