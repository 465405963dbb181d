// Internal helpers of the CPU kernels: tiling, bit (un)packing of 8 channels, threads, ISA dispatch.
// Not installed; included by csrc/cpu/*.cpp only.
#pragma once

#include <stdint.h>
#include <string.h>

#include <stdexcept>
#include <string>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#define BLKIT_CPU_X86 1
#else
#define BLKIT_CPU_X86 0
#endif

// Extra instruction sets (AVX2, AVX-512) are compiled with GCC target pragmas and chosen at run time.
#if BLKIT_CPU_X86 && defined(__GNUC__) && !defined(__clang__) && !defined(__INTEL_COMPILER)
#define BLKIT_CPU_MULTI_ISA 1
#else
#define BLKIT_CPU_MULTI_ISA 0
#endif

#include "blkit/blkit.h"
#include "blkit/philox.h"
#include "blkit/step_math.h"

namespace blkit {
namespace cpu {
namespace detail {

// Elements per tile: every kernel works on tiles of at most kTile elements through stack buffers
// (a few KiB each, L1-resident). A multiple of 8, so that tile boundaries inside a row fall on byte
// boundaries of the packed layout and no two tiles write the same packed byte.
constexpr int64_t kTile = 512;
// Philox uniforms are generated in blocks of this many elements (buffers have this much slack).
constexpr int64_t kPhiloxBlock = 32;
// Below this many elements a kernel runs on the calling thread.
constexpr int64_t kParallelMin = int64_t{1} << 13;
// Largest dynamic chunk of a parallel region, in elements (see parallel_for).
constexpr int64_t kChunkElements = int64_t{1} << 17;

inline void check_nonnegative(int64_t v, const char* what, const char* fn) {
  if (v < 0) throw std::invalid_argument(std::string(fn) + ": " + what + " must be non-negative");
}

// ---------------------------------------------------------------------------------------------
// Tiling. A logical [rows, cols] tensor is cut into tiles that are contiguous ranges of the flat
// (row-major) index: whole rows when cols <= kTile (floor(kTile / cols) rows per tile), else
// segments of kTile columns of one row.
// ---------------------------------------------------------------------------------------------
struct Tile {
  int64_t start;  // flat index of the first element
  int64_t n;      // elements (<= kTile)
  int64_t row0, nrows, col0, ncols;
};

struct TileGrid {
  int64_t rows = 0, cols = 0, rows_per_tile = 0, segs_per_row = 0, count = 0;

  TileGrid(int64_t rows_, int64_t cols_) : rows(rows_), cols(cols_) {
    if (rows <= 0 || cols <= 0) return;
    if (cols <= kTile) {
      rows_per_tile = kTile / cols;
      count = (rows + rows_per_tile - 1) / rows_per_tile;
    } else {
      segs_per_row = (cols + kTile - 1) / kTile;
      count = rows * segs_per_row;
    }
  }

  Tile tile(int64_t t) const {
    Tile r;
    if (rows_per_tile > 0) {
      r.row0 = t * rows_per_tile;
      r.nrows = rows - r.row0 < rows_per_tile ? rows - r.row0 : rows_per_tile;
      r.col0 = 0;
      r.ncols = cols;
    } else {
      r.row0 = t / segs_per_row;
      r.nrows = 1;
      r.col0 = (t % segs_per_row) * kTile;
      r.ncols = cols - r.col0 < kTile ? cols - r.col0 : kTile;
    }
    r.start = r.row0 * cols + r.col0;
    r.n = r.nrows * r.ncols;
    return r;
  }
};

// The maximal sub-ranges [j0, j1) of a tile (tile-relative indices) that lie in one sample; samples are
// `per_sample` consecutive elements. With split false the whole tile is one span of sample 0.
//   for (SpanCursor c(tile, per_sample, split); c.next();) { ... c.j0, c.j1, c.sample ... }
struct SpanCursor {
  int64_t pos, end, start, per_sample;
  bool split;
  int64_t j0 = 0, j1 = 0, sample = 0;

  SpanCursor(const Tile& t, int64_t per_sample_, bool split_)
      : pos(t.start), end(t.start + t.n), start(t.start), per_sample(per_sample_), split(split_) {}

  bool next() {
    if (pos >= end) return false;
    int64_t stop = end;
    sample = 0;
    if (split) {
      sample = pos / per_sample;
      const int64_t sample_end = (sample + 1) * per_sample;
      stop = sample_end < end ? sample_end : end;
    }
    j0 = pos - start;
    j1 = stop - start;
    pos = stop;
    return true;
  }
};

// ---------------------------------------------------------------------------------------------
// 8 channels <-> 1 packed byte (little-endian bit order), on whole 64-bit words.
// ---------------------------------------------------------------------------------------------
constexpr uint64_t kLow7 = 0x7F7F7F7F7F7F7F7FULL;
constexpr uint64_t kHigh = 0x8080808080808080ULL;

// Per byte of x: 0x80 if that byte is nonzero, else 0 (no carries cross byte lanes).
inline uint64_t nonzero_high_bits(uint64_t x) { return (((x & kLow7) + kLow7) | x) & kHigh; }

inline uint64_t load_u64(const uint8_t* p) {
  uint64_t x;
  memcpy(&x, p, sizeof(x));
  return x;
}

inline void store_u64(uint8_t* p, uint64_t x) { memcpy(p, &x, sizeof(x)); }

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define BLKIT_LITTLE_ENDIAN 1
#else
#define BLKIT_LITTLE_ENDIAN 0
#endif

// 8 bytes (nonzero = 1) -> 1 packed byte.
inline uint8_t pack8(const uint8_t* in) {
#if BLKIT_LITTLE_ENDIAN
  // Byte i of `ones` is 0 or 1 (at bit 8i); the multiply moves bit 8i to bit 56 + i and the
  // shifted copies of other bytes never land in (or carry into) bits 56..63.
  const uint64_t ones = nonzero_high_bits(load_u64(in)) >> 7;
  return static_cast<uint8_t>((ones * 0x0102040810204080ULL) >> 56);
#else
  uint8_t acc = 0;
  for (int k = 0; k < 8; ++k) acc |= static_cast<uint8_t>((in[k] != 0) << k);
  return acc;
#endif
}

// The first `count` (< 8) bytes -> 1 packed byte, higher bits 0.
inline uint8_t pack_partial(const uint8_t* in, int64_t count) {
  uint8_t acc = 0;
  for (int64_t k = 0; k < count; ++k) acc |= static_cast<uint8_t>((in[k] != 0) << k);
  return acc;
}

// 1 packed byte -> 8 bytes of 0 / 1.
inline void unpack8(uint8_t b, uint8_t* out) {
#if BLKIT_LITTLE_ENDIAN
  // Broadcast b to every byte, keep bit k in byte k, then turn each nonzero byte into 1.
  const uint64_t spread = (b * 0x0101010101010101ULL) & 0x8040201008040201ULL;
  store_u64(out, nonzero_high_bits(spread) >> 7);
#else
  for (int k = 0; k < 8; ++k) out[k] = static_cast<uint8_t>((b >> k) & 1u);
#endif
}

// Unpacks the tile's channels of a packed [rows, W] buffer into dst (tile order, 0 / 1 bytes).
// dst needs kTile + 8 bytes: whole bytes are unpacked, spilling at most 7 bytes past a row (rewritten
// by the next row, or into the slack after the last one).
inline void unpack_tile(const uint8_t* packed, int64_t width, const Tile& t, uint8_t* dst) {
  const int64_t nbytes = (t.ncols + 7) / 8;
  for (int64_t r = 0; r < t.nrows; ++r) {
    const uint8_t* src = packed + (t.row0 + r) * width + t.col0 / 8;
    uint8_t* d = dst + r * t.ncols;
    for (int64_t k = 0; k < nbytes; ++k) unpack8(src[k], d + 8 * k);
  }
}

// Packs the tile's bytes (tile order, nonzero = 1) into a packed [rows, W] buffer; padding bits 0.
inline void pack_tile(const uint8_t* src, const Tile& t, int64_t width, uint8_t* packed) {
  const int64_t full = t.ncols / 8;
  const int64_t rem = t.ncols % 8;
  for (int64_t r = 0; r < t.nrows; ++r) {
    const uint8_t* s = src + r * t.ncols;
    uint8_t* d = packed + (t.row0 + r) * width + t.col0 / 8;
    for (int64_t k = 0; k < full; ++k) d[k] = pack8(s + 8 * k);
    if (rem != 0) d[full] = pack_partial(s + 8 * full, rem);
  }
}

// ---------------------------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------------------------
int thread_count();  // threads for a parallel region (>= 1)

// Threads for the next parallel call: thread_count(), or 1 while the machine looks oversubscribed
// (a helper thread that should have been spinning started a region late, or was preempted in it:
// another process holds the core, and waiting for it costs a scheduler time slice, far more than these
// kernels take). Cleared again after a back-off (see dispatch.cpp).
int threads_for_call();
// Helper threads later than this kept the calling thread waiting for a scheduler slice.
constexpr int64_t kLateNs = 1000000;  // 1 ms
// Reports the team's timing in a region opened at `opened_ns` (steady clock): the latest helper start
// delay, and how long after the calling thread the promptly started helpers finished.
void note_team_timing(int64_t opened_ns, int64_t start_lag_ns, int64_t finish_lag_ns);
int64_t now_ns();

// body(i) for i in [0, count): over the OpenMP team when there is enough work (`elements` at least
// kParallelMin), in chunks handed out dynamically (a helper that starts late takes fewer), else on the
// calling thread. Results must not depend on which thread runs which i.
template <class Body>
inline void parallel_for(int64_t count, int64_t elements, Body&& body) {
  const int threads = (elements >= kParallelMin && count > 1) ? threads_for_call() : 1;
#if defined(_OPENMP)
  if (threads > 1) {
    // About 8 chunks per thread, but at most kChunkElements elements each: then a helper that started on
    // time finishes at most a chunk's time (a few hundred microseconds) after the caller, and the guard's
    // "finished late, so it was preempted" test (kLateNs) does not fire on large inputs, where 8 chunks per
    // thread of 16M elements would each take over a millisecond.
    const int64_t per_iteration = elements / count > 0 ? elements / count : 1;
    const int64_t max_chunk = kChunkElements / per_iteration > 0 ? kChunkElements / per_iteration : 1;
    int64_t chunk = count / (8 * static_cast<int64_t>(threads));
    chunk = chunk > max_chunk ? max_chunk : chunk;
    chunk = chunk < 1 ? 1 : chunk;
    const int64_t opened = now_ns();
    int64_t start_lag = 0;           // latest helper start after `opened`
    int64_t prompt_finish = opened;  // latest finish of a helper that started within kLateNs
    int64_t caller_finish = opened;
#pragma omp parallel num_threads(threads)
    {
      const bool helper = omp_get_thread_num() != 0;
      const int64_t started = now_ns() - opened;
#pragma omp for schedule(dynamic, chunk) nowait
      for (int64_t i = 0; i < count; ++i) body(i);
      const int64_t finished = now_ns();
#pragma omp critical(blkit_team_timing)
      {
        if (!helper) {
          caller_finish = finished;
        } else {
          start_lag = started > start_lag ? started : start_lag;
          if (started <= kLateNs && finished > prompt_finish) prompt_finish = finished;
        }
      }
    }
    note_team_timing(opened, start_lag, prompt_finish - caller_finish);
    return;
  }
#endif
  for (int64_t i = 0; i < count; ++i) body(i);
}

// ---------------------------------------------------------------------------------------------
// Per-ISA kernels (csrc/cpu/kernels_isa.inc compiled once per instruction set).
// ---------------------------------------------------------------------------------------------
struct KernelTable {
  const char* name;
  void (*uniform)(float*, int64_t, uint64_t, uint64_t);
  void (*bernoulli)(const void*, DType, uint8_t*, int64_t, int64_t, bool, uint64_t, uint64_t);
  void (*binary_quantize)(const void*, DType, void*, int64_t, bool, uint64_t, uint64_t);
  void (*q_sample)(const QSampleArgs&, uint8_t*, uint8_t*, int64_t*);
  void (*posterior)(const StepArgs&, float*);
  void (*sample_step)(const StepArgs&, uint8_t*);
  void (*diffusion_loss)(const LossArgs&, float*, float*);
  // out[j] = pack8(in + 8 j) / unpack8(in[j], out + 8 j) for j < nbytes
  void (*pack_bytes)(const uint8_t*, uint8_t*, int64_t);
  void (*unpack_bytes)(const uint8_t*, uint8_t*, int64_t);
};

namespace generic {
extern const KernelTable kKernels;
}
#if BLKIT_CPU_MULTI_ISA
namespace avx2 {
extern const KernelTable kKernels;
}
namespace avx512 {
extern const KernelTable kKernels;
}
#endif

// The table in use (chosen once; see blkit::cpu::set_isa).
const KernelTable& kernels();

}  // namespace detail
}  // namespace cpu
}  // namespace blkit
