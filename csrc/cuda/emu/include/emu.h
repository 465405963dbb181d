// CPU emulation of the small subset of CUDA that blkit's kernels use, for checking the kernels' logic on
// machines without a GPU (see csrc/cuda/emu/build.py). Every CUDA thread is an OS thread; the blocks of a
// launch run one after another, the 256 threads of a block concurrently, so warp collectives (__shfl_sync,
// __all_sync) and __syncthreads are real barriers among the emulated threads. Device memory is host memory.
// This checks indexing, packing, tails, per-sample bookkeeping, reductions and the host-side glue; it says
// nothing about GPU performance, the memory model, alignment faults or the real compiler's code generation.
#pragma once

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <barrier>
#include <memory>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct emu_dim3 {
  unsigned x = 0, y = 1, z = 1;
};

namespace emu {

struct Warp {
  std::barrier<> bar{32};
  unsigned long long slot[32];
};

struct Block {
  explicit Block(unsigned threads) : bar(static_cast<std::ptrdiff_t>(threads)), warps((threads + 31) / 32) {}
  std::barrier<> bar;
  std::vector<Warp> warps;
};

inline thread_local emu_dim3 t_thread;
inline thread_local emu_dim3 t_block;
inline thread_local Block* t_blk = nullptr;
inline emu_dim3 g_block_dim;
inline emu_dim3 g_grid_dim;
inline int g_device = 0;  // emulated device index; its SM count is g_device + 1
inline long long g_launches = 0;

template <class F>
void launch(unsigned grid, unsigned block, size_t, void*, F&& body) {
  g_grid_dim = {grid, 1, 1};
  g_block_dim = {block, 1, 1};
  ++g_launches;
  for (unsigned b = 0; b < grid; ++b) {
    Block blk(block);
    std::vector<std::thread> threads;
    threads.reserve(block);
    for (unsigned t = 0; t < block; ++t) {
      threads.emplace_back([&, t, b]() {
        t_thread = {t, 1, 1};
        t_block = {b, 1, 1};
        t_blk = &blk;
        body();
      });
    }
    for (auto& th : threads) th.join();
  }
}

template <class T>
T exchange(T v, int src_lane) {
  static_assert(sizeof(T) <= 8, "exchange: at most 8 bytes");
  Warp& w = t_blk->warps[t_thread.x / 32];
  unsigned long long bits = 0;
  memcpy(&bits, &v, sizeof(T));
  w.slot[t_thread.x & 31u] = bits;
  w.bar.arrive_and_wait();
  bits = w.slot[src_lane & 31];
  w.bar.arrive_and_wait();
  T r;
  memcpy(&r, &bits, sizeof(T));
  return r;
}

}  // namespace emu

#define threadIdx (::emu::t_thread)
#define blockIdx (::emu::t_block)
#define blockDim (::emu::g_block_dim)
#define gridDim (::emu::g_grid_dim)

template <class T>
T __shfl_sync(unsigned, T v, int src) {
  return emu::exchange(v, src);
}
template <class T>
T __shfl_xor_sync(unsigned, T v, int lane_mask) {
  return emu::exchange(v, static_cast<int>(threadIdx.x & 31u) ^ lane_mask);
}
inline int __all_sync(unsigned, int pred) {
  int all = 1;
  for (int k = 0; k < 32; ++k) all &= emu::exchange(pred ? 1 : 0, k);
  return all;
}
inline void __syncthreads() { emu::t_blk->bar.arrive_and_wait(); }

// --- vector types and intrinsics -------------------------------------------------------------
struct alignas(8) uint2 {
  unsigned x, y;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(16) double2 {
  double x, y;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

template <class T>
T __ldg(const T* p) {
  return *p;
}
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __popcll(unsigned long long v) { return __builtin_popcountll(v); }
inline float __uint_as_float(unsigned v) {
  float f;
  memcpy(&f, &v, 4);
  return f;
}
inline double __hiloint2double(int hi, int lo) {
  const unsigned long long b = (static_cast<unsigned long long>(static_cast<unsigned>(hi)) << 32) |
                               static_cast<unsigned>(lo);
  double d;
  memcpy(&d, &b, 8);
  return d;
}
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
