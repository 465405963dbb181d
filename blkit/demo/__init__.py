"""The embedded demo model: handwritten digits out of the box.

A small binary autoencoder (16x16 grey images <-> 4x4 positions x 16 bits) and a Bernoulli diffusion
transformer over its latents, trained on scikit-learn's bundled digits (``sklearn.datasets.load_digits``)
by ``blkit train-demo``. The trained weights ship inside the package (``blkit/demo/digits.pt``)::

    from blkit.demo import load_demo
    model = load_demo()                       # float32, eval mode
    images = model.sample(16, seed=0)         # float32 [16, 16, 16] in [0, 1]

Training needs scikit-learn (the data set); sampling does not.
"""
from .model import DEFAULT_WEIGHTS, DemoModel, load_demo, save_demo
from .sample import compare_reference, image_grid, sample_to_file, save_images
from .train import encode_latents, train_autoencoder, train_demo, train_diffusion

__all__ = ["DEFAULT_WEIGHTS", "DemoModel", "load_demo", "save_demo", "sample_to_file", "save_images", "image_grid",
           "compare_reference", "train_demo", "train_autoencoder", "train_diffusion", "encode_latents"]
