// CPU emulation of the small subset of CUDA that blkit's kernels use, for checking the kernels' logic on
// machines without a GPU (see csrc/cuda/emu/build.py). The blocks of a launch run one after another; the
// threads of a block are fibers on the calling thread (or OS threads under AddressSanitizer), switched at
// warp collectives (__shfl_sync, __all_sync) and __syncthreads, which are real barriers among them (a
// collective that some lane never reaches aborts as a deadlock). Device memory is host memory.
// This checks indexing, packing, tails, per-sample bookkeeping, reductions and the host-side glue; it says
// nothing about GPU performance, the memory model, alignment faults or the real compiler's code generation.
#pragma once

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>
#include <ucontext.h>

#include <barrier>
#include <memory>
#include <thread>
#include <type_traits>
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

inline thread_local emu_dim3 t_thread;
inline thread_local emu_dim3 t_block;
inline emu_dim3 g_block_dim;
inline emu_dim3 g_grid_dim;
inline int g_device = 0;  // emulated device index; its SM count is g_device + 1
inline long long g_launches = 0;

#if defined(__SANITIZE_ADDRESS__)
// ---- one OS thread per CUDA thread (AddressSanitizer does not follow ucontext stack switches) ----
struct Barrier {
  explicit Barrier(std::ptrdiff_t n) : bar(n) {}
  std::barrier<> bar;
  void wait() { bar.arrive_and_wait(); }
};

struct Block {
  explicit Block(unsigned threads) : bar(threads) {
    for (unsigned w = 0; w < (threads + 31) / 32; ++w) warp_bars.emplace_back(std::make_unique<Barrier>(32));
  }
  Barrier bar;
  std::vector<std::unique_ptr<Barrier>> warp_bars;
  unsigned long long slot[1024];
};
inline thread_local Block* t_blk = nullptr;

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
inline void warp_barrier() { t_blk->warp_bars[t_thread.x / 32]->wait(); }
inline void block_barrier() { t_blk->bar.wait(); }
inline unsigned long long* slots() { return t_blk->slot; }
#else
// ---- the threads of a block as fibers (ucontext) on the calling thread, switched at barriers ----
struct Barrier {
  unsigned needed = 0, count = 0, generation = 0;
};

struct Block {
  std::vector<ucontext_t> ctx;
  std::vector<char> done;
  std::vector<Barrier> warp_bars;
  Barrier bar;
  ucontext_t main;
  unsigned current = 0;
  unsigned long long progress = 0;  // barrier completions and finished fibers
  unsigned long long slot[1024];
};
inline Block* g_blk = nullptr;
inline void (*g_entry_body)(void*) = nullptr;
inline void* g_entry_arg = nullptr;

inline void fiber_yield() { swapcontext(&g_blk->ctx[g_blk->current], &g_blk->main); }

inline void wait_at(Barrier& b) {
  const unsigned generation = b.generation;
  if (++b.count == b.needed) {
    b.count = 0;
    ++b.generation;
    ++g_blk->progress;
    return;
  }
  while (b.generation == generation) fiber_yield();
}

inline void fiber_entry() {
  g_entry_body(g_entry_arg);
  g_blk->done[g_blk->current] = 1;
  ++g_blk->progress;
}  // returns to uc_link = main

template <class F>
void launch(unsigned grid, unsigned block, size_t, void*, F&& body) {
  constexpr size_t kStack = size_t{1} << 18;
  static std::vector<std::unique_ptr<char[]>> stacks;
  while (stacks.size() < block) stacks.emplace_back(new char[kStack]);
  g_grid_dim = {grid, 1, 1};
  g_block_dim = {block, 1, 1};
  ++g_launches;
  g_entry_body = [](void* f) { (*static_cast<std::remove_reference_t<F>*>(f))(); };
  g_entry_arg = static_cast<void*>(&body);
  for (unsigned b = 0; b < grid; ++b) {
    Block blk;
    blk.ctx.resize(block);
    blk.done.assign(block, 0);
    blk.warp_bars.resize((block + 31) / 32);
    for (auto& w : blk.warp_bars) w.needed = 32;
    blk.bar.needed = block;
    g_blk = &blk;
    t_block = {b, 1, 1};
    for (unsigned t = 0; t < block; ++t) {
      getcontext(&blk.ctx[t]);
      blk.ctx[t].uc_stack.ss_sp = stacks[t].get();
      blk.ctx[t].uc_stack.ss_size = kStack;
      blk.ctx[t].uc_link = &blk.main;
      makecontext(&blk.ctx[t], fiber_entry, 0);
    }
    unsigned remaining = block;
    while (remaining > 0) {
      const unsigned long long before = blk.progress;
      for (unsigned t = 0; t < block; ++t) {
        if (blk.done[t]) continue;
        blk.current = t;
        t_thread = {t, 1, 1};
        swapcontext(&blk.main, &blk.ctx[t]);
        if (blk.done[t]) --remaining;
      }
      if (remaining > 0 && blk.progress == before) {
        fprintf(stderr, "blkit CUDA emulation: deadlock (a warp collective or __syncthreads was not reached by "
                        "every thread of its warp/block)\n");
        abort();
      }
    }
    g_blk = nullptr;
  }
}
inline void warp_barrier() { wait_at(g_blk->warp_bars[t_thread.x / 32]); }
inline void block_barrier() { wait_at(g_blk->bar); }
inline unsigned long long* slots() { return g_blk->slot; }
#endif

template <class T>
T exchange(T v, int src_lane) {
  static_assert(sizeof(T) <= 8, "exchange: at most 8 bytes");
  unsigned long long* slot = slots() + (t_thread.x & ~31u);
  unsigned long long bits = 0;
  memcpy(&bits, &v, sizeof(T));
  slot[t_thread.x & 31u] = bits;
  warp_barrier();
  bits = slot[src_lane & 31];
  warp_barrier();
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
  unsigned long long* slot = emu::slots() + (threadIdx.x & ~31u);
  slot[threadIdx.x & 31u] = pred ? 1 : 0;
  emu::warp_barrier();
  int all = 1;
  for (int k = 0; k < 32; ++k) all &= static_cast<int>(slot[k]);
  emu::warp_barrier();
  return all;
}
inline void __syncthreads() { emu::block_barrier(); }

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
