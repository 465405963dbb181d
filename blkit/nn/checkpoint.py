"""Loading the authors' released checkpoints: prefixes, architecture inference, strict checks.

Every inconsistency (missing or unexpected keys, a shape that does not fit the inferred architecture)
raises a ValueError that names the keys; nothing is loaded partially.
"""
import re

import torch

from ..schedule import SCHEDULE_KINDS, NoiseSchedule

# Keys that training needs but encoding/decoding/sampling does not.
AE_IGNORED = (re.compile(r"^(disc|perceptual)\."), re.compile(r"(^|\.)logsigma\."))
SAMPLER_IGNORED = (re.compile(r"^embedding_weight$"), re.compile(r"^(disc|perceptual)\."),
                   re.compile(r"(^|\.)logsigma\."))


def _as_state_dict(state_dict, what: str) -> dict:
    if not isinstance(state_dict, dict):
        raise TypeError(f"state_dict must be a dict of tensors ({what}), got {type(state_dict).__name__}")
    bad = [k for k, v in state_dict.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"state_dict ({what}) must map str keys to tensors; offending keys: {bad[:5]}")
    return dict(state_dict)


def strip_prefix(state_dict: dict, prefix: str) -> dict:
    """Remove ``prefix`` from every key when all keys carry it (repeatedly, e.g. ``module.module.``)."""
    while state_dict and all(k.startswith(prefix) for k in state_dict):
        state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict


def _drop(state_dict: dict, patterns) -> dict:
    return {k: v for k, v in state_dict.items() if not any(p.search(k) for p in patterns)}


def _shape(sd: dict, key: str, ndim=None) -> tuple:
    if key not in sd:
        raise ValueError(f"state_dict is missing {key!r}, which the architecture inference needs")
    shape = tuple(sd[key].shape)
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{key!r} must have {ndim} dimensions, got shape {shape}")
    return shape


def load_checked(module: torch.nn.Module, state_dict: dict, what: str) -> torch.nn.Module:
    """Strict load with one error listing every missing key, unexpected key and shape mismatch."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
                  for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    problems = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                         ("shape mismatches", mismatched)):
        if items:
            shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise ValueError(f"{what} state dict does not fit the inferred architecture; " + "; ".join(problems))
    module.load_state_dict(state_dict, strict=True)
    return module


def _pop_overrides(overrides: dict, names) -> dict:
    return {k: overrides.pop(k) for k in list(overrides) if k in names}


def _reject_unknown(overrides: dict, what: str, allowed) -> None:
    if overrides:
        raise TypeError(f"unknown override(s) for {what}: {sorted(overrides)}; allowed: {sorted(allowed)}")


# --- denoiser -----------------------------------------------------------------------------------
TRANSFORMER_OVERRIDES = ("num_heads", "latent_shape", "num_steps")


def transformer_config(sd: dict) -> dict:
    """Architecture of an (unprefixed) denoiser state dict. Not inferable from weights: num_heads
    (default 12, the authors' setting) and num_steps (the caller passes T)."""
    codebook_size, dim = _shape(sd, "tok_emb.weight", 2)
    pos = _shape(sd, "pos_emb", 3)
    if pos[0] != 1 or pos[2] != dim:
        raise ValueError(f"'pos_emb' must have shape (1, N, {dim}), got {pos}")
    layers = sorted({int(m.group(1)) for k in sd for m in [re.match(r"blocks\.(\d+)\.", k)] if m})
    if layers != list(range(len(layers))):
        raise ValueError(f"transformer blocks must be numbered 0..L-1, got {layers}")
    if not layers:
        raise ValueError("state_dict has no 'blocks.<i>.' keys: not a denoiser state dict")
    mlp_dim = _shape(sd, "blocks.0.mlp.0.weight", 2)[0]
    cross = "blocks.0.cross.kv.weight" in sd
    num_classes = cond_dim = None
    if cross:
        cond_dim = _shape(sd, "blocks.0.cross.kv.weight", 2)[1]
    elif "cls_embedding.weight" in sd:
        if "cls_embedding.bias" in sd:
            cond_dim = _shape(sd, "cls_embedding.weight", 2)[1]
        else:
            num_classes = _shape(sd, "cls_embedding.weight", 2)[0]
    return dict(codebook_size=codebook_size, latent_shape=pos[1], dim=dim, depth=len(layers), num_heads=12,
                mlp_dim=mlp_dim, num_classes=num_classes, cond_dim=cond_dim, cross_attention=cross)


def _check_heads(config: dict, overrides: dict) -> None:
    if "num_heads" not in overrides and config["dim"] % config["num_heads"]:
        raise ValueError(f"width {config['dim']} is not divisible by the default 12 heads; the number of heads is "
                         "not stored in the checkpoint, pass num_heads=...")


def load_transformer(state_dict, **overrides):
    from .transformer import BinaryTransformer

    sd, inferred = _sampler_parts(state_dict)
    config = transformer_config(sd)
    config["num_steps"] = inferred[0] if inferred else 64
    tr_kw = _pop_overrides(overrides, TRANSFORMER_OVERRIDES)
    _check_heads(config, tr_kw)
    config.update(tr_kw)
    _reject_unknown(overrides, "BinaryTransformer.from_official", TRANSFORMER_OVERRIDES)
    return load_checked(BinaryTransformer(**config), sd, "denoiser")


# --- schedule -----------------------------------------------------------------------------------
def infer_schedule(sd: dict):
    """(num_steps, kind) from the authors' ``scheduler.k_final`` buffer, or None when it is absent."""
    k_final = sd.get("scheduler.k_final")
    if k_final is None:
        return None
    if k_final.dim() != 1 or k_final.numel() < 2:
        raise ValueError(f"'scheduler.k_final' must be a vector of length T + 1, got shape {tuple(k_final.shape)}")
    steps = k_final.numel() - 1
    errors = {}
    for kind in SCHEDULE_KINDS:
        err = (NoiseSchedule(steps, kind).k - k_final.double().cpu()).abs().max().item()
        errors[kind] = err
        if err < 1e-4:
            return steps, kind
    raise ValueError(f"'scheduler.k_final' (T = {steps}) matches none of the schedule kinds "
                     f"{SCHEDULE_KINDS} (max abs errors {errors}); pass schedule=... explicitly")


DIFFUSION_OVERRIDES = ("num_steps", "schedule", "p_flip", "balance", "gamma", "weighting", "aux_weight",
                       "label_dropout", "backend", "time_embedding_steps")


def _sampler_parts(state_dict):
    """(denoiser state dict without prefixes, (T, kind) or None) from a sampler or bare denoiser dict."""
    sd = strip_prefix(_as_state_dict(state_dict, "sampler"), "module.")
    sd = _drop(sd, SAMPLER_IGNORED)
    inferred = infer_schedule(sd)
    sd = {k: v for k, v in sd.items() if not k.startswith("scheduler.")}
    if any(k.startswith("_denoise_fn.") for k in sd):
        other = [k for k in sd if not k.startswith("_denoise_fn.")]
        if other:
            raise ValueError(f"unexpected keys outside '_denoise_fn.': {other[:8]}")
        sd = strip_prefix(sd, "_denoise_fn.")
    return sd, inferred


def load_diffusion(state_dict, **overrides):
    from .diffusion import BernoulliDiffusion
    from .transformer import BinaryTransformer

    sd, inferred = _sampler_parts(state_dict)
    diff_kw = _pop_overrides(overrides, DIFFUSION_OVERRIDES)
    tr_kw = _pop_overrides(overrides, TRANSFORMER_OVERRIDES)
    _reject_unknown(overrides, "BernoulliDiffusion.from_official", DIFFUSION_OVERRIDES + TRANSFORMER_OVERRIDES)
    steps, kind = inferred if inferred else (None, "linear")
    steps = diff_kw.pop("num_steps", steps)
    kind = diff_kw.pop("schedule", kind)
    if steps is None:
        raise ValueError("the state dict has no 'scheduler.k_final' buffer to infer T from; pass num_steps=...")
    config = transformer_config(sd)
    _check_heads(config, tr_kw)
    config.update(tr_kw)
    config["num_steps"] = diff_kw.pop("time_embedding_steps", steps)
    denoiser = load_checked(BinaryTransformer(**config), sd, "denoiser")
    return BernoulliDiffusion(denoiser, num_steps=steps, schedule=kind, **diff_kw)


# --- autoencoder --------------------------------------------------------------------------------
AE_OVERRIDES = ("img_size",)


def _block_kinds(sd: dict, prefix: str) -> list:
    """Classify ``<prefix>.blocks.<i>`` as conv / norm / res / attn / resample from its keys."""
    index = sorted({int(m.group(1)) for k in sd for m in [re.match(re.escape(prefix) + r"\.blocks\.(\d+)\.", k)] if m})
    if index != list(range(len(index))):
        raise ValueError(f"{prefix}.blocks must be numbered 0..L-1, got {index}")
    kinds = []
    for i in index:
        p = f"{prefix}.blocks.{i}."
        if p + "conv1.weight" in sd:
            kinds.append(("res", _shape(sd, p + "conv1.weight", 4)[0]))
        elif p + "q.weight" in sd:
            kinds.append(("attn", _shape(sd, p + "q.weight", 4)[0]))
        elif p + "conv.weight" in sd:
            kinds.append(("resample", _shape(sd, p + "conv.weight", 4)[0]))
        elif p + "weight" in sd and sd[p + "weight"].dim() == 4:
            kinds.append(("conv", sd[p + "weight"].shape[0]))
        elif p + "weight" in sd and sd[p + "weight"].dim() == 1:
            kinds.append(("norm", sd[p + "weight"].shape[0]))
        else:
            raise ValueError(f"cannot tell what {p[:-1]!r} is from its keys")
    return kinds


def _levels(kinds: list, what: str) -> list:
    """Split the middle of a block list at resample blocks into levels of (res count, attention, width)."""
    levels, current = [], []
    for kind in kinds + [("resample", None)]:
        if kind[0] == "resample":
            res = [c for k, c in current if k == "res"]
            attn = [k for k, _ in current if k == "attn"]
            if not res or any(k not in ("res", "attn") for k, _ in current) or len(set(res)) != 1:
                raise ValueError(f"unexpected block sequence in the {what}: {current}")
            if attn and len(attn) != len(res):
                raise ValueError(f"the {what} has attention after only some residual blocks of a level")
            levels.append((len(res), bool(attn), res[0]))
            current = []
        else:
            current.append(kind)
    return levels


def autoencoder_config(sd: dict) -> dict:
    enc = _block_kinds(sd, "encoder")
    gen = _block_kinds(sd, "generator")
    tail = [k for k, _ in enc[-5:]]
    if len(enc) < 7 or enc[0][0] != "conv" or tail != ["res", "attn", "res", "norm", "conv"]:
        raise ValueError(f"unexpected encoder block sequence: {[k for k, _ in enc]}")
    in_channels = _shape(sd, "encoder.blocks.0.weight", 4)[1]
    nf = enc[0][1]
    enc_levels = _levels(enc[1:-5], "encoder")
    emb_dim = enc[-1][1]
    norm_first = gen[0][0] == "norm"
    head = gen[1:] if norm_first else gen
    if len(head) < 6 or [k for k, _ in head[:4]] != ["conv", "res", "attn", "res"] or \
            [k for k, _ in head[-2:]] != ["norm", "conv"]:
        raise ValueError(f"unexpected generator block sequence: {[k for k, _ in gen]}")
    gen_levels = _levels(head[4:-2], "generator")[::-1]
    out_channels = head[-1][1]
    if len(gen_levels) != len(enc_levels):
        raise ValueError(f"encoder has {len(enc_levels)} resolution levels but the generator {len(gen_levels)}")
    res_blocks = {n for n, _, _ in enc_levels}
    gen_blocks = {n for n, _, _ in gen_levels}
    if len(res_blocks) != 1 or len(gen_blocks) != 1:
        raise ValueError("every resolution level must have the same number of residual blocks")
    widths = [c for _, _, c in enc_levels]
    if widths != [c for _, _, c in gen_levels] or any(c % nf for c in widths):
        raise ValueError(f"level widths disagree: encoder {widths}, generator {[c for _, _, c in gen_levels]}")
    attn_levels = [i for i, (_, a, _) in enumerate(enc_levels) if a]
    if attn_levels != [i for i, (_, a, _) in enumerate(gen_levels) if a]:
        raise ValueError("encoder and generator put attention at different resolution levels")
    codebook_size, q_in = _shape(sd, "quantize.proj.0.weight", 4)[:2]
    if q_in != emb_dim:
        raise ValueError(f"'quantize.proj.0.weight' takes {q_in} channels but the encoder outputs {emb_dim}")
    (res_blocks,), (gen_blocks,) = res_blocks, gen_blocks
    return dict(in_channels=in_channels, out_channels=out_channels, nf=nf, ch_mult=tuple(c // nf for c in widths),
                res_blocks=res_blocks, attn_levels=tuple(attn_levels), emb_dim=emb_dim, codebook_size=codebook_size,
                norm_first=norm_first, gen_mul=gen_blocks / res_blocks)


def load_autoencoder(state_dict, **overrides):
    from .autoencoder import BinaryAutoencoder

    sd = strip_prefix(_as_state_dict(state_dict, "autoencoder"), "module.")
    sd = strip_prefix(_drop(sd, AE_IGNORED), "ae.")
    config = autoencoder_config(sd)
    img_size = _pop_overrides(overrides, AE_OVERRIDES).get("img_size", 256)
    _reject_unknown(overrides, "BinaryAutoencoder.from_official", AE_OVERRIDES)
    attn_levels = config.pop("attn_levels")
    config["img_size"] = img_size
    config["attn_resolutions"] = tuple(img_size // 2 ** i for i in attn_levels)
    return load_checked(BinaryAutoencoder(**config), sd, "autoencoder")
