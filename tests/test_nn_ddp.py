"""BernoulliDiffusion under DistributedDataParallel: torchrun, 2 processes, gloo on CPU, one step."""
import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest
import torch.distributed as dist

SCRIPT = pathlib.Path(__file__).with_name("ddp_train_step.py")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo")
def test_ddp_one_step_identical_parameters_on_both_ranks(tmp_path):
    out = tmp_path / "ddp.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("TRITON_INTERPRET", None)  # CPU tensors use the default CPU backends
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(SCRIPT), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300,
                          cwd=pathlib.Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    report = json.loads(out.read_text())
    assert report["world_size"] == 2 and report["finite"]
    assert report["losses"][0] != report["losses"][1]  # the ranks really saw different data
    assert report["max_param_change"] > 0  # the step moved the parameters
    assert report["max_param_diff_between_ranks"] == 0.0  # gradients were all-reduced
