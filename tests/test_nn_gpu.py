"""BernoulliDiffusion on CUDA: the sampler captured in a CUDA graph (skipped without a GPU)."""
import pytest
import torch

from .test_nn_official_format import SMALL, official_sampler_state_dict

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture
def cuda_target(target):
    if target.device != "cuda":
        pytest.skip("CUDA targets only")
    for op in ("bernoulli", "sample_step"):
        target.require(op)
    return target


def _model(backend, **kw):
    from blkit.nn import BernoulliDiffusion

    sd = official_sampler_state_dict(**kw)
    return BernoulliDiffusion.from_official(sd, num_heads=SMALL["heads"], backend=backend).cuda().eval()


def test_graph_replay_equals_eager_and_reseeds(cuda_target):
    model = _model(cuda_target.backend)
    eager = model.sample(3, seed=11, cuda_graph=False, progress=False)
    first = model.sample(3, seed=11, cuda_graph=True, progress=False)
    assert torch.equal(first, eager)
    other = model.sample(3, seed=12, cuda_graph=True, progress=False)
    assert not torch.equal(other, first)  # the seed lives in device memory, not in the graph
    assert torch.equal(other, model.sample(3, seed=12, cuda_graph=False, progress=False))
    assert torch.equal(model.sample(3, seed=11, progress=False), first)  # graphs are the default on CUDA
    assert len(model._graphs) == 1  # one capture per configuration
    model.sample(2, seed=11, progress=False)
    assert len(model._graphs) == 2
    model.clear_cuda_graphs()
    assert not model._graphs


def test_graph_replay_has_no_host_synchronisation(cuda_target):
    model = _model(cuda_target.backend)
    model.sample(2, seed=1, progress=False)  # capture
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = model.sample(2, seed=2, progress=False)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.shape == (2, SMALL["positions"], SMALL["bits"])


def test_graph_with_guidance_inpainting_trajectory_and_autocast(cuda_target):
    model = _model(cuda_target.backend, num_classes=5)
    n, c = SMALL["positions"], SMALL["bits"]
    mask = (torch.rand(n, c, device="cuda") < 0.3).to(torch.uint8)
    known = torch.randint(0, 2, (n, c), dtype=torch.uint8, device="cuda")
    kw = dict(seed=5, label=torch.tensor([1, 4], device="cuda"), guidance_scale=2.0, mask=mask, known=known,
              return_all=True, sample_steps=4, progress=False)
    graphed = model.sample(2, cuda_graph=True, **kw)
    assert torch.equal(graphed, model.sample(2, cuda_graph=False, **kw))
    m = mask.bool().expand_as(graphed)
    assert torch.equal(graphed[m], known.expand_as(graphed)[m])
    # a new label goes into the captured graph's input buffer
    kw["label"] = torch.tensor([0, 0], device="cuda")
    assert torch.equal(model.sample(2, cuda_graph=True, **kw), model.sample(2, cuda_graph=False, **kw))
    for dtype in (torch.bfloat16, torch.float16):
        kw.update(autocast_dtype=dtype)
        assert torch.equal(model.sample(2, cuda_graph=True, **kw), model.sample(2, cuda_graph=False, **kw))


def test_training_step_on_cuda_matches_cpu_loss(cuda_target):
    for op in ("q_sample", "diffusion_loss", "posterior"):
        cuda_target.require(op)
    gpu = _model(cuda_target.backend).train()
    cpu = _model(None).cpu().train()
    x0 = torch.randint(0, 2, (4, SMALL["positions"], SMALL["bits"]), dtype=torch.uint8)
    t = torch.tensor([1, 3, 5, 8])
    a = gpu.loss(x0.cuda(), t=t.cuda(), seed=3)
    b = cpu.loss(x0, t=t, seed=3)
    torch.testing.assert_close(a["loss"].cpu(), b["loss"], rtol=1e-4, atol=1e-5)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        stats = gpu.loss(x0.cuda())
    stats["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in gpu.parameters() if p.grad is not None)
