// Device-side building blocks of the blkit CUDA kernels (internal header, included by csrc/cuda/*.cu).
//
// Work decomposition. Dense element-wise kernels work on chunks of kChunk = 16 consecutive elements of
// the flat (row-major) index: one chunk is one 16-byte load of uint8 state, four of float32 logits, two of
// float16/bfloat16. The chunks (or other work units) are split into one contiguous range per warp; in
// each iteration the 32 lanes take 32 consecutive units (coalesced), and the loop bounds are uniform over
// the warp, so the lanes are converged after the loop (warp-level reductions are safe there).
//
// Bits of a chunk travel as a uint32 mask (bit j = element base + j). Loads take a `vec` flag: true when
// every buffer of the kernel is 16-byte aligned (checked on the host) and the chunk is full; otherwise
// element-wise loads are used (same results). Elements past `count` are read as 0 and masked by callers.
//
// Random numbers: u_i = uniform_at(seed, offset + i) (blkit/philox.h), i the flat index of the element in
// the dense logical output; seed and offset are read from the device tensor rng = int64 [2].
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdint.h>

#include "blkit/cpu.h"  // DType codes
#include "blkit/philox.h"
#include "blkit/step_math.h"
#include "launch.cuh"

namespace blkit {
namespace cuda {
namespace dev {

constexpr int kChunk = 16;
constexpr unsigned kFullMask = 0xFFFFFFFFu;

__device__ __forceinline__ int lane_id() { return static_cast<int>(threadIdx.x & 31u); }

__device__ __forceinline__ uint32_t low_mask(int count) { return count >= 32 ? 0xFFFFFFFFu : (1u << count) - 1u; }

// ---------------------------------------------------------------------------------------------
// Work ranges
// ---------------------------------------------------------------------------------------------
// This warp's units [begin, end): ceil(units / warps) rounded up to a multiple of 32 per warp.
struct WarpRange {
  int64_t begin, end;
};

__device__ __forceinline__ WarpRange warp_range(int64_t units) {
  const int64_t warps_per_block = static_cast<int64_t>(blockDim.x) / 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * warps_per_block;
  const int64_t warp = static_cast<int64_t>(blockIdx.x) * warps_per_block + threadIdx.x / 32;
  int64_t per = (units + warps - 1) / warps;
  per = (per + 31) / 32 * 32;
  int64_t begin = warp * per;
  int64_t end = begin + per;
  begin = begin < units ? begin : units;
  end = end < units ? end : units;
  return {begin, end};
}

// body(u) for every unit u of this warp's range (warp_range), lane i taking units begin + i, begin + 32 + i, ...
// Every lane runs every iteration of the loop; only the body is skipped past the end.
template <class Body>
__device__ __forceinline__ void for_each_unit(int64_t units, Body&& body) {
  const WarpRange range = warp_range(units);
  for (int64_t u0 = range.begin; u0 < range.end; u0 += 32) {
    const int64_t u = u0 + lane_id();
    if (u < range.end) body(u);
  }
}

// The same over chunks of kN consecutive elements of [0, n): body(base, count, v) with count = min(kN, n - base)
// and v = vec && count == kN (a whole chunk: vector loads and stores allowed).
template <int kN, class Body>
__device__ __forceinline__ void for_each_chunk(int64_t n, bool vec, Body&& body) {
  for_each_unit((n + kN - 1) / kN, [&](int64_t u) {
    const int64_t base = u * kN;
    const int count = static_cast<int>(n - base < kN ? n - base : kN);
    body(base, count, vec && count == kN);
  });
}

// Walks the sample index of consecutive flat indices (samples are `per` consecutive elements).
struct Cursor {
  int64_t sample, next, per;
  __device__ __forceinline__ void init(int64_t i, int64_t per_) {
    per = per_;
    sample = i / per;
    next = (sample + 1) * per;
  }
  // Moves to the sample of index i (>= every earlier index); true if the sample changed.
  __device__ __forceinline__ bool advance(int64_t i) {
    if (i < next) return false;
    do {
      ++sample;
      next += per;
    } while (i >= next);
    return true;
  }
};

// ---------------------------------------------------------------------------------------------
// Random stream
// ---------------------------------------------------------------------------------------------
struct Rng {
  uint64_t seed, offset;
};

__device__ __forceinline__ Rng read_rng(const int64_t* rng) {
  const long long* p = reinterpret_cast<const long long*>(rng);
  return {static_cast<uint64_t>(__ldg(p)), static_cast<uint64_t>(__ldg(p + 1))};
}

__device__ __forceinline__ float uniform(const Rng& r, int64_t i) {
  return uniform_at(r.seed, r.offset + static_cast<uint64_t>(i));  // wraps modulo 2**64
}

// ---------------------------------------------------------------------------------------------
// Vector loads: W consecutive 32-bit words (W * 4 bytes, aligned to min(16, W * 4) bytes)
// ---------------------------------------------------------------------------------------------
template <int W>
__device__ __forceinline__ void load_words(const void* p, uint32_t (&w)[W]) {
  if constexpr (W % 4 == 0) {
    const uint4* q = static_cast<const uint4*>(p);
#pragma unroll
    for (int k = 0; k < W / 4; ++k) {
      const uint4 v = __ldg(q + k);
      w[4 * k] = v.x;
      w[4 * k + 1] = v.y;
      w[4 * k + 2] = v.z;
      w[4 * k + 3] = v.w;
    }
  } else if constexpr (W == 2) {
    const uint2 v = __ldg(static_cast<const uint2*>(p));
    w[0] = v.x;
    w[1] = v.y;
  } else {
    static_assert(W == 1, "load_words: W must be 1, 2 or a multiple of 4");
    w[0] = __ldg(static_cast<const unsigned int*>(p));
  }
}

// ---------------------------------------------------------------------------------------------
// Floating inputs (logits, probabilities) -> float32
// ---------------------------------------------------------------------------------------------
__device__ __forceinline__ float f16_bits_to_float(uint32_t h) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(h)));
}
__device__ __forceinline__ float bf16_bits_to_float(uint32_t b) { return __uint_as_float(b << 16); }

__device__ __forceinline__ float load_float(const void* p, int dtype, int64_t i) {
  switch (dtype) {
    case cpu::kFloat32:
      return __ldg(static_cast<const float*>(p) + i);
    case cpu::kFloat16:
      return f16_bits_to_float(__ldg(static_cast<const unsigned short*>(p) + i));
    case cpu::kBFloat16:
      return bf16_bits_to_float(__ldg(static_cast<const unsigned short*>(p) + i));
    default:  // kFloat64
      return static_cast<float>(__ldg(static_cast<const double*>(p) + i));
  }
}

// out[j] = float(p[base + j]) for j < count, 0 beyond (N = 4, 8 or 16; base a multiple of N when vec).
template <int N>
__device__ __forceinline__ void load_floats(const void* p, int dtype, int64_t base, int count, bool vec,
                                            float (&out)[N]) {
  if (vec && count == N) {
    if (dtype == cpu::kFloat32) {
      uint32_t w[N];
      load_words<N>(static_cast<const float*>(p) + base, w);
#pragma unroll
      for (int j = 0; j < N; ++j) out[j] = __uint_as_float(w[j]);
      return;
    }
    if (dtype == cpu::kFloat16 || dtype == cpu::kBFloat16) {
      uint32_t w[N / 2];
      load_words<N / 2>(static_cast<const unsigned short*>(p) + base, w);
      const bool bf16 = dtype == cpu::kBFloat16;
#pragma unroll
      for (int h = 0; h < N / 2; ++h) {
        const uint32_t lo = w[h] & 0xFFFFu, hi = w[h] >> 16;
        out[2 * h] = bf16 ? bf16_bits_to_float(lo) : f16_bits_to_float(lo);
        out[2 * h + 1] = bf16 ? bf16_bits_to_float(hi) : f16_bits_to_float(hi);
      }
      return;
    }
    if (dtype == cpu::kFloat64) {
      uint32_t w[2 * N];
      load_words<2 * N>(static_cast<const double*>(p) + base, w);
#pragma unroll
      for (int j = 0; j < N; ++j) out[j] = static_cast<float>(__hiloint2double(static_cast<int>(w[2 * j + 1]),
                                                                                 static_cast<int>(w[2 * j])));
      return;
    }
  }
#pragma unroll
  for (int j = 0; j < N; ++j) out[j] = j < count ? load_float(p, dtype, base + j) : 0.0f;
}

// ---------------------------------------------------------------------------------------------
// Dense binary inputs of any dtype -> bit masks (nonzero = 1; floating -0.0 is 0, NaN is 1)
// ---------------------------------------------------------------------------------------------
// 4 bytes -> 4 bits, bit k = (byte k != 0). No carries cross byte lanes; the multiply gathers bit 8k of
// the 0/1 bytes to bit 21 + k (all 16 partial products land on distinct bits).
__device__ __forceinline__ uint32_t nonzero_bytes4(uint32_t w) {
  const uint32_t high = (((w & 0x7F7F7F7Fu) + 0x7F7F7F7Fu) | w) & 0x80808080u;
  return (((high >> 7) * 0x00204081u) >> 21) & 0xFu;
}

// 4 bits -> 4 bytes of 0 / 1 (bit k to byte k; the partial products land on distinct bits).
__device__ __forceinline__ uint32_t spread_nibble(uint32_t nibble) { return (nibble * 0x00204081u) & 0x01010101u; }

__device__ __forceinline__ bool load_bit(const void* p, int dtype, int64_t i) {
  switch (dtype) {
    case cpu::kByte:
      return __ldg(static_cast<const unsigned char*>(p) + i) != 0;
    case cpu::kInt16:
      return __ldg(static_cast<const unsigned short*>(p) + i) != 0;
    case cpu::kFloat16:
    case cpu::kBFloat16:
      return (__ldg(static_cast<const unsigned short*>(p) + i) & 0x7FFFu) != 0;
    case cpu::kInt32:
      return __ldg(static_cast<const unsigned int*>(p) + i) != 0;
    case cpu::kFloat32:
      return (__ldg(static_cast<const unsigned int*>(p) + i) & 0x7FFFFFFFu) != 0;
    case cpu::kInt64:
      return __ldg(static_cast<const unsigned long long*>(p) + i) != 0;
    default:  // kFloat64
      return (__ldg(static_cast<const unsigned long long*>(p) + i) & 0x7FFFFFFFFFFFFFFFull) != 0;
  }
}

// Bit mask of elements [base, base + count) of a dense binary buffer (N = 4, 8 or 16).
template <int N>
__device__ __forceinline__ uint32_t load_bits(const void* p, int dtype, int64_t base, int count, bool vec) {
  if (vec && count == N) {
    uint32_t m = 0;
    switch (dtype) {
      case cpu::kByte: {
        uint32_t w[N / 4];
        load_words<N / 4>(static_cast<const unsigned char*>(p) + base, w);
#pragma unroll
        for (int k = 0; k < N / 4; ++k) m |= nonzero_bytes4(w[k]) << (4 * k);
        return m;
      }
      case cpu::kInt16:
      case cpu::kFloat16:
      case cpu::kBFloat16: {
        const uint32_t keep = dtype == cpu::kInt16 ? 0xFFFFu : 0x7FFFu;
        uint32_t w[N / 2];
        load_words<N / 2>(static_cast<const unsigned short*>(p) + base, w);
#pragma unroll
        for (int k = 0; k < N / 2; ++k) {
          m |= static_cast<uint32_t>((w[k] & keep) != 0) << (2 * k);
          m |= static_cast<uint32_t>(((w[k] >> 16) & keep) != 0) << (2 * k + 1);
        }
        return m;
      }
      case cpu::kInt32:
      case cpu::kFloat32: {
        const uint32_t keep = dtype == cpu::kInt32 ? 0xFFFFFFFFu : 0x7FFFFFFFu;
        uint32_t w[N];
        load_words<N>(static_cast<const unsigned int*>(p) + base, w);
#pragma unroll
        for (int k = 0; k < N; ++k) m |= static_cast<uint32_t>((w[k] & keep) != 0) << k;
        return m;
      }
      default: {  // 8-byte elements: (low word | high word, without the sign bit for float64) != 0
        const uint32_t keep_hi = dtype == cpu::kInt64 ? 0xFFFFFFFFu : 0x7FFFFFFFu;
        uint32_t w[2 * N];
        load_words<2 * N>(static_cast<const unsigned long long*>(p) + base, w);
#pragma unroll
        for (int k = 0; k < N; ++k) m |= static_cast<uint32_t>((w[2 * k] | (w[2 * k + 1] & keep_hi)) != 0) << k;
        return m;
      }
    }
  }
  uint32_t m = 0;
#pragma unroll
  for (int j = 0; j < N; ++j) {
    if (j < count && load_bit(p, dtype, base + j)) m |= 1u << j;
  }
  return m;
}

// Bits of dense elements [base, base + count) (count <= 16) of a packed [rows, width] buffer with
// `channels` channels per row. When channels % 8 == 0 the packed rows have no padding: element i is bit
// i % 8 of byte i / 8 (a flat bit stream), read as one 16-bit word for a full aligned chunk.
__device__ __forceinline__ uint32_t load_packed_bits(const uint8_t* packed, int64_t channels, int64_t width,
                                                     int64_t base, int count, bool vec) {
  if ((channels & 7) == 0 && (base & 7) == 0) {
    const int64_t byte = base >> 3;
    if (vec && count == kChunk) return __ldg(reinterpret_cast<const unsigned short*>(packed + byte));
    uint32_t m = __ldg(packed + byte);
    if (count > 8) m |= static_cast<uint32_t>(__ldg(packed + byte + 1)) << 8;
    return m & low_mask(count);
  }
  int64_t r = base / channels;
  int64_t c = base - r * channels;
  uint32_t m = 0;
#pragma unroll
  for (int j = 0; j < kChunk; ++j) {
    if (j < count) {
      m |= ((static_cast<uint32_t>(__ldg(packed + r * width + (c >> 3))) >> (c & 7)) & 1u) << j;
      if (++c == channels) {
        c = 0;
        ++r;
      }
    }
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------------------
// out[base + j] = bit j of mask as 0 / 1 bytes (16 elements: one 16-byte store).
__device__ __forceinline__ void store_bytes(uint8_t* out, int64_t base, int count, bool vec, uint32_t mask) {
  if (vec && count == kChunk) {
    uint4 v;
    v.x = spread_nibble(mask & 0xFu);
    v.y = spread_nibble((mask >> 4) & 0xFu);
    v.z = spread_nibble((mask >> 8) & 0xFu);
    v.w = spread_nibble((mask >> 12) & 0xFu);
    *reinterpret_cast<uint4*>(out + base) = v;
    return;
  }
#pragma unroll
  for (int j = 0; j < kChunk; ++j) {
    if (j < count) out[base + j] = static_cast<uint8_t>((mask >> j) & 1u);
  }
}

// out[base + j] = bit j of mask ? one : 0 for 16 elements of a type given by its bit pattern type T
// (uint8_t, uint16_t: float16 / bfloat16 / int16, uint32_t: float32 / int32, uint64_t: float64 / int64).
template <typename T>
__device__ __forceinline__ void store_values(T* out, int64_t base, int count, bool vec, uint32_t mask, T one) {
  if (vec && count == kChunk) {
    constexpr int kPer = 16 / static_cast<int>(sizeof(T));
    uint4* q = reinterpret_cast<uint4*>(out + base);
#pragma unroll
    for (int v = 0; v < kChunk / kPer; ++v) {
      union {
        uint4 vec;
        T e[kPer];
      } u;
#pragma unroll
      for (int k = 0; k < kPer; ++k) u.e[k] = ((mask >> (v * kPer + k)) & 1u) ? one : T(0);
      q[v] = u.vec;
    }
    return;
  }
#pragma unroll
  for (int j = 0; j < kChunk; ++j) {
    if (j < count) out[base + j] = ((mask >> j) & 1u) ? one : T(0);
  }
}

// N = 4, 8 or 16 floats (16-byte stores when vec and full).
template <int N>
__device__ __forceinline__ void store_floats(float* out, int64_t base, int count, bool vec, const float (&v)[N]) {
  static_assert(N % 4 == 0, "store_floats: N must be a multiple of 4");
  if (vec && count == N) {
    float4* q = reinterpret_cast<float4*>(out + base);
#pragma unroll
    for (int k = 0; k < N / 4; ++k) q[k] = make_float4(v[4 * k], v[4 * k + 1], v[4 * k + 2], v[4 * k + 3]);
    return;
  }
#pragma unroll
  for (int j = 0; j < N; ++j) {
    if (j < count) out[base + j] = v[j];
  }
}

// ---------------------------------------------------------------------------------------------
// Per-sample integer counts (exact, so atomics keep them deterministic)
// ---------------------------------------------------------------------------------------------
__device__ __forceinline__ unsigned long long warp_sum(unsigned long long v) {
#pragma unroll
  for (int d = 16; d > 0; d >>= 1) v += __shfl_xor_sync(kFullMask, v, d);
  return v;
}

// A thread's running count for one sample; flushed with an integer atomicAdd when the sample changes
// and, after the work loop (warp converged), once per warp when all lanes ended in the same sample.
struct Counter {
  long long sample;
  unsigned long long count;

  __device__ __forceinline__ void reset() {
    sample = -1;
    count = 0;
  }
  __device__ __forceinline__ void add(int64_t s, unsigned long long c, unsigned long long* counts) {
    if (s != sample) {
      if (count != 0) atomicAdd(counts + sample, count);
      sample = s;
      count = 0;
    }
    count += c;
  }
  // Every lane of the warp must call this (after a warp-uniform loop).
  __device__ __forceinline__ void flush_warp(unsigned long long* counts) {
    const long long s0 = __shfl_sync(kFullMask, sample, 0);
    const bool same = __all_sync(kFullMask, sample == s0 || count == 0);
    if (same) {
      const unsigned long long total = warp_sum(count);
      if (lane_id() == 0 && total != 0) atomicAdd(counts + s0, total);
    } else if (count != 0) {
      atomicAdd(counts + sample, count);
    }
    count = 0;
  }
};

// ---------------------------------------------------------------------------------------------
// Drivers: the work loops shared by the kernels whose output is bits (dense bytes or packed)
// ---------------------------------------------------------------------------------------------
// An Op provides
//   __device__ void begin();                  // per-thread setup (e.g. read the rng state)
//   __device__ uint32_t chunk(int64_t base, int count, bool vec, XIn x, uint32_t* second);
//       // bits of dense elements [base, base + count), count <= 16; `second` receives the bits of a
//       // second output (q_sample's residual) when Op::kTwoOutputs; `x`: the bits of the packed input
//       // for these elements when the driver already read them (Op::kPackedInput, packed outputs)
//   __device__ const uint8_t* packed_input() const;  // with kPackedInput: packed [rows, width] input,
//       // laid out like the packed output (sample_step's x_t); read as one uint64 per 64-element unit
//   __device__ void end();                    // after the loop, warp converged (e.g. flush counts)
// Bits past `count` are masked off by the drivers. Op::kMinBlocks: resident blocks per SM the register
// allocation must allow (__launch_bounds__), Op::kTwoOutputs: whether `second` is stored,
// Op::kPackedInput: whether packed_input() is read by the packed drivers.

// Bits of a packed input that the driver read for a chunk (valid = false: the Op reads its inputs itself).
struct XIn {
  bool valid;
  uint32_t bits;
};

// Dense uint8 outputs: one chunk of 16 elements per unit.
template <class Op>
__device__ __forceinline__ void run_dense(Op& op, uint8_t* out0, uint8_t* out1, int64_t n, bool vec) {
  op.begin();
  for_each_chunk<kChunk>(n, vec, [&](int64_t base, int count, bool v) {
    uint32_t second = 0;
    const uint32_t first = op.chunk(base, count, v, XIn{false, 0u}, &second) & low_mask(count);
    store_bytes(out0, base, count, v, first);
    if constexpr (Op::kTwoOutputs) store_bytes(out1, base, count, v, second & low_mask(count));
  });
  op.end();
}

// Packed outputs, channels % 8 == 0 (flat bit stream): one 64-bit word (64 elements, four chunks) per
// unit, stored as one uint64 (C = 64: one word per position); partial words at the end as bytes.
template <class Op>
__device__ __forceinline__ void run_packed_flat(Op& op, uint8_t* out0, uint8_t* out1, int64_t n, bool vec) {
  op.begin();
  const int64_t nbytes = n >> 3;  // n % 8 == 0 here
  const int64_t units = (nbytes + 7) >> 3;
  for_each_unit(units, [&](int64_t u) {
    const int64_t base = u * 64;
    const int count = static_cast<int>(n - base < 64 ? n - base : 64);
    uint64_t xw = 0;  // the packed input's 64-bit word of this unit
    if constexpr (Op::kPackedInput) {
      const uint8_t* in = op.packed_input();
      if (vec && count == 64) {
        xw = __ldg(reinterpret_cast<const unsigned long long*>(in) + u);
      } else {
        for (int k = 0; k < (count >> 3); ++k) xw |= static_cast<uint64_t>(__ldg(in + 8 * u + k)) << (8 * k);
      }
    }
    uint64_t w0 = 0, w1 = 0;
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int c = count - 16 * q;
      if (c > 0) {
        const int cq = c < kChunk ? c : kChunk;
        uint32_t second = 0;
        const XIn x{Op::kPackedInput, static_cast<uint32_t>(xw >> (16 * q)) & 0xFFFFu};
        const uint32_t first = op.chunk(base + 16 * q, cq, vec && cq == kChunk, x, &second);
        w0 |= static_cast<uint64_t>(first & low_mask(cq)) << (16 * q);
        if constexpr (Op::kTwoOutputs) w1 |= static_cast<uint64_t>(second & low_mask(cq)) << (16 * q);
      }
    }
    if (vec && count == 64) {
      reinterpret_cast<uint64_t*>(out0)[u] = w0;
      if constexpr (Op::kTwoOutputs) reinterpret_cast<uint64_t*>(out1)[u] = w1;
    } else {
      const int bytes = count >> 3;
      for (int k = 0; k < bytes; ++k) {
        out0[8 * u + k] = static_cast<uint8_t>(w0 >> (8 * k));
        if constexpr (Op::kTwoOutputs) out1[8 * u + k] = static_cast<uint8_t>(w1 >> (8 * k));
      }
    }
  });
  op.end();
}

// Packed outputs, any channel count: one packed byte (up to 8 channels of one row) per unit; padding
// bits are written as 0.
template <class Op>
__device__ __forceinline__ void run_packed_bytes(Op& op, uint8_t* out0, uint8_t* out1, int64_t rows,
                                                 int64_t channels, int64_t width) {
  op.begin();
  const int64_t units = rows * width;
  for_each_unit(units, [&](int64_t u) {
    const int64_t r = u / width;
    const int64_t jb = u - r * width;
    const int64_t c0 = 8 * jb;
    const int count = static_cast<int>(channels - c0 < 8 ? channels - c0 : 8);
    uint32_t second = 0;
    XIn x{false, 0u};
    if constexpr (Op::kPackedInput) x = XIn{true, static_cast<uint32_t>(__ldg(op.packed_input() + u))};
    const uint32_t first = op.chunk(r * channels + c0, count, false, x, &second);
    out0[u] = static_cast<uint8_t>(first & low_mask(count));
    if constexpr (Op::kTwoOutputs) out1[u] = static_cast<uint8_t>(second & low_mask(count));
  });
  op.end();
}

// Kernels for an Op: dense, packed flat, packed by bytes.
template <class Op>
__global__ void __launch_bounds__(256, Op::kMinBlocks) dense_bits_kernel(Op op, uint8_t* out0, uint8_t* out1, int64_t n, bool vec) {
  run_dense(op, out0, out1, n, vec);
}

template <class Op>
__global__ void __launch_bounds__(256, Op::kMinBlocks)
    packed_flat_kernel(Op op, uint8_t* out0, uint8_t* out1, int64_t n, bool vec) {
  run_packed_flat(op, out0, out1, n, vec);
}

template <class Op>
__global__ void __launch_bounds__(256, Op::kMinBlocks) packed_bytes_kernel(Op op, uint8_t* out0, uint8_t* out1, int64_t rows,
                                                           int64_t channels, int64_t width) {
  run_packed_bytes(op, out0, out1, rows, channels, width);
}

// Host: launches the kernel of an Op for bit outputs [rows, channels], dense uint8 or packed.
// `vec`: every buffer the Op reads and the outputs are 16-byte aligned.
template <class Op>
void launch_bits(const Op& op, uint8_t* out0, uint8_t* out1, int64_t rows, int64_t channels, bool packed, bool vec,
                 void* stream, const char* kernel) {
  const int64_t n = rows * channels;
  if (n == 0) return;
  const cudaStream_t s = detail::as_stream(stream);
  if (!packed) {
    const int64_t blocks = detail::grid_blocks((n + kChunk - 1) / kChunk);
    dense_bits_kernel<Op><<<static_cast<unsigned>(blocks), detail::kThreads, 0, s>>>(op, out0, out1, n, vec);
  } else if (channels % 8 == 0) {
    const int64_t blocks = detail::grid_blocks((n / 8 + 7) / 8);
    packed_flat_kernel<Op><<<static_cast<unsigned>(blocks), detail::kThreads, 0, s>>>(op, out0, out1, n, vec);
  } else {
    const int64_t width = (channels + 7) / 8;
    const int64_t blocks = detail::grid_blocks(rows * width);
    packed_bytes_kernel<Op><<<static_cast<unsigned>(blocks), detail::kThreads, 0, s>>>(op, out0, out1, rows, channels,
                                                                                       width);
  }
  detail::check_launch(kernel);
}

}  // namespace dev
}  // namespace cuda
}  // namespace blkit
