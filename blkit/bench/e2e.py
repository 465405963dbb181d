"""End-to-end cases: a full sampling run and one training step, blkit's modules vs the authors' program.

GPU: the authors' denoiser size (24 layers x 768, 12 heads), C = 64, N = 256, T = 64, S in {64, 16}, batch 1
and 64, random weights; blkit samples through a CUDA graph, in float32 and with bf16 autocast; the reference
runs its denoiser in float32 (as the authors do). CPU: a small denoiser (labelled in the case name) so the
run finishes in minutes.
"""
import torch

from .. import reference as authors
from ..nn import BernoulliDiffusion, BinaryTransformer
from .cases import Case

GPU_CONFIG = dict(dim=768, depth=24, num_heads=12)
CPU_CONFIG = dict(dim=64, depth=2, num_heads=4)
T, N, C = 64, 256, 64


def _model(device: str):
    config = GPU_CONFIG if device == "cuda" else CPU_CONFIG
    torch.manual_seed(0)
    denoiser = BinaryTransformer(codebook_size=C, latent_shape=(16, 16), num_steps=T, **config)
    return BernoulliDiffusion(denoiser, num_steps=T).to(device).eval(), config


def cases(device: str, quick: bool) -> list:
    model, config = _model(device)
    label = f"denoiser {config['depth']}x{config['dim']}" + ("" if device == "cuda" else ", small CPU config")
    sched = authors.Scheduler(T).to(device)
    batches = (1, 64) if device == "cuda" or not quick else (1, 8)
    steps = (64, 16) if device == "cuda" or not quick else (16,)
    result = []
    for batch in batches:
        for s in steps:
            providers = {"blkit": lambda b=batch, s=s: model.sample(b, sample_steps=s, seed=1, progress=False)}
            if device == "cuda":
                providers["blkit-bf16"] = lambda b=batch, s=s: model.sample(
                    b, sample_steps=s, seed=1, progress=False, autocast_dtype=torch.bfloat16)
            providers["reference"] = lambda b=batch, s=s: authors.sample(
                model.denoiser, sched, b, N, C, sample_steps=s, device=device)
            result.append(_e2e_case(f"e2e sample[T={T},S={s}] ({label})", (batch, N, C), providers, batch,
                                    device))
    train_batch = 64 if device == "cuda" else 8
    result.append(_e2e_case(f"e2e train step ({label})", (train_batch, N, C),
                            _training_providers(model, sched, train_batch, device), train_batch, device))
    return result


def _training_providers(model, sched, batch, device):
    """One optimisation step (forward, backward, AdamW) of blkit's loss and of the authors' loss."""
    x0 = torch.randint(0, 2, (batch, N, C), generator=torch.Generator().manual_seed(0)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    autocast = torch.autocast(device, dtype=torch.bfloat16)

    def blkit_step():
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = model.loss(x0)["loss"]
        loss.backward()
        optimizer.step()

    def reference_step():
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = authors.train_loss(model.denoiser, x0.float(), sched)["loss"]
        loss.backward()
        optimizer.step()

    return {"blkit": blkit_step, "reference": reference_step}


def _e2e_case(name, shape, providers, samples, device):
    return Case(name, shape, "float32", 0, providers, samples=samples, min_repeats=3 if device == "cpu" else 5)
