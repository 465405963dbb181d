"""BernoulliDiffusion training loss and sampler on every available backend (the ``target`` fixture).

Loss: equals the authors' loss (blkit.reference.loss_from_logits) on the same noised input, value and
gradients; the same seed gives the same result on every backend; works under torch.compile and autocast with
the aux term. Sampler: equals an independent loop (functional denoiser, the authors' chain-of-one-step
posterior, Bernoulli draws from the documented Philox offsets); the same seed gives the same bits on every
backend; guidance, inpainting, return_all, progress bar, argument errors.
"""
import pytest
import torch

from blkit import ops
from blkit import reference as authors
from blkit.nn import BernoulliDiffusion, BinaryTransformer

from .test_nn_official_format import SMALL, functional_denoiser, official_sampler_state_dict

HEADS, T, N, C = SMALL["heads"], SMALL["steps"], SMALL["positions"], SMALL["bits"]


def _model(backend=None, **kw):
    sd_kw = {k: kw.pop(k) for k in ("num_classes", "cond_dim", "cross", "kind") if k in kw}
    sd = official_sampler_state_dict(**sd_kw)
    model = BernoulliDiffusion.from_official(sd, num_heads=HEADS, backend=backend, **kw)
    return sd, model


def _x0(batch=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, N, C, generator=gen) < 0.3).to(torch.uint8)


LOSS_OPTIONS = [
    dict(),
    dict(weighting="weighted", aux_weight=0.1),
    dict(p_flip=False, balance=False, gamma=1.0),
]


# --- loss -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("options", LOSS_OPTIONS, ids=["default", "weighted_aux", "x0_focal"])
def test_loss_matches_authors_loss(target, options):
    for op in ("q_sample", "diffusion_loss", "posterior"):
        target.require(op)
    sd, model = _model(target.backend, **options)
    x0, t, seed = _x0(), torch.tensor([1, 5, 8]), 1234
    stats = model.loss(x0, t=t, seed=seed)
    x_t, _ = ops.q_sample(x0, t, model.schedule, seed, 0, backend="reference")
    logits = functional_denoiser(sd, x_t, t - 1, heads=HEADS, num_steps=T).float()
    ref = authors.loss_from_logits(logits, x0.float(), x_t.float(), t, authors.Scheduler(T), **options)
    for key in ("loss", "bce_loss"):
        torch.testing.assert_close(stats[key].detach(), ref[key], rtol=2e-5, atol=2e-6)
    assert abs(stats["acc"].item() - ref["acc"].item()) <= 1.0 / x0.numel()
    if "aux_weight" in options:
        torch.testing.assert_close(stats["aux_loss"], ref["aux_loss"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("options", LOSS_OPTIONS[:2], ids=["default", "weighted_aux"])
def test_loss_gradients_match_autograd_of_authors_loss(target, options):
    for op in ("q_sample", "diffusion_loss", "posterior"):
        target.require(op)
    _, model = _model(target.backend, **options)
    x0, t, seed = _x0(), torch.tensor([2, 4, 7]), 99
    params = list(model.parameters())
    grads = torch.autograd.grad(model.loss(x0, t=t, seed=seed)["loss"], params)
    x_t, _ = ops.q_sample(x0, t, model.schedule, seed, 0, backend="reference")
    logits = model.denoiser(x_t, time_steps=t - 1)
    ref = authors.loss_from_logits(logits, x0.float(), x_t.float(), t, authors.Scheduler(T), **options)["loss"]
    ref_grads = torch.autograd.grad(ref, params)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-7)


def test_loss_same_seed_same_value_on_every_backend(target):
    for op in ("q_sample", "diffusion_loss", "posterior"):
        target.require(op)
    _, model = _model(target.backend, aux_weight=0.1)
    _, ref_model = _model("reference", aux_weight=0.1)
    x0 = _x0(batch=4)
    torch.manual_seed(7)  # same t and seed drawn from torch's generator
    got = model.loss(x0)
    torch.manual_seed(7)
    want = ref_model.loss(x0)
    for key in want:
        torch.testing.assert_close(got[key].detach(), want[key].detach(), rtol=2e-5, atol=2e-6)


def test_loss_draws_fresh_noise_each_call():
    _, model = _model()
    x0 = _x0()
    a, b = model.loss(x0)["loss"].item(), model.loss(x0)["loss"].item()
    assert a != b


def test_loss_under_torch_compile_fullgraph():
    _, model = _model(aux_weight=0.1, weighting="weighted")
    x0, t = _x0(), torch.tensor([1, 3, 8])
    seed = torch.tensor([5], dtype=torch.int64)

    def step(x0, t, seed):
        return model.loss(x0, t=t, seed=seed)["loss"]

    compiled = torch.compile(step, backend="aot_eager", fullgraph=True)
    eager = step(x0, t, seed)
    got = compiled(x0, t, seed)
    torch.testing.assert_close(got, eager)
    grads = torch.autograd.grad(got, list(model.parameters()))
    ref = torch.autograd.grad(step(x0, t, seed), list(model.parameters()))
    for g, r in zip(grads, ref):
        torch.testing.assert_close(g, r)
    # random t and seed drawn inside the compiled graph
    stats = torch.compile(lambda x: model.loss(x), backend="aot_eager", fullgraph=True)(x0)
    assert torch.isfinite(stats["loss"]) and 0 <= stats["acc"].item() <= 1


@pytest.mark.slow
def test_loss_under_torch_compile_inductor():
    _, model = _model(aux_weight=0.1)
    x0, t = _x0(), torch.tensor([1, 3, 8])
    step = lambda x0, t: model.loss(x0, t=t, seed=3)["loss"]  # noqa: E731
    got = torch.compile(step, fullgraph=True)(x0, t)
    torch.testing.assert_close(got, step(x0, t), rtol=1e-4, atol=1e-6)
    got.backward()


def test_loss_under_autocast_with_aux_term():
    """bf16 autocast (the authors' aux term crashes under autocast): finite, close to float32, backward works."""
    _, model = _model(aux_weight=0.1, weighting="weighted")
    x0, t = _x0(), torch.tensor([1, 4, 6])
    full = model.loss(x0, t=t, seed=11)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = model.loss(x0, t=t, seed=11)
    assert half["loss"].dtype == torch.float32 and torch.isfinite(half["loss"])
    torch.testing.assert_close(half["loss"], full["loss"], rtol=5e-2, atol=1e-3)
    assert "aux_loss" in half and torch.isfinite(half["aux_loss"])
    half["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_label_dropout_and_class_conditional_loss():
    _, model = _model(num_classes=5, label_dropout=1.0)
    x0, t, label = _x0(), torch.tensor([1, 2, 3]), torch.tensor([0, 1, 4])
    model.train()
    dropped = model.loss(x0, label, t=t, seed=0)["loss"]
    assert torch.equal(dropped, model.loss(x0, None, t=t, seed=0)["loss"])
    model.eval()  # no dropout outside training
    assert not torch.equal(model.loss(x0, label, t=t, seed=0)["loss"], dropped)


def test_loss_input_errors():
    _, model = _model()
    with pytest.raises(ValueError, match="x0 must have shape"):
        model.loss(torch.zeros(2, N, C + 1, dtype=torch.uint8))
    with pytest.raises(ValueError, match="t must lie in"):
        model.loss(_x0(), t=torch.tensor([0, 1, 2]))


# --- sampling ---------------------------------------------------------------------------------------
def _manual_sample(sd, schedule_steps, batch, seed, *, sample_steps=None, temperature=1.0, label=None,
                   guidance=0.0, mask=None, known=None):
    """Independent sampler loop: float64 functional denoiser, the authors' posterior (chain of one-step
    transitions), draws (u < pi) from blkit's Philox stream at offset (i + 1) * numel."""
    sched = authors.Scheduler(schedule_steps)
    grid = authors.sampling_steps(schedule_steps, sample_steps or schedule_steps)
    shape = (batch, N, C)
    numel = batch * N * C
    x = ops.bernoulli(torch.full(shape, 0.5), seed, 0, backend="reference")
    if mask is not None:
        x = torch.where(mask.bool(), known, x)
    for i, t in enumerate(grid):
        t_prev = grid[i + 1] if i + 1 < len(grid) else 0
        ts = torch.full((batch,), t - 1)
        logits = functional_denoiser(sd, x, ts, label, heads=HEADS, num_steps=schedule_steps).float()
        uncond = None
        if guidance:
            uncond = functional_denoiser(sd, x, ts, None, heads=HEADS, num_steps=schedule_steps).float()
        pi = authors.posterior(logits, x.float(), t, t_prev, sched, temp=temperature, uncond_logits=uncond,
                               guidance=guidance)
        x = (pi > 0.5).to(torch.uint8) if t_prev == 0 else ops.bernoulli(pi, seed, (i + 1) * numel,
                                                                          backend="reference")
        if mask is not None:
            x = torch.where(mask.bool(), known, x)
    return x


@pytest.mark.parametrize("sample_steps, temperature", [(None, 1.0), (3, 0.7)])
def test_sample_matches_independent_loop(target, sample_steps, temperature):
    target.require("bernoulli")
    target.require("sample_step")
    sd, model = _model(target.backend)
    got = model.sample(2, sample_steps=sample_steps, temperature=temperature, seed=42, progress=False)
    want = _manual_sample(sd, T, 2, 42, sample_steps=sample_steps, temperature=temperature)
    assert got.dtype == torch.uint8 and got.shape == (2, N, C)
    assert torch.equal(got, want)


def test_sample_same_seed_same_bits_on_every_backend(target):
    target.require("bernoulli")
    target.require("sample_step")
    _, model = _model(target.backend)
    _, ref_model = _model("reference")
    kw = dict(sample_steps=4, progress=False)
    got = model.sample(3, seed=2**64 - 5, **kw)
    assert torch.equal(got, ref_model.sample(3, seed=2**64 - 5, **kw))
    assert torch.equal(got, model.sample(3, seed=2**64 - 5, **kw))
    assert not torch.equal(got, model.sample(3, seed=1, **kw))


def test_sample_guidance_matches_independent_loop(target):
    target.require("sample_step")
    target.require("bernoulli")
    sd, model = _model(target.backend, num_classes=5)
    got = model.sample(2, seed=3, sample_steps=4, label=torch.tensor([1, 3]), guidance_scale=1.5, progress=False)
    want = _manual_sample(sd, T, 2, 3, sample_steps=4, label=torch.tensor([1, 3]), guidance=1.5)
    assert torch.equal(got, want)
    assert torch.equal(model.sample(2, seed=3, sample_steps=2, label=2, progress=False),
                       model.sample(2, seed=3, sample_steps=2, label=torch.tensor([2, 2]), progress=False))


def test_sample_inpainting_keeps_known_bits_from_the_first_state(target):
    target.require("sample_step")
    target.require("bernoulli")
    sd, model = _model(target.backend)
    gen = torch.Generator().manual_seed(5)
    mask = (torch.rand(N, C, generator=gen) < 0.5).to(torch.uint8)  # the authors' [N, C] form
    known = torch.randint(0, 2, (N, C), dtype=torch.uint8, generator=gen)
    traj = model.sample(2, seed=8, mask=mask, known=known, return_all=True, progress=False)
    assert traj.shape == (T + 1, 2, N, C)
    m = mask.bool().expand_as(traj)
    assert torch.equal(traj[m], known.expand_as(traj)[m])
    want = _manual_sample(sd, T, 2, 8, mask=mask, known=known)
    assert torch.equal(traj[-1], want)


def test_sample_return_all_trajectory():
    _, model = _model()
    traj = model.sample(2, sample_steps=4, seed=9, return_all=True, progress=False)
    assert traj.shape == (5, 2, N, C) and traj.dtype == torch.uint8
    assert torch.equal(traj[-1], model.sample(2, sample_steps=4, seed=9, progress=False))
    assert torch.equal(traj[0], ops.bernoulli(torch.full((2, N, C), 0.5), 9, 0))


def test_sample_progress_bar_can_be_turned_off(capsys):
    _, model = _model()
    model.sample(1, sample_steps=2, progress=True)
    assert "sampling" in capsys.readouterr().err
    model.sample(1, sample_steps=2, progress=False)
    assert capsys.readouterr().err == ""


def test_sample_under_autocast_dtype():
    _, model = _model()
    x = model.sample(2, seed=4, autocast_dtype=torch.bfloat16, progress=False)
    assert x.dtype == torch.uint8 and x.shape == (2, N, C) and int(x.max()) <= 1


def test_sample_cross_attention_and_text_token_models():
    for kw, label in ((dict(cond_dim=12, cross=True), torch.randn(2, 5, 12)), (dict(cond_dim=12), torch.randn(2, 12))):
        sd, model = _model(**kw)
        got = model.sample(2, seed=6, sample_steps=3, label=label, guidance_scale=0.5, progress=False)
        assert torch.equal(got, _manual_sample(sd, T, 2, 6, sample_steps=3, label=label, guidance=0.5))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=2, seed=-1), ValueError, "seed"),
    (dict(batch_size=2, sample_steps=T + 1), ValueError, "num_sample_steps"),
    (dict(batch_size=2, guidance_scale=1.0), ValueError, "needs a label"),
    (dict(batch_size=2, mask=torch.ones(N, C)), ValueError, "mask and known"),
    (dict(batch_size=2, mask=torch.ones(N, C + 1), known=torch.ones(N, C + 1)), ValueError, "does not broadcast"),
    (dict(batch_size=2, temperature=0.0), ValueError, "temperature"),
    (dict(batch_size=2, label=torch.tensor([1, 2, 3])), ValueError, "label"),
    (dict(batch_size=2, cuda_graph=True), ValueError, "CUDA"),
])
def test_sample_argument_errors(kwargs, error, message):
    _, model = _model()
    batch = kwargs.pop("batch_size")
    with pytest.raises(error, match=message):
        model.sample(batch, progress=False, **kwargs)


def test_sample_label_on_unconditional_model_raises():
    _, model = _model()
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(2, label=1, progress=False)


def test_plain_constructor_and_schedule_object():
    from blkit import NoiseSchedule

    den = BinaryTransformer(codebook_size=4, latent_shape=(2, 3), dim=16, depth=1, num_heads=2, num_steps=5)
    model = BernoulliDiffusion(den, num_steps=5, schedule=NoiseSchedule(5, "cos"))
    assert model.latent_shape == (6, 4)
    x = model.sample(2, seed=1, progress=False)
    assert x.shape == (2, 6, 4)
    with pytest.raises(ValueError, match="num_steps"):
        BernoulliDiffusion(den, num_steps=6, schedule=NoiseSchedule(5))
    with pytest.raises(ValueError, match="weighting"):
        BernoulliDiffusion(den, num_steps=5, weighting="sum")


def test_graph_capture_path_gives_the_same_bits_on_cpu(target):
    """The loop as it is captured in a CUDA graph (steps, offsets and seed as device tensors, per-sample step
    tensors for the ops) runs on CPU too and gives the eager loop's bits (the capture itself needs a GPU)."""
    target.require("bernoulli")
    target.require("sample_step")
    _, model = _model(target.backend, num_classes=5)
    grid = model.schedule.sampling_steps(5)
    label = torch.tensor([1, 2])
    run = dict(shape=(2, N, C), grid=grid, temperature=0.9, guidance_scale=1.0, return_all=True, autocast_dtype=None)
    seed_t = torch.tensor([77])
    with torch.no_grad():
        graphed = model._sample_loop(seed_t, label, None, None, progress=False,
                                     step_tensors=model._step_tensors(grid, 2, "cpu"), **run)
    eager = model.sample(2, sample_steps=5, temperature=0.9, seed=77, label=label, guidance_scale=1.0,
                         return_all=True, progress=False)
    assert torch.equal(graphed, eager)
