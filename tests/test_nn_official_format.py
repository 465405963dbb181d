"""blkit.nn against the authors' architecture: state dicts in their key format (generated from the key lists
of the released checkpoints, at small sizes), loaded with ``from_official``, compared with independent
functional forwards written here from the published architecture (plain torch.nn.functional on the state
dict, float64), to float32 tolerance. Also: prefixes, ignored keys, inference of the architecture and the
schedule, and the errors for inconsistent state dicts.

The helpers (state-dict generators, functional forwards) are imported by the other test_nn_* files.
"""
import math
import pathlib
import re

import pytest
import torch
import torch.nn.functional as F

from blkit import reference as authors
from blkit.nn import BernoulliDiffusion, BinaryAutoencoder, BinaryTransformer, sincos_pos_embed_2d

REFERENCE_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "reference-data"
if not REFERENCE_DATA.is_dir():
    REFERENCE_DATA = pathlib.Path("/work/shared/reference-data")

# Small stand-ins for the released sizes (width 768, 24 layers, 256 positions, 64 bits, T = 64).
SMALL = dict(dim=32, heads=4, depth=2, positions=16, bits=8, steps=8)


def read_keys(name: str) -> list:
    """[(key, shape)] from a reference-data key list ('key (d0, d1) [dtype]' per line)."""
    keys = []
    for line in (REFERENCE_DATA / name).read_text().splitlines():
        m = re.match(r"^(\S+) \(([\d, ]*)\)", line.strip())
        if m:
            keys.append((m.group(1), tuple(int(d) for d in m.group(2).replace(" ", "").split(",") if d)))
    return keys


def _random_tensor(key: str, shape, gen) -> torch.Tensor:
    t = torch.randn(shape, generator=gen, dtype=torch.float64)
    last = key.rsplit(".", 1)[-1]
    is_norm = re.search(r"(^|\.)(ln\w*|norm\w*)\.weight$", key) or (
        len(shape) == 1 and re.search(r"blocks\.\d+\.weight$", key))
    if is_norm or last.startswith("gamma"):
        return (1.0 + 0.2 * t).float()  # norm scales and LayerScale around 1
    if len(shape) >= 2 and last == "weight":
        fan_in = math.prod(shape[1:])
        return (t / math.sqrt(fan_in)).float()
    return (0.2 * t).float()


def official_sampler_state_dict(*, dim=SMALL["dim"], depth=SMALL["depth"], positions=SMALL["positions"],
                                bits=SMALL["bits"], steps=SMALL["steps"], kind="linear", num_classes=None,
                                cond_dim=None, cross=False, seed=0) -> dict:
    """The released sampler's key list with every size scaled down, random weights, and the authors'
    scheduler buffers for (steps, kind). Optional class token / text token / cross-attention keys."""
    gen = torch.Generator().manual_seed(seed)
    size = {768: dim, 2304: 3 * dim, 3072: 4 * dim, 256: positions, 64: bits}
    sd = {}
    for key, shape in read_keys("official_sampler_keys.txt"):
        m = re.search(r"blocks\.(\d+)\.", key)
        if key.startswith("scheduler.") or (m and int(m.group(1)) >= depth):
            continue
        sd[key] = _random_tensor(key, tuple(size.get(d, d) for d in shape), gen)
    sched = authors.Scheduler(steps, kind)
    for name in ("k_final", "b_final", "beta", "cumbeta"):
        sd[f"scheduler.{name}"] = getattr(sched, name).clone()
    p = "_denoise_fn."
    if num_classes is not None:
        sd[p + "cls_embedding.weight"] = _random_tensor("cls_embedding.weight", (num_classes, dim), gen) * 10
    elif cond_dim is not None and not cross:
        sd[p + "cls_embedding.weight"] = _random_tensor("cls_embedding.weight", (dim, cond_dim), gen)
        sd[p + "cls_embedding.bias"] = _random_tensor("cls_embedding.bias", (dim,), gen)
    if cross:
        for i in range(depth):
            b = f"{p}blocks.{i}."
            for key, shape in (("ln1_5.weight", (dim,)), ("ln1_5.bias", (dim,)), ("gamma_1_5", (dim,)),
                               ("cross.kv.weight", (2 * dim, cond_dim)), ("cross.kv.bias", (2 * dim,)),
                               ("cross.query.weight", (dim, dim)), ("cross.query.bias", (dim,)),
                               ("cross.proj.weight", (dim, dim)), ("cross.proj.bias", (dim,)),
                               ("cross.null_emb", (1, 1, cond_dim))):
                sd[b + key] = _random_tensor(b + key, shape, gen)
    return sd


def functional_denoiser(sd: dict, x, time_steps, label=None, *, heads, num_steps, prefix="_denoise_fn."):
    """The authors' TransformerBD forward in float64 from their state dict."""
    g = {k[len(prefix):]: v.double() for k, v in sd.items() if k.startswith(prefix)}
    w_tok = g["tok_emb.weight"]
    n, dim = x.shape[1], w_tok.shape[1]
    h = (x.double() - 0.5) * 2.0 @ w_tok + g["pos_emb"][:, :n]
    # time token: sinusoid of t / num_steps * 4000 (the authors' SinusoidalPosEmb), Linear, SiLU, Linear
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float64) * -(math.log(10000) / (half - 1)))
    arg = (time_steps.double() / num_steps * 4000.0)[:, None] * freqs[None]
    emb = torch.cat([arg.sin(), arg.cos()], dim=-1)
    emb = F.linear(F.silu(F.linear(emb, g["time_step_embedding.l0.weight"], g["time_step_embedding.l0.bias"])),
                   g["time_step_embedding.linear.weight"], g["time_step_embedding.linear.bias"])
    h = torch.cat([h, emb[:, None]], dim=1)
    cross = "blocks.0.cross.kv.weight" in g
    if label is not None and "cls_embedding.weight" in g and not cross:
        if "cls_embedding.bias" in g:
            cls = F.linear(label.double(), g["cls_embedding.weight"], g["cls_embedding.bias"])
        else:
            cls = g["cls_embedding.weight"][label]
        h = torch.cat([h, cls[:, None]], dim=1)

    def attention(q, k, v):  # [B, L, dim] each -> multi-head softmax attention
        b, lq, _ = q.shape
        d = dim // heads
        q, k, v = (z.reshape(b, z.shape[1], heads, d).transpose(1, 2) for z in (q, k, v))
        w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
        return (w @ v).transpose(1, 2).reshape(b, lq, dim)

    depth = len({k.split(".")[1] for k in g if k.startswith("blocks.")})
    for i in range(depth):
        def p(name, i=i):
            return g[f"blocks.{i}.{name}"]

        a = F.layer_norm(h, (dim,), p("ln1.weight"), p("ln1.bias"))
        qkv = F.linear(a, p("attn.qkv.weight"), p("attn.qkv.bias"))
        q, k, v = qkv.reshape(*qkv.shape[:2], 3, dim).unbind(2)  # 'B L (K H D)': K outermost
        h = h + p("gamma_1") * F.linear(attention(q, k, v), p("attn.proj.weight"), p("attn.proj.bias"))
        if cross:
            c = g[f"blocks.{i}.cross.null_emb"].expand(h.shape[0], -1, -1) if label is None else label.double()
            a = F.layer_norm(h, (dim,), p("ln1_5.weight"), p("ln1_5.bias"))
            kv = F.linear(c, p("cross.kv.weight"), p("cross.kv.bias"))
            k, v = kv.reshape(*kv.shape[:2], 2, dim).unbind(2)
            q = F.linear(a, p("cross.query.weight"), p("cross.query.bias"))
            h = h + p("gamma_1_5") * F.linear(attention(q, k, v), p("cross.proj.weight"), p("cross.proj.bias"))
        a = F.layer_norm(h, (dim,), p("ln2.weight"), p("ln2.bias"))
        m = F.linear(F.gelu(F.linear(a, p("mlp.0.weight"), p("mlp.0.bias"))), p("mlp.2.weight"), p("mlp.2.bias"))
        h = h + p("gamma_2") * m
    h = F.layer_norm(h[:, :n], (dim,), g["ln_f.weight"], g["ln_f.bias"])
    return F.linear(h, g["head.weight"], g["head.bias"])


# --- autoencoder ----------------------------------------------------------------------------------
AE_SIZES = {128: 32, 256: 64, 512: 64, 64: 16}  # nf 128 -> 32, widths <= 64, codebook 64 -> 16


def official_autoencoder_state_dict(seed=0, prefix="") -> dict:
    """The released BAE_C64 key list (5 levels, attention at the lowest one, norm_first) at small widths."""
    gen = torch.Generator().manual_seed(seed)
    return {prefix + key: _random_tensor(key, tuple(AE_SIZES.get(d, d) for d in shape), gen)
            for key, shape in read_keys("official_autoencoder_keys.txt")}


def _gn(h, w, b):
    return F.group_norm(h, 32, w, b, eps=1e-6)


class _FunctionalAE:
    """The authors' Encoder / BinaryQuantizer / Generator forwards in float64 from their state dict."""

    def __init__(self, sd, *, ch_mult, res_blocks, attn_levels, norm_first, gen_blocks=None):
        self.g = {k: v.double() for k, v in sd.items()}
        self.ch_mult, self.res_blocks, self.attn_levels = ch_mult, res_blocks, attn_levels
        self.norm_first, self.gen_blocks = norm_first, gen_blocks or res_blocks

    def _conv(self, name, h, stride=1, padding=1):
        return F.conv2d(h, self.g[name + ".weight"], self.g[name + ".bias"], stride=stride, padding=padding)

    def _res(self, p, h):
        x = _gn(h, self.g[p + ".norm1.weight"], self.g[p + ".norm1.bias"])
        x = self._conv(p + ".conv1", F.silu(x))
        x = _gn(x, self.g[p + ".norm2.weight"], self.g[p + ".norm2.bias"])
        x = self._conv(p + ".conv2", F.silu(x))
        if x.shape[1] != h.shape[1]:
            h = self._conv(p + ".conv_out", h, padding=0)
        return x + h

    def _attn(self, p, h):
        b, c, hh, ww = h.shape
        x = _gn(h, self.g[p + ".norm.weight"], self.g[p + ".norm.bias"])
        q, k, v = (self._conv(f"{p}.{n}", x, padding=0).reshape(b, c, hh * ww) for n in "qkv")
        w = torch.softmax(torch.bmm(q.permute(0, 2, 1), k) * c ** -0.5, dim=2)  # [b, i, j]
        y = torch.bmm(v, w.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return h + self._conv(p + ".proj_out", y, padding=0)

    def encoder(self, x):
        i = iter(range(10**6))
        h = self._conv(f"encoder.blocks.{next(i)}", x.double())
        for level in range(len(self.ch_mult)):
            for _ in range(self.res_blocks):
                h = self._res(f"encoder.blocks.{next(i)}", h)
                if level in self.attn_levels:
                    h = self._attn(f"encoder.blocks.{next(i)}", h)
            if level != len(self.ch_mult) - 1:
                h = self._conv(f"encoder.blocks.{next(i)}.conv", F.pad(h, (0, 1, 0, 1)), stride=2, padding=0)
        h = self._res(f"encoder.blocks.{next(i)}", h)
        h = self._attn(f"encoder.blocks.{next(i)}", h)
        h = self._res(f"encoder.blocks.{next(i)}", h)
        j = next(i)
        h = _gn(h, self.g[f"encoder.blocks.{j}.weight"], self.g[f"encoder.blocks.{j}.bias"])
        return self._conv(f"encoder.blocks.{next(i)}", h)

    def probs(self, x):
        return torch.sigmoid(self._conv("quantize.proj.0", self.encoder(x), padding=0))

    def generator(self, bits):
        h = torch.einsum("bnhw,nd->bdhw", bits.double(), self.g["quantize.embed.weight"])
        i = iter(range(10**6))
        if self.norm_first:
            j = next(i)
            h = _gn(h, self.g[f"generator.blocks.{j}.weight"], self.g[f"generator.blocks.{j}.bias"])
        h = self._conv(f"generator.blocks.{next(i)}", h)
        h = self._res(f"generator.blocks.{next(i)}", h)
        h = self._attn(f"generator.blocks.{next(i)}", h)
        h = self._res(f"generator.blocks.{next(i)}", h)
        for level in reversed(range(len(self.ch_mult))):
            for _ in range(self.gen_blocks):
                h = self._res(f"generator.blocks.{next(i)}", h)
                if level in self.attn_levels:
                    h = self._attn(f"generator.blocks.{next(i)}", h)
            if level != 0:
                h = self._conv(f"generator.blocks.{next(i)}.conv", F.interpolate(h, scale_factor=2.0, mode="nearest"))
        j = next(i)
        h = _gn(h, self.g[f"generator.blocks.{j}.weight"], self.g[f"generator.blocks.{j}.bias"])
        return self._conv(f"generator.blocks.{next(i)}", h)


OFFICIAL_AE = dict(ch_mult=(1, 1, 2, 2, 4), res_blocks=2, attn_levels=(4,), norm_first=True)


# --- tests: autoencoder ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def official_ae():
    sd = official_autoencoder_state_dict()
    return sd, BinaryAutoencoder.from_official(sd)


def test_autoencoder_architecture_inferred_from_official_keys(official_ae):
    _, ae = official_ae
    assert ae.config() == dict(in_channels=3, out_channels=3, nf=32, ch_mult=(1, 1, 2, 2, 2), res_blocks=2,
                               attn_resolutions=(16,), img_size=256, emb_dim=64, codebook_size=16, norm_first=True,
                               gen_mul=1.0)


def test_autoencoder_encode_decode_match_functional_forward(official_ae):
    sd, ae = official_ae
    ref = _FunctionalAE(sd, **OFFICIAL_AE)
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = ae.quantize(ae.encoder(images), deterministic=True)
        p64 = ref.probs(images)
        torch.testing.assert_close(out.probs.double(), p64, rtol=0, atol=2e-5)
        bits = ae.encode(images)
        assert bits.dtype == torch.uint8 and bits.shape == (2, 16, 2, 2)
        clear = (p64 - 0.5).abs() > 1e-4
        assert torch.equal(bits[clear], (p64 > 0.5).to(torch.uint8)[clear])
        decoded = ae.decode(bits)
        expected = ref.generator(bits)
    assert decoded.shape == (2, 3, 32, 32)
    torch.testing.assert_close(decoded.double(), expected, rtol=1e-4, atol=1e-4)


def test_autoencoder_gen_mul_and_no_norm_first_roundtrip():
    """A different configuration: gen_mul = 1.5, no norm_first, attention at two levels. Its own state dict
    re-loads through from_official to the same configuration and the same outputs as the functional forward."""
    torch.manual_seed(0)
    ae = BinaryAutoencoder(nf=32, ch_mult=(1, 2), res_blocks=2, attn_resolutions=(16, 8), img_size=16, emb_dim=32,
                           codebook_size=8, norm_first=False, gen_mul=1.5)
    loaded = BinaryAutoencoder.from_official(ae.state_dict(), img_size=16)
    assert loaded.config() == ae.config()
    ref = _FunctionalAE(ae.state_dict(), ch_mult=(1, 2), res_blocks=2, attn_levels=(0, 1), norm_first=False,
                        gen_blocks=3)
    images = torch.randn(1, 3, 16, 16)
    bits = torch.randint(0, 2, (1, 8, 8, 8), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(loaded.quantize(loaded.encoder(images)).probs.double(), ref.probs(images),
                                   rtol=0, atol=2e-5)
        torch.testing.assert_close(loaded.decode(bits).double(), ref.generator(bits), rtol=1e-4, atol=1e-4)


def test_autoencoder_prefixes_and_ignored_training_keys(official_ae):
    sd, ae = official_ae
    full = {"ae." + k: v for k, v in sd.items()}
    full.update({"disc.main.0.weight": torch.zeros(4, 3, 4, 4), "perceptual.net.lin0.model.1.weight": torch.zeros(1),
                 "ae.generator.logsigma.0.weight": torch.zeros(32, 32, 3, 3)})
    ddp = {"module." + k: v for k, v in full.items()}
    loaded = BinaryAutoencoder.from_official(ddp)
    assert loaded.config() == ae.config()
    for key, value in ae.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_autoencoder_decode_accepts_token_layout(official_ae):
    _, ae = official_ae
    bits = torch.randint(0, 2, (2, 16, 2, 2), dtype=torch.uint8)
    tokens = bits.flatten(2).transpose(1, 2)  # [B, N, C] as the diffusion sees them
    with torch.no_grad():
        torch.testing.assert_close(ae.decode(tokens), ae.decode(bits))


@pytest.mark.parametrize("edit, message", [
    (lambda sd: sd.pop("quantize.embed.weight"), "missing keys: quantize.embed.weight"),
    (lambda sd: sd.__setitem__("generator.blocks.5.extra", torch.zeros(1)),
     "unexpected keys: generator.blocks.5.extra"),
    (lambda sd: sd.__setitem__("quantize.embed.weight", torch.zeros(16, 65)),
     "quantize.embed.weight: checkpoint (16, 65)"),
    (lambda sd: sd.__setitem__("encoder.blocks.1.conv2.weight", torch.zeros(32, 30, 3, 3)),
     "encoder.blocks.1.conv2.weight: checkpoint (32, 30, 3, 3)"),
    (lambda sd: sd.pop("quantize.proj.0.weight"), "quantize.proj.0.weight"),
    (lambda sd: [sd.pop(k) for k in list(sd) if k.startswith("generator.blocks.22.")], "generator"),
])
def test_autoencoder_inconsistent_state_dicts_raise(edit, message):
    sd = official_autoencoder_state_dict()
    edit(sd)
    with pytest.raises(ValueError, match=re.escape(message)):
        BinaryAutoencoder.from_official(sd)


def test_autoencoder_bad_arguments():
    with pytest.raises(TypeError, match="state_dict"):
        BinaryAutoencoder.from_official([1, 2])
    with pytest.raises(TypeError, match="unknown override"):
        BinaryAutoencoder.from_official(official_autoencoder_state_dict(), nf=3)


# --- tests: denoiser ------------------------------------------------------------------------------
def _inputs(batch=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2, (batch, SMALL["positions"], SMALL["bits"]), dtype=torch.uint8, generator=gen)
    t = torch.randint(0, SMALL["steps"], (batch,), generator=gen)
    return x, t


@pytest.mark.parametrize("variant", ["unconditional", "class", "text_token", "cross"])
def test_denoiser_matches_functional_forward(variant):
    kw = {"class": dict(num_classes=5), "text_token": dict(cond_dim=12), "cross": dict(cond_dim=12, cross=True),
          "unconditional": {}}[variant]
    sd = official_sampler_state_dict(**kw)
    model = BernoulliDiffusion.from_official(sd, num_heads=SMALL["heads"])
    x, t = _inputs()
    labels = [None]
    if variant == "class":
        labels.append(torch.tensor([0, 4, 2]))
    elif variant == "text_token":
        labels.append(torch.randn(3, 12))
    elif variant == "cross":
        labels.append(torch.randn(3, 7, 12))
    for label in labels:
        with torch.no_grad():
            logits = model.denoiser(x, label=label, time_steps=t)
        expected = functional_denoiser(sd, x, t, label, heads=SMALL["heads"], num_steps=SMALL["steps"])
        assert logits.shape == (3, SMALL["positions"], SMALL["bits"]) and logits.dtype == torch.float32
        torch.testing.assert_close(logits.double(), expected, rtol=1e-4, atol=1e-4)


def test_denoiser_architecture_and_schedule_inferred():
    sd = official_sampler_state_dict(num_classes=5)
    model = BernoulliDiffusion.from_official(sd, num_heads=4)
    assert model.denoiser.config() == dict(codebook_size=8, latent_shape=(4, 4), dim=32, depth=2, num_heads=4,
                                           mlp_dim=128, num_steps=8, num_classes=5, cond_dim=None,
                                           cross_attention=False)
    assert model.num_steps == 8 and model.schedule.kind == "linear" and model.p_flip
    assert model.latent_shape == (16, 8)
    with pytest.raises(ValueError, match="pass num_heads"):  # 32 wide, default 12 heads
        BernoulliDiffusion.from_official(sd)


@pytest.mark.parametrize("kind", ["cos", "sigmoid"])
def test_schedule_kind_inferred_from_buffers(kind):
    model = BernoulliDiffusion.from_official(official_sampler_state_dict(kind=kind, steps=12), num_heads=4)
    assert model.schedule.kind == kind and model.num_steps == 12 and model.denoiser.num_steps == 12


def test_sampler_prefixes_and_bare_denoiser_dict():
    sd = official_sampler_state_dict()
    base = BernoulliDiffusion.from_official(sd, num_heads=4)
    ddp = BernoulliDiffusion.from_official({"module." + k: v for k, v in sd.items()}, num_heads=4)
    bare = {k[len("_denoise_fn."):]: v for k, v in sd.items() if k.startswith("_denoise_fn.")}
    from_bare = BernoulliDiffusion.from_official(bare, num_heads=4, num_steps=8)
    tr = BinaryTransformer.from_official(sd, num_heads=4)
    for other in (ddp.denoiser, from_bare.denoiser, tr):
        for key, value in base.denoiser.state_dict().items():
            assert torch.equal(other.state_dict()[key], value), key
    with pytest.raises(ValueError, match="num_steps"):
        BernoulliDiffusion.from_official(bare, num_heads=4)


def test_sampler_overrides():
    sd = official_sampler_state_dict()
    model = BernoulliDiffusion.from_official(sd, num_heads=4, p_flip=False, aux_weight=0.1, weighting="weighted",
                                             time_embedding_steps=16)
    assert not model.p_flip and model.aux_weight == 0.1 and model.weighting == "weighted"
    assert model.denoiser.num_steps == 16 and model.num_steps == 8
    with pytest.raises(TypeError, match="unknown override"):
        BernoulliDiffusion.from_official(sd, heads=4)
    with pytest.raises(ValueError, match="num_heads"):
        BernoulliDiffusion.from_official(sd, num_heads=5)


@pytest.mark.parametrize("edit, message", [
    (lambda sd: sd.pop("_denoise_fn.head.bias"), "missing keys: head.bias"),
    (lambda sd: sd.__setitem__("_denoise_fn.blocks.1.attn.extra", torch.zeros(2)),
     "unexpected keys: blocks.1.attn.extra"),
    (lambda sd: sd.__setitem__("_denoise_fn.blocks.1.attn.qkv.weight", torch.zeros(96, 33)),
     "blocks.1.attn.qkv.weight: checkpoint (96, 33) vs model (96, 32)"),
    (lambda sd: sd.__setitem__("_denoise_fn.pos_emb", torch.zeros(1, 16, 31)), "'pos_emb' must have shape"),
    (lambda sd: sd.pop("_denoise_fn.tok_emb.weight"), "tok_emb.weight"),
    (lambda sd: sd.__setitem__("scheduler.k_final", torch.rand(9)), "matches none of the schedule kinds"),
    (lambda sd: sd.__setitem__("stray", torch.zeros(1)), "unexpected keys outside '_denoise_fn.'"),
    (lambda sd: [sd.pop(k) for k in list(sd) if ".blocks.0." in k], "numbered 0..L-1"),
])
def test_sampler_inconsistent_state_dicts_raise(edit, message):
    sd = official_sampler_state_dict()
    edit(sd)
    with pytest.raises(ValueError, match=re.escape(message)):
        BernoulliDiffusion.from_official(sd, num_heads=4)


def test_positional_embedding_initialised_with_2d_sincos():
    """Against the authors' MAE-style numpy formula (column index in the first half of the channels)."""
    import numpy as np

    dim, side = 16, 3
    omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=float) / (dim / 4))
    gw, gh = np.meshgrid(np.arange(side, dtype=float), np.arange(side, dtype=float))

    def one_d(pos):
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    expected = np.concatenate([one_d(gw), one_d(gh)], axis=1)
    torch.testing.assert_close(sincos_pos_embed_2d(dim, side, side), torch.from_numpy(expected).float())
    model = BinaryTransformer(codebook_size=4, latent_shape=(side, side), dim=dim, depth=1, num_heads=2)
    torch.testing.assert_close(model.pos_emb[0].detach(), torch.from_numpy(expected).float())


def test_denoiser_input_errors():
    model = BinaryTransformer(codebook_size=4, latent_shape=4, dim=16, depth=1, num_heads=2)
    x = torch.zeros(2, 4, 4, dtype=torch.uint8)
    with pytest.raises(ValueError, match="time_steps"):
        model(x)
    with pytest.raises(ValueError, match="unconditional"):
        model(x, label=torch.zeros(2, dtype=torch.long), time_steps=torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.zeros(2, 4, 5), time_steps=torch.zeros(2, dtype=torch.long))
