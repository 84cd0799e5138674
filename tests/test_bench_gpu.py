"""The GPU check script (benchmarks/bench_gpu.py) on CPU: ``--smoke`` runs the
same loops with tiny sizes; the figures it reports must be consistent."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import load_benchmark

from skfusemix.engine.nn import Adapter, count_flops_per_row

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_gpu.py"
SMOKE_SIZES = dict(
    d_x=48, d_y=32, n_components=16, n_layers=4, expansion=4, batch_size=64
)
PEAK = 0.5  # TFLOP/s, passed with --peak-tflops so the fraction is reported


def expected_flops(d_x, d_y, n_components, n_layers, expansion, batch_size):
    """3 x (adapters on the B mixed rows + the B x B logits), counted from
    the modules themselves."""
    per_row = sum(
        count_flops_per_row(Adapter(d, n_components, n_layers, expansion=expansion))
        for d in (d_x, d_y)
    )
    return 3 * (batch_size * per_row + 2 * batch_size**2 * n_components)


def check_figures(fig, flops, projection):
    step = fig["step_time_s"]
    assert math.isfinite(step) and step > 0
    assert fig["tflops"] == pytest.approx(flops / step / 1e12)
    assert fig["fraction_of_peak"] == pytest.approx(fig["tflops"] / PEAK)
    assert fig["projected_hours"] == pytest.approx(
        step * projection["total_steps"] / 3600
    )


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_gpu") / "smoke.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--smoke",
            "--mode",
            "both",
            "--peak-tflops",
            str(PEAK),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def test_smoke_times_both_loops(smoke):
    result, stdout = smoke
    assert result["smoke"] and result["device"].startswith("cpu")
    for loop in ("estimator", "direct"):
        assert "error" not in result[loop], result[loop]
        check_figures(result[loop], result["flops_per_step"], result["projection"])
    assert result["ours"] == result["estimator"]
    assert result["estimator"]["data_path"] in (None, "device")
    assert [b["num_workers"] for b in result["baseline"]] == [0, 2]
    for base in result["baseline"]:
        check_figures(base, result["flops_per_step"], result["projection"])
        assert base["ratio_to_ours"] == pytest.approx(
            base["step_time_s"] / result["ours"]["step_time_s"]
        )
    for label in ("FuseMixAligner.fit", "direct loop", "public-style DataLoader w=0"):
        assert label in stdout
    assert "FLOP/step = 3 * [2*B*(P_x + P_y) + 2*B^2*n]" in stdout


def test_smoke_flops_match_the_formula(smoke):
    result, _ = smoke
    cfg = result["config"]
    assert {k: cfg[k] for k in SMOKE_SIZES} == SMOKE_SIZES
    assert result["flops_per_step"] == expected_flops(**SMOKE_SIZES) > 0
    assert result["peak_tflops"] == PEAK


def test_smoke_projection(smoke):
    result, _ = smoke
    proj = result["projection"]
    rows = 2 * SMOKE_SIZES["batch_size"]
    assert proj["rows_per_step"] == rows
    assert proj["total_steps"] == 500 * (5_000_000 // rows)
    assert result["goal"]["recipe_under_1h"] is (result["ours"]["projected_hours"] < 1)


def test_paper_flops():
    """The paper's configuration: about 14.85 TFLOP per training step."""
    bench = load_benchmark("bench_gpu")
    with torch.device("meta"):
        want = expected_flops(1536, 1024, 512, 4, 4, 20480)
    assert bench.step_flops(bench.PAPER) == want
    assert want / 1e12 == pytest.approx(14.85, abs=0.01)
    names = {
        "NVIDIA H100 PCIe": 756.0,
        "NVIDIA H100 80GB HBM3": 989.0,
        "NVIDIA H200": 989.0,
        "NVIDIA A100-SXM4-80GB": 312.0,
        "NVIDIA L40S": 362.0,
        "NVIDIA L4": 121.0,
        "NVIDIA A10": 125.0,
        "NVIDIA L40": 181.0,
        "NVIDIA A10G": None,
    }
    for name, peak in names.items():
        found = next(p for key, p in bench.BF16_PEAK_TFLOPS if key in name)
        assert found == peak, name


def test_estimator_failure_falls_back_to_the_direct_loop(monkeypatch, tmp_path):
    bench = load_benchmark("bench_gpu")

    def broken(*args, **kwargs):
        raise RuntimeError("estimator unavailable")

    monkeypatch.setattr(bench, "estimator_loop", broken)
    threads = torch.get_num_threads()
    try:
        result = bench.main(["--smoke", "--no-baseline", "--steps", "2"])
    finally:
        torch.set_num_threads(threads)
    assert "estimator unavailable" in result["estimator"]["error"]
    assert result["ours"] == result["direct"]
    assert result["ours"]["step_time_s"] > 0
