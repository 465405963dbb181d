"""One DistributedDataParallel optimisation step of BernoulliDiffusion (gloo, CPU).

Launched by tests/test_nn_ddp.py as ``torchrun --nproc_per_node=2 tests/ddp_train_step.py OUT.json``.
Each rank feeds different data and noise; afterwards every rank must hold identical parameters that moved
away from the initial ones. Rank 0 writes a JSON report to OUT.json.
"""
import json
import os
import sys

import torch
import torch.distributed as dist

from blkit.nn import BernoulliDiffusion, BinaryTransformer


def main(out_path: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)  # same initial weights everywhere (DDP also broadcasts rank 0's)
    denoiser = BinaryTransformer(codebook_size=8, latent_shape=(4, 4), dim=32, depth=2, num_heads=4, num_steps=8)
    model = BernoulliDiffusion(denoiser, num_steps=8, aux_weight=0.1, weighting="weighted")
    initial = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    optim = torch.optim.AdamW(ddp.parameters(), lr=1e-3)

    torch.manual_seed(100 + rank)  # different batch, steps and noise seed per rank
    x0 = (torch.rand(4, 16, 8) < 0.4).to(torch.uint8)
    stats = ddp(x0)
    stats["loss"].backward()
    optim.step()

    final = torch.cat([p.detach().flatten() for p in model.parameters()])
    finals = [torch.empty_like(final) for _ in range(world)]
    dist.all_gather(finals, final)
    losses = [torch.zeros(1) for _ in range(world)]
    dist.all_gather(losses, stats["loss"].detach().reshape(1))
    if rank == 0:
        report = {
            "world_size": world,
            "losses": [float(v) for v in losses],
            "max_param_diff_between_ranks": max(float((f - finals[0]).abs().max()) for f in finals),
            "max_param_change": float((final - initial).abs().max()),
            "finite": bool(torch.isfinite(final).all()),
        }
        with open(out_path, "w") as f:
            json.dump(report, f)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(sys.argv[1])
