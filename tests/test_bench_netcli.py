"""``numbaconv bench --network`` end to end on tiny cases (one small layer, batch 1, one
sample: nothing is asserted about speed), ``--list-shapes``, the option checks, the network
sums and the progress bar's count of finished cases."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from numbaconv._progress import ProgressBar
from numbaconv.bench import netrun
from numbaconv.bench.cli import main
from numbaconv.bench.netimpls import torch_module

TINY = ["--batch", "1", "--budget", "0.01", "--repeat", "1", "--threads", "1",
        "--gemm-size", "64", "--no-progress"]


@pytest.fixture(scope="module")
def network_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """resnet50's smallest layer and dcgan's first (transposed) layer, JSON and Markdown."""
    d = tmp_path_factory.mktemp("network")
    paths = {"json": d / "net.json", "markdown": d / "net.md"}
    capture = io.StringIO()
    with contextlib.redirect_stdout(capture):
        code = main(["--network", "resnet50,dcgan", "--layers", "layer4.1.conv1,convt1", *TINY,
                     "--json", str(paths["json"]), "--markdown", str(paths["markdown"])])
    assert code == 0
    return {"out": capture.getvalue(), "json": json.loads(paths["json"].read_text()),
            "markdown": paths["markdown"].read_text()}


def test_network_text_report(network_run: dict) -> None:
    out = network_run["out"]
    for title in ("resnet50, batch 1, float32: training (forward+backward)",
                  "resnet50, batch 1, float32: inference (forward only)",
                  "dcgan, batch 1, float32: training (forward+backward)"):
        assert title in out
    assert "layer4.1.conv1" in out and "C=2048 7x7 K=512 1x1 S=1 P=0" in out
    assert "network sum (" in out and "ours/bare" in out and "ours/torch" in out
    assert "network pass (2 convolutions back to back)" in out  # layer4.1 and layer4.2
    assert "shapes: N = batch size, C = input channels" in out  # the legend
    assert out.startswith("CPU: ") and "\nthreads: numba 1" in out  # the machine header


def test_network_json(network_run: dict) -> None:
    data = network_run["json"]
    assert {"machine", "config", "networks", "results", "sums"} <= data.keys()
    assert "openblas" in data["machine"] and "cpu_flags" in data["machine"]
    assert [layer["name"] for layer in data["networks"]["dcgan"]["layers"]][:1] == ["convt1"]
    by = {(r["network"], r["op"]): r for r in data["results"]}
    assert set(by) == {("resnet50", "train"), ("resnet50", "infer"), ("dcgan", "train"),
                       ("dcgan", "infer")}
    rec = by[("resnet50", "train")]
    impls = {"numbaconv", "bare"} | ({"torch"} if torch_module() else set())
    assert set(rec["impls"]) == impls
    for info in rec["impls"].values():
        if "unsupported" not in info:
            assert info["median_s"] > 0 and info["min_s"] <= info["median_s"] <= info["max_s"]
    if "median_s" in rec["impls"]["numbaconv"]:
        assert rec["ratios"]["bare"]["median"] > 0
    # a layer the installed numbaconv cannot run is listed with the reason, never a crash
    for rec in data["results"]:
        ours = rec["impls"]["numbaconv"]
        assert "median_s" in ours or "not supported by this version" in ours["unsupported"]
    sums = {(s["network"], s["op"]): s for s in data["sums"]}
    assert sums[("resnet50", "train")]["of_layers"] == 1
    passes = {(p["network"], p["op"]): p for p in data["passes"]}
    assert set(passes) == set(by)
    whole = passes[("resnet50", "train")]
    assert whole["convolutions"] == 2 and set(whole["impls"]) == impls
    assert whole["impls"]["bare"]["median_s"] > 0 and whole["ratios"]["bare"]["median"] > 0


def test_network_markdown(network_run: dict) -> None:
    md = network_run["markdown"]
    assert md.startswith("<!-- bench-networks:start -->")
    assert "| layer | x | shape | numbaconv | bare | torch | ours/bare | ours/torch | rate |" in md
    assert "`numbaconv bench --network resnet50,dcgan" in md


def test_network_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--network", "resnet50", "--layers", "layer4.1.conv1", "--profile",
                 *TINY]) == 0
    out = capsys.readouterr().out
    assert "resnet50, batch 1, float32: training (forward+backward), stage shares" in out
    assert "gemm" in out and "outside GEMM (median run)" in out and "CPU: " in out


def test_list_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-shapes"]) == 0
    out = capsys.readouterr().out
    assert "classic     N=5 C=3 10x10 K=10 3x3 S=1 P=1" in out
    for name in ("vgg16", "resnet50", "unet", "mobilenet_v2", "resnext50", "dcgan"):
        assert f"\n{name}: " in out
    assert "layer3.0.conv2" in out and "g=32" in out and " T " in out
    assert main(["--list-shapes", "--network", "vgg16", "--layers", "conv5_*"]) == 0
    out = capsys.readouterr().out
    assert "conv5_1" in out and "conv4_1" not in out and "classic" not in out


@pytest.mark.parametrize(("argv", "message"), [
    pytest.param(["--batch", "1"], "--batch needs --network", id="batch-alone"),
    pytest.param(["--layers", "conv1"], "--layers needs --network", id="layers-alone"),
    pytest.param(["--network", "alexnet"], "unknown network", id="unknown-network"),
    pytest.param(["--network", "vgg16", "--batch", "0"], "positive integers", id="zero-batch"),
    pytest.param(["--network", "vgg16", "--layers", "layer9*"], "no layer of vgg16 matches",
                 id="no-layer-matches"),
    pytest.param(["--network", "vgg16", "--ops", "forward"], "unknown op", id="matrix-op"),
    pytest.param(["--network", "vgg16", "--plot", "x.png"], "cannot be combined",
                 id="with-plot"),
    pytest.param(["--network", "vgg16", "--shapes", "classic"], "drop --shapes",
                 id="with-shapes"),
    pytest.param(["--network", "vgg16", "--max-memory", "-1"], "GiB > 0", id="bad-memory"),
])
def test_network_argument_errors(argv: list[str], message: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def _rec(layer: str, count: int, ours: float, bare: float, lo: float, hi: float) -> dict:
    def timing(t: float) -> dict:
        return {"median_s": t, "min_s": 0.9 * t, "max_s": 1.1 * t}
    return {"network": "net", "layer": layer, "count": count, "n": 1, "dtype": "float32",
            "op": "train", "impls": {"numbaconv": timing(ours), "bare": timing(bare)},
            "ratios": {"bare": {"median": ours / bare, "min": lo, "max": hi}}}


def test_network_sums_weight_each_layer_by_its_count() -> None:
    recs = [_rec("a", 3, 2.0, 1.0, 1.5, 2.5), _rec("b", 1, 1.0, 1.0, 0.5, 1.5),
            {**_rec("c", 2, 1.0, 1.0, 1, 1), "impls": {"numbaconv": {"unsupported": "n/s"},
                                                       "bare": {"median_s": 1.0}}}]
    (total,) = netrun.network_sums(recs)
    assert (total["layers"], total["of_layers"]) == (2, 3)
    assert (total["convolutions"], total["of_convolutions"]) == (4, 6)
    assert total["impls"]["numbaconv"]["median_s"] == pytest.approx(3 * 2.0 + 1.0)
    assert total["impls"]["bare"]["median_s"] == pytest.approx(3 * 1.0 + 1.0)
    ratio = total["ratios"]["bare"]
    assert ratio["median"] == pytest.approx(7.0 / 4.0)
    assert ratio["min"] == pytest.approx((3 * 1.5 + 0.5) / 4.0)
    assert ratio["max"] == pytest.approx((3 * 2.5 + 1.5) / 4.0)


def test_progress_counts_finished_steps_only() -> None:
    stream = io.StringIO()
    with ProgressBar(2, stream=stream, unit="case") as bar:
        bar.start("first")
        assert bar.count == 0
        bar.update("first")
        bar.start("second")
        stream.write("<second running>\n")
        bar.update("second")
    lines = stream.getvalue().splitlines()
    running = lines.index("<second running>")
    assert any("1/2" in line for line in lines[:running])
    assert not any("2/2" in line or "100%" in line for line in lines[:running])
    assert "2/2" in lines[-1] and "100%" in lines[-1]


def test_runners_count_a_case_when_it_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()

    def fake_time_case(case, **kwargs):
        stream.write(f"<timing {case.layer.name}>\n")
        return {"case": case.label}

    monkeypatch.setattr(netrun, "time_case", fake_time_case)
    from numbaconv.bench.networks import NETWORKS

    cases = netrun.make_cases([NETWORKS["dcgan"]], [1], ["float32"], ["infer"],
                              ["convt1", "convt2"])
    netrun.run_cases(cases, stream=stream)
    lines = stream.getvalue().splitlines()
    last = lines.index("<timing convt2>")
    assert any("1/2" in line for line in lines[:last])
    assert not any("2/2" in line for line in lines[:last])
    assert any("2/2" in line for line in lines[last:])


def test_case_labels() -> None:
    from numbaconv.bench.networks import NETWORKS

    (case,) = netrun.make_cases([NETWORKS["resnet50"]], [8], ["float64"], ["train"],
                                ["layer3.0.conv2"])
    assert case.label == "train|resnet50.layer3.0.conv2|b8|f64"


def test_memory_guard_skips_without_running() -> None:
    from numbaconv.bench.networks import NETWORKS

    (case,) = netrun.make_cases([NETWORKS["unet"]], [32], ["float64"], ["train"],
                                ["enc1.conv2"])
    rec = netrun.time_case(case, max_memory=2**30)
    assert "skipped" in rec and "GiB" in rec["skipped"] and rec["impls"] == {}


def test_markdown_of_an_empty_run() -> None:
    from numbaconv.bench.netreport import network_markdown

    text = network_markdown({"machine": {}, "results": [], "sums": []})
    assert "shapes: N = batch size" in text


def test_pass_order_follows_the_forward_pass() -> None:
    from numbaconv.bench.netpass import pass_order
    from numbaconv.bench.networks import NETWORKS

    net = NETWORKS["resnet50"]
    order = pass_order(net)
    assert len(order) == len(net.all_layers()) == 53
    assert [layer.geometry for layer in order] == [layer.geometry for layer in net.all_layers()]
    assert {layer.name for layer in order} == {layer.name for layer in net.layers()}
    # only the selected layers, each occurrence once, in forward order
    picked = pass_order(net, ["layer4.1.conv1", "layer4.0.conv3"])
    assert [layer.name for layer in picked] == ["layer4.0.conv3", "layer4.1.conv1",
                                                "layer4.0.conv3", "layer4.1.conv1",
                                                "layer4.0.conv3"]


def test_pass_memory_guard_skips_without_running() -> None:
    from numbaconv.bench.netpass import time_pass
    from numbaconv.bench.networks import NETWORKS

    rec = time_pass(NETWORKS["vgg16"], 32, "float64", "train", max_memory=2**30)
    assert "GiB" in rec["skipped"] and rec["impls"] == {} and rec["convolutions"] == 13
