"""BinaryQuantizer / BinaryAutoencoder on every available backend: seeded stochastic codes are the same bits
everywhere (u < p from the shared Philox stream), deterministic codes are (p > 0.5), the straight-through
gradient reaches the encoder."""
import pytest
import torch

from blkit import ops
from blkit.nn import BinaryAutoencoder, BinaryQuantizer, bits_to_tokens, tokens_to_bits


@pytest.fixture(scope="module")
def small_ae():
    torch.manual_seed(0)
    return BinaryAutoencoder(nf=32, ch_mult=(1, 2), res_blocks=1, attn_resolutions=(8,), img_size=16, emb_dim=32,
                             codebook_size=8)


def test_stochastic_encode_same_bits_on_every_backend(target, small_ae):
    target.require("binary_quantize")
    images = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    small_ae.backend = target.backend
    try:
        with torch.no_grad():
            bits = small_ae.encode(images, deterministic=False, seed=123, offset=40)
            probs = small_ae.quantize.proj(small_ae.encoder(images))
            det = small_ae.encode(images)
    finally:
        small_ae.backend = None
    expected = ops.bernoulli(probs, 123, 40, backend="reference")  # z_i = (u_i < p_i), same stream
    assert bits.dtype == torch.uint8 and bits.shape == (2, 8, 8, 8)
    assert torch.equal(bits, expected)
    assert torch.equal(det, (probs > 0.5).to(torch.uint8))
    assert not torch.equal(bits, det)


def test_quantizer_straight_through_gradient(target):
    target.require("binary_quantize")
    torch.manual_seed(1)
    q = BinaryQuantizer(codebook_size=8, emb_dim=4, in_channels=6, backend=target.backend)
    h = torch.randn(2, 6, 3, 3, requires_grad=True)
    out = q(h, seed=5)
    assert out.bits.dtype == torch.uint8 and set(out.bits.unique().tolist()) <= {0, 1}
    assert torch.equal(out.z_q, torch.einsum("bnhw,nd->bdhw", out.bits.float(), q.embed.weight))
    grad_zq = torch.randn_like(out.z_q)
    (out.z_q * grad_zq).sum().backward()
    # d z_q / d probs = W (identity through the quantizer), then the sigmoid and the 1x1 conv
    probs = q.proj(h.detach())
    expected = torch.einsum("bdhw,nd->bnhw", grad_zq, q.embed.weight) * probs * (1 - probs)
    conv_w = q.proj[0].weight[:, :, 0, 0]
    torch.testing.assert_close(h.grad, torch.einsum("bnhw,nc->bchw", expected, conv_w), rtol=1e-5, atol=1e-6)


def test_autoencoder_training_pass_reaches_the_encoder(small_ae):
    small_ae.zero_grad()
    recon, codebook_loss, bits = small_ae(torch.randn(2, 3, 16, 16))
    assert recon.shape == (2, 3, 16, 16) and bits.shape == (2, 8, 8, 8)
    (recon.abs().mean() + codebook_loss).backward()
    assert small_ae.encoder.blocks[0].weight.grad.abs().sum() > 0
    a = small_ae(torch.ones(1, 3, 16, 16), seed=1)[2]
    assert torch.equal(a, small_ae(torch.ones(1, 3, 16, 16), seed=1)[2])


def test_token_layout_helpers():
    bits = torch.randint(0, 2, (2, 5, 3, 4), dtype=torch.uint8)
    tokens = bits_to_tokens(bits)
    assert tokens.shape == (2, 12, 5)
    assert torch.equal(tokens[1, 4 + 3], bits[1, :, 1, 3])  # position n = row * w + col
    assert torch.equal(tokens_to_bits(tokens, 3, 4), bits)
    with pytest.raises(ValueError, match="square"):
        tokens_to_bits(tokens)


def test_decode_shape_errors(small_ae):
    with pytest.raises(ValueError, match="bits must have shape"):
        small_ae.decode(torch.zeros(1, 7, 2, 2))
