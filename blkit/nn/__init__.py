"""blkit.nn: drop-in modules for Binary Latent Diffusion (the authors' autoencoder, denoiser and Bernoulli
diffusion) that run on blkit ops and load the authors' checkpoints with ``from_official``."""
from .autoencoder import BinaryAutoencoder, bits_to_tokens, tokens_to_bits
from .diffusion import BernoulliDiffusion
from .quantizer import BinaryQuantizer, QuantizerOutput
from .transformer import BinaryTransformer, sincos_pos_embed_2d

__all__ = ["BinaryQuantizer", "QuantizerOutput", "BinaryAutoencoder", "BinaryTransformer", "BernoulliDiffusion",
           "bits_to_tokens", "tokens_to_bits", "sincos_pos_embed_2d"]
