"""What a benchmark ran on: the CPU model, the device name and the git commit, for every results file."""
import pathlib
import platform
import subprocess

import torch


def commit() -> str:
    """Short hash of the checkout's HEAD, or "unknown" outside a git checkout."""
    try:
        root = pathlib.Path(__file__).resolve().parents[2]
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_model() -> str:
    """E.g. "AMD EPYC (family 26, model 2)": /proc/cpuinfo's model name, family and model where it exists.

    The family/model pair tells CPU generations apart where the model name does not (a VM's "AMD EPYC"), and
    the CPU kernels' speed depends on it (vector ports per core).
    """
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # first processor only
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def device_name(device: str) -> str:
    """The GPU's name, or the CPU model with the number of threads torch uses."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"{cpu_model()} CPU, {torch.get_num_threads()} threads"
