"""`blkit bench` writes results.json (schema of issue 7), results.md and two PNG plots; tiny sizes here."""
import json

import pytest

from blkit.bench import cases, runner

SCHEMA_TOP = {"device", "torch", "triton", "commit", "timestamp", "copy_bandwidth_gbps", "records"}
SCHEMA_RECORD = {"name", "provider", "shape", "dtype", "median_ms", "p20_ms", "p80_ms", "gbps", "peak_mem_bytes"}


@pytest.fixture
def tiny_plan(monkeypatch):
    monkeypatch.setattr(runner, "AUTHORS_SIZE", (2, 16))
    monkeypatch.setattr(cases, "compiled", lambda fn: fn)  # torch.compile is exercised elsewhere; keep this fast
    monkeypatch.setattr(runner, "copy_bandwidth_gbps", lambda device: 10.0)


def test_bench_quick_writes_outputs(tmp_path, tiny_plan):
    result = runner.run(tmp_path, quick=True, device="cpu", progress=False, e2e=False)
    data = json.loads((tmp_path / "results.json").read_text())
    assert SCHEMA_TOP <= set(data) and data["records"] == result["records"]
    names = {r["name"] for r in data["records"]}
    for op in ("sample_step[T=64,S=64]", "sample_step[T=64,S=16]", "sample_step_packed[T=64,S=64]", "q_sample",
               "q_sample+diffusion_loss fwd+bwd", "pack_bits", "unpack_bits", "xor_bits(packed)", "bernoulli",
               "binary_quantize"):
        assert op in names
    for record in data["records"]:
        assert SCHEMA_RECORD <= set(record)
        assert record["shape"] == [2, 16, 64]
        assert 0 < record["p20_ms"] <= record["median_ms"] <= record["p80_ms"]
    providers = {r["provider"] for r in data["records"]}
    assert {"reference", "reference-compiled", "numpy"} <= providers
    table = (tmp_path / "results.md").read_text()
    assert "| op | shape | provider |" in table and "vs compiled" in table
    for png in ("speedup.png", "bandwidth.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
