"""Bernoulli diffusion over binary latents: the authors' training loss and sampler on blkit ops."""
import contextlib
import warnings

import torch
from torch import nn

from .. import ops
from ..schedule import NoiseSchedule
from .quantizer import random_seed

__all__ = ["BernoulliDiffusion"]


class _CaptureFailed(RuntimeError):
    """Capturing the sampling loop in a CUDA graph failed after a successful eager warm-up."""


def _signed64(seed: int) -> int:
    return seed - (1 << 64) if seed >= (1 << 63) else seed


class BernoulliDiffusion(nn.Module):
    """Noise schedule + denoiser (``BinaryTransformer`` or any module with the same call signature).

    Loss options (DESIGN §1.3): ``p_flip`` (predict the flip residual; the released recipes), ``balance``,
    ``gamma`` (focal exponent), ``weighting`` ("mean" or "weighted"), ``aux_weight`` (the VLB-style term).
    ``label_dropout``: probability that a training batch drops its labels (the authors' ``guidance`` training,
    0.1 there), for classifier-free guidance. ``backend`` forces a blkit backend for every op call.
    """

    def __init__(self, denoiser: nn.Module, num_steps: int = 64, schedule="linear", *, p_flip: bool = True,
                 balance: bool = True, gamma: float = 0.0, weighting: str = "mean", aux_weight: float = 0.0,
                 label_dropout: float = 0.0, backend=None):
        super().__init__()
        self.denoiser = denoiser
        self.schedule = schedule if isinstance(schedule, NoiseSchedule) else NoiseSchedule(num_steps, schedule)
        if self.schedule.num_steps != num_steps:
            raise ValueError(f"schedule has {self.schedule.num_steps} steps but num_steps={num_steps}")
        if weighting not in ("mean", "weighted"):
            raise ValueError(f"weighting must be 'mean' or 'weighted', got {weighting!r}")
        if not 0.0 <= label_dropout <= 1.0:
            raise ValueError(f"label_dropout must be in [0, 1], got {label_dropout}")
        self.p_flip, self.balance, self.gamma = bool(p_flip), bool(balance), float(gamma)
        self.weighting, self.aux_weight, self.label_dropout = weighting, float(aux_weight), float(label_dropout)
        self.backend = backend
        self._graphs = {}
        self._graph_failed = False

    @property
    def num_steps(self) -> int:
        return self.schedule.num_steps

    @property
    def latent_shape(self) -> tuple:
        """(N, C): positions and bits per position of the denoiser."""
        return self.denoiser.num_positions, self.denoiser.codebook_size

    # --- training -------------------------------------------------------------------------------
    def forward(self, x0, label=None):
        """Same as :meth:`loss` (so DistributedDataParallel wraps the training step)."""
        return self.loss(x0, label)

    def loss(self, x0: torch.Tensor, label=None, *, t=None, seed=None) -> dict:
        """One training loss on clean bits ``x0`` [B, N, C] (uint8/bool/float 0/1).

        t ~ U{1..T} per sample and the Philox seed of the forward noising are drawn from torch's generator
        unless given (``t``: int64 [B]; ``seed``: int or int64 [1] tensor). Returns {"loss" (differentiable,
        aux term included), "bce_loss" (unweighted element loss), "acc" (fraction of bits whose predicted
        clean value is right)} and "aux_loss" when aux_weight > 0, as the authors report them.
        """
        if x0.dim() != 3 or tuple(x0.shape[1:]) != self.latent_shape:
            raise ValueError(f"x0 must have shape [B, {self.latent_shape[0]}, {self.latent_shape[1]}], "
                             f"got {tuple(x0.shape)}")
        b, device = x0.shape[0], x0.device
        if t is None:
            t = torch.randint(1, self.num_steps + 1, (b,), device=device)
        if seed is None:
            seed = random_seed(device)
        x_t, _ = ops.q_sample(x0, t, self.schedule, seed, 0, backend=self.backend)
        if label is not None and self.training and self.label_dropout > 0:
            if torch.rand(()).item() < self.label_dropout:
                label = None
        logits = self.denoiser(x_t, label=label, time_steps=t - 1)
        opts = dict(p_flip=self.p_flip, balance=self.balance, gamma=self.gamma, backend=self.backend)
        loss = ops.diffusion_loss(logits, x_t, x0, t, self.schedule, weighting=self.weighting,
                                  aux_weight=self.aux_weight, **opts)
        with torch.no_grad():
            detached = logits.detach()
            stats = {"loss": loss}
            if self.weighting == "mean" and self.aux_weight == 0:
                stats["bce_loss"] = loss.detach()
            else:
                stats["bce_loss"] = ops.diffusion_loss(detached, x_t, x0, t, self.schedule, **opts)
            phat = ops.posterior(detached, x_t, 1, 0, self.schedule, p_flip=self.p_flip, backend=self.backend)
            stats["acc"] = ((phat > 0.5) == (x0 != 0)).float().mean()
            if self.aux_weight > 0:
                weighted = ops.diffusion_loss(detached, x_t, x0, t, self.schedule, weighting=self.weighting, **opts)
                stats["aux_loss"] = (loss.detach() - weighted) / self.aux_weight
        return stats

    # --- sampling -------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, batch_size: int, *, sample_steps=None, temperature: float = 1.0, seed: int = 0, label=None,
               guidance_scale: float = 0.0, mask=None, known=None, return_all: bool = False, progress: bool = True,
               autocast_dtype=None, cuda_graph=None) -> torch.Tensor:
        """Draw ``batch_size`` latents: uint8 [B, N, C] (or the trajectory [S + 1, B, N, C] with return_all,
        x_T first). Reproducible from ``seed`` on every backend: x_T uses Philox offset 0, step i offset
        (i + 1) * B * N * C.

        label: None, an int (one class for all), or a tensor (int64 [B] classes, float [B, D] / [B, L, D]
        text conditioning). guidance_scale g != 0: logits = (1 + g) * cond - g * uncond (needs a label).
        mask, known: inpainting, broadcastable to [B, N, C] (the authors pass [N, C]); the state is ``known``
        where mask != 0, from x_T on. autocast_dtype: run the denoiser under autocast (torch.bfloat16 or
        torch.float16). cuda_graph: on CUDA (default True there) the whole step loop is captured once per
        configuration and replayed; the seed lives in device memory, so a new seed gives new samples. With the
        default (None) a capture that fails warns once and falls back to the eager loop (same bits).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 1 << 64:
            raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
        grid = self.schedule.sampling_steps(sample_steps or self.num_steps)
        device = next(self.parameters()).device
        shape = (batch_size, *self.latent_shape)
        label = self._sample_label(label, batch_size, device)
        guidance_scale = float(guidance_scale)
        if guidance_scale != 0.0 and label is None:
            raise ValueError("guidance_scale != 0 needs a label (classifier-free guidance mixes the conditional "
                             "and unconditional predictions)")
        if (mask is None) != (known is None):
            raise ValueError("mask and known must be given together (inpainting)")
        if mask is not None:
            mask, known = self._inpaint_inputs(mask, known, shape, device)
        run = dict(shape=shape, grid=grid, temperature=float(temperature), guidance_scale=guidance_scale,
                   return_all=return_all, autocast_dtype=autocast_dtype)
        if cuda_graph and device.type != "cuda":
            raise ValueError("cuda_graph=True needs the model on a CUDA device")
        if cuda_graph or (cuda_graph is None and device.type == "cuda" and not self._graph_failed):
            try:
                return self._sample_graphed(seed, label, mask, known, progress, run)
            except _CaptureFailed as exc:
                if cuda_graph:
                    raise exc.__cause__ from None
                self._graph_failed = True
                warnings.warn(f"CUDA-graph capture of the sampler failed ({exc}); sampling without a graph from "
                              "now on", RuntimeWarning, stacklevel=2)
        seed_t = torch.tensor([_signed64(seed)], dtype=torch.int64, device=device)
        return self._sample_loop(seed_t, label, mask, known, progress=progress, **run)

    def _sample_label(self, label, batch_size, device):
        if label is None:
            return None
        if isinstance(label, int) and not isinstance(label, bool):
            return torch.full((batch_size,), label, dtype=torch.int64, device=device)
        if not isinstance(label, torch.Tensor) or label.shape[0] != batch_size:
            raise ValueError(f"label must be None, an int or a tensor with batch_size={batch_size} rows, got "
                             f"{label if not isinstance(label, torch.Tensor) else tuple(label.shape)}")
        return label.to(device)

    @staticmethod
    def _inpaint_inputs(mask, known, shape, device):
        for name, value in (("mask", mask), ("known", known)):
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{name} must be a tensor, got {type(value).__name__}")
            try:
                ok = torch.broadcast_shapes(value.shape, shape) == torch.Size(shape)
            except RuntimeError:
                ok = False
            if not ok:
                raise ValueError(f"{name} of shape {tuple(value.shape)} does not broadcast to {shape}")
        return (mask != 0).to(device=device, dtype=torch.uint8), (known != 0).to(device=device, dtype=torch.uint8)

    def _denoise(self, x, label, time_steps, autocast_dtype, graphed):
        ctx = contextlib.nullcontext()
        if autocast_dtype is not None:
            ctx = torch.autocast(x.device.type, dtype=autocast_dtype, cache_enabled=not graphed)
        with ctx:
            return self.denoiser(x, label=label, time_steps=time_steps)

    @staticmethod
    def _step_tensors(grid, batch, device):
        """int64 [S, B] current and next steps on ``device`` (made before a capture: no host copies inside)."""
        rows = torch.tensor([grid, grid[1:] + [0]], dtype=torch.int64, device=device)
        return tuple(r.view(-1, 1).repeat(1, batch) for r in rows)

    def _sample_loop(self, seed_t, label, mask, known, *, shape, grid, temperature, guidance_scale, return_all,
                     autocast_dtype, progress, step_tensors=None):
        """The step loop. Eager: Python-int steps (no host sync for validation). Graphed (``step_tensors``
        given): steps, offsets and seed are device tensors, so nothing is copied from the host while a CUDA
        graph is captured; the values are the same, so both give the same bits."""
        from tqdm.auto import tqdm

        graphed = step_tensors is not None
        device, numel, b = seed_t.device, shape[0] * shape[1] * shape[2], shape[0]
        offsets = torch.arange(len(grid) + 1, dtype=torch.int64, device=device) * numel
        nexts = grid[1:] + [0]
        x = ops.bernoulli(torch.full(shape, 0.5, device=device), seed_t, offsets[0:1], backend=self.backend)
        if mask is not None:
            x = torch.where(mask != 0, known, x)
        trajectory = [x] if return_all else None
        steps = tqdm(range(len(grid)), disable=not progress or graphed, desc="sampling", leave=False)
        for i in steps:
            if graphed:
                t, t_prev = step_tensors[0][i], step_tensors[1][i]
                time_steps = t - 1
            else:
                t, t_prev = grid[i], nexts[i]
                time_steps = torch.full((b,), t - 1, dtype=torch.int64, device=device)
            logits = self._denoise(x, label, time_steps, autocast_dtype, graphed)
            uncond = None
            if guidance_scale != 0.0:
                uncond = self._denoise(x, None, time_steps, autocast_dtype, graphed)
            x = ops.sample_step(logits, x, t, t_prev, self.schedule, seed_t, offsets[i + 1:i + 2],
                                temperature=temperature, p_flip=self.p_flip, uncond_logits=uncond,
                                guidance_scale=guidance_scale, mask=mask, known=known, backend=self.backend)
            if return_all:
                trajectory.append(x)
        return torch.stack(trajectory) if return_all else x

    def _sample_graphed(self, seed, label, mask, known, progress, run):
        """Capture the step loop once per configuration; replay with the seed written into device memory."""
        from tqdm.auto import tqdm

        def spec(v):
            return None if v is None else (tuple(v.shape), v.dtype)

        key = (run["shape"], tuple(run["grid"]), run["temperature"], run["guidance_scale"], run["return_all"],
               run["autocast_dtype"], spec(label), spec(mask), spec(known), self.backend, self.p_flip,
               next(self.parameters()).dtype, next(self.parameters()).device)
        entry = self._graphs.get(key)
        device = key[-1]
        if entry is None:
            static = {"seed": torch.zeros(1, dtype=torch.int64, device=device),
                      "label": None if label is None else label.clone(),
                      "mask": None if mask is None else mask.clone(),
                      "known": None if known is None else known.clone(),
                      "steps": self._step_tensors(run["grid"], run["shape"][0], device)}

            def loop():
                return self._sample_loop(static["seed"], static["label"], static["mask"], static["known"],
                                         progress=False, step_tensors=static["steps"], **run)

            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                loop()  # warm-up: lazy initialisation, cached schedule tables, autotuning
            torch.cuda.current_stream(device).wait_stream(side)
            try:
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    out = loop()
            except Exception as exc:  # the eager warm-up worked, so this is a capture limitation
                raise _CaptureFailed(f"{type(exc).__name__}: {exc}") from exc
            entry = self._graphs[key] = (graph, static, out)
        graph, static, out = entry
        static["seed"].fill_(_signed64(seed))
        for name, value in (("label", label), ("mask", mask), ("known", known)):
            if value is not None:
                static[name].copy_(value)
        with tqdm(total=len(run["grid"]), disable=not progress, desc="sampling (CUDA graph)", leave=False) as bar:
            graph.replay()
            bar.update(len(run["grid"]))
        return out.clone()

    def clear_cuda_graphs(self) -> None:
        """Free the captured sampling graphs (they hold their own memory pools) and retry capturing next time."""
        self._graphs.clear()
        self._graph_failed = False

    @classmethod
    def from_official(cls, state_dict, **overrides) -> "BernoulliDiffusion":
        """Build from the authors' sampler state dict (``_denoise_fn.*``, ``scheduler.*`` buffers; also with a
        ``module.`` prefix or a bare denoiser dict plus ``num_steps=``). T and the schedule kind come from
        ``scheduler.k_final``; widths, depth, codebook size, number of positions, class/text conditioning
        from the denoiser weights. Overrides: num_heads (default 12), p_flip (default True, the released
        recipes), balance, gamma, weighting, aux_weight, label_dropout, backend, num_steps, schedule,
        latent_shape, time_embedding_steps (the authors' ``sample_steps`` at training time, default T)."""
        from . import checkpoint

        return checkpoint.load_diffusion(state_dict, **overrides)
