"""Records tl.rand values from Triton (run under TRITON_INTERPRET=1 on a CPU, or on a GPU) into tl_rand.json.

    TRITON_INTERPRET=1 python tests/golden/make_golden.py
The JSON stores the float32 results as int32 bit patterns so equality is exact.
"""
import json
import os
import pathlib

import torch
import triton
from blkit.kernels.random import uniform_kernel

CASES = [  # (seed, offset): zero, small, key words both set, counters crossing 2**32, top of the 64-bit range
    (0, 0), (42, 0), (1, 1000), (4294967303, 4294967293), (2**32 - 1, 2**32 - 4), (9223372036854775813, 123456789012),
    (2**64 - 1, 2**64 - 16), (123456789, 2**40 + 5),
]
COUNT = 16


def main():
    device = "cpu" if os.environ.get("TRITON_INTERPRET") == "1" else "cuda"
    records = []
    for seed, offset in CASES:
        out = torch.empty(COUNT, dtype=torch.float32, device=device)
        uniform_kernel[(1,)](out, seed, offset, COUNT, BLOCK=COUNT)
        records.append({"seed": seed, "offset": offset, "bits": out.cpu().view(torch.int32).tolist()})
    path = pathlib.Path(__file__).with_name("tl_rand.json")
    path.write_text(json.dumps({"triton": triton.__version__, "device": device, "cases": records}, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
