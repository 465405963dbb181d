"""Build blkit_cuda_emu: blkit's CUDA kernels (csrc/cuda/*.cu) compiled as C++ for a CPU emulation of CUDA.

    python csrc/cuda/emu/build.py BUILD_DIR [--sanitize]

The .cu/.cuh sources are copied to BUILD_DIR with every `kernel<<<grid, block, smem, stream>>>(args);` rewritten
to `::emu::launch(grid, block, smem, stream, [&]() { kernel(args); });` and compiled by the host C++ compiler
against the fake CUDA headers in include/ (emu.h), together with the real bindings (csrc/python/bind_cuda.cpp).
--sanitize adds AddressSanitizer and UBSan (run Python with LD_PRELOAD=$(g++ -print-file-name=libasan.so)).
Used by tests/test_cuda_backend.py (test_emulated_*) to run the kernels' logic on machines without a GPU.
"""
import argparse
import re
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
CUDA_DIR = HERE.parent
ROOT = CUDA_DIR.parent.parent

_LAUNCH = re.compile(r"([A-Za-z_][\w:]*(?:<[^<>;]*>)?)\s*<<<(.*?)>>>\s*\((.*?)\);", re.S)


def rewrite(text: str) -> str:
    def repl(m):
        name, config, args = m.group(1), m.group(2), m.group(3)
        return f"::emu::launch({config}, [&]() {{ {name}({args}); }});"

    return _LAUNCH.sub(repl, text)


def module_path(build_dir: Path) -> Path:
    return build_dir / ("blkit_cuda_emu" + sysconfig.get_config_var("EXT_SUFFIX"))


def build(build_dir: Path, sanitize: bool = False, cxx: str = "g++") -> Path:
    import pybind11

    build_dir.mkdir(parents=True, exist_ok=True)
    sources = []
    for src in sorted(CUDA_DIR.glob("*.cu")) + sorted(CUDA_DIR.glob("*.cuh")):
        out = build_dir / (src.name + ".cpp" if src.suffix == ".cu" else src.name)
        text = rewrite(src.read_text())
        if "<<<" in text:
            raise RuntimeError(f"{src.name}: a kernel launch was not rewritten")
        if not out.exists() or out.read_text() != text:
            out.write_text(text)
        if src.suffix == ".cu":
            sources.append(out)
    sources += [CUDA_DIR.parent / "python" / "bind_cuda.cpp", HERE / "emu_module.cpp"]
    flags = ["-std=c++20", "-O1", "-g", "-fPIC", "-pthread", "-fno-strict-aliasing", "-Wall", "-Wextra",
             "-Wno-unknown-pragmas", "-DBLKIT_WITH_CUDA", f"-I{build_dir}", f"-I{HERE / 'include'}",
             f"-I{ROOT / 'csrc' / 'include'}", f"-I{ROOT / 'csrc' / 'python'}", f"-I{pybind11.get_include()}",
             f"-I{sysconfig.get_paths()['include']}"]
    if sanitize:
        flags += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]

    headers = [*build_dir.glob("*.cuh"), *(HERE / "include").glob("*.h"), *(ROOT / "csrc" / "include").rglob("*.h"),
               *(ROOT / "csrc" / "python").glob("*.h"), Path(__file__)]
    newest_header = max(h.stat().st_mtime for h in headers)
    flags_file = build_dir / "flags.txt"
    if not flags_file.exists() or flags_file.read_text() != " ".join(flags):
        flags_file.write_text(" ".join(flags))  # e.g. --sanitize toggled: rebuild everything
    newest_header = max(newest_header, flags_file.stat().st_mtime)

    def compile_one(src: Path) -> Path:
        obj = build_dir / (src.name + ".o")
        if not obj.exists() or obj.stat().st_mtime < max(src.stat().st_mtime, newest_header):
            subprocess.run([cxx, *flags, "-c", str(src), "-o", str(obj)], check=True)
        return obj

    with ThreadPoolExecutor() as pool:
        objects = list(pool.map(compile_one, sources))
    target = module_path(build_dir)
    link = [cxx, "-shared", "-pthread", *(["-fsanitize=address,undefined"] if sanitize else []),
            *map(str, objects), "-o", str(target)]
    subprocess.run(link, check=True)
    return target


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("--sanitize", action="store_true")
    ns = parser.parse_args()
    print(build(ns.build_dir, ns.sanitize))
    sys.exit(0)
