// Choice of the per-ISA kernel table, thread count, and the public wrappers of the tiled kernels
// (argument checks, then the kernel of the chosen instruction set).
#include "cpu_internal.h"

#include <stdlib.h>

#include <atomic>
#include <chrono>

namespace blkit {
namespace cpu {
namespace detail {
namespace {

std::atomic<int> g_num_threads{0};

bool supports(const KernelTable& table) {
#if BLKIT_CPU_MULTI_ISA
  if (&table == &avx512::kKernels) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq");
  }
  if (&table == &avx2::kKernels) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return &table == &generic::kKernels;
}

// Tables from the widest down; the first one the CPU supports (and the cap allows) is used.
const KernelTable* const kTables[] = {
#if BLKIT_CPU_MULTI_ISA
    &avx512::kKernels,
    &avx2::kKernels,
#endif
    &generic::kKernels,
};

const KernelTable* best(const char* cap) {
  bool allowed = cap == nullptr || cap[0] == '\0' || strcmp(cap, "auto") == 0;
  for (const KernelTable* t : kTables) {
    if (!allowed && strcmp(t->name, cap) == 0) allowed = true;
    if (allowed && supports(*t)) return t;
  }
  return &generic::kKernels;
}

std::atomic<const KernelTable*>& active() {
  static std::atomic<const KernelTable*> table{best(getenv("BLKIT_CPU_ISA"))};
  return table;
}

}  // namespace

const KernelTable& kernels() { return *active().load(std::memory_order_relaxed); }

// Oversubscription guard (see threads_for_call in cpu_internal.h). After a parallel region the helper
// threads spin for a few milliseconds, so a region opened within kWarmNs of the previous one should find
// them running at once. A helper that starts such a region more than kLateNs late, or that starts on
// time but finishes more than kLateNs after the calling thread (with dynamic chunks it could not have
// had that much work left), was off its CPU: another process holds the core, and waiting for it costs a
// scheduler time slice, far more than these kernels take. Parallel calls then run on the calling thread
// for a back-off period (doubling while the condition persists, up to kMaxBackoffNs) and try the team
// again. A late start after a longer gap is no evidence (a sleeping helper takes a while to wake, on VMs
// up to a timer tick). On an idle machine nothing changes.
namespace {
constexpr int64_t kWarmNs = 2000000;           // 2 ms
constexpr int64_t kMinBackoffNs = 50000000;    // 50 ms
constexpr int64_t kMaxBackoffNs = 2000000000;  // 2 s
std::atomic<int64_t> g_serial_until_ns{0};
std::atomic<int64_t> g_backoff_ns{kMinBackoffNs};
std::atomic<int64_t> g_last_region_end_ns{0};
}  // namespace

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool guard_enabled() {
  static const bool enabled = [] {
    const char* v = getenv("BLKIT_CPU_GUARD");
    return v == nullptr || strcmp(v, "0") != 0;
  }();
  return enabled;
}

int threads_for_call() {
  const int n = thread_count();
  if (n > 1 && now_ns() < g_serial_until_ns.load(std::memory_order_relaxed)) return 1;
  return n;
}

void note_team_timing(int64_t opened_ns, int64_t start_lag_ns, int64_t finish_lag_ns) {
  const int64_t end = now_ns();
  const int64_t previous_end = g_last_region_end_ns.exchange(end, std::memory_order_relaxed);
  const bool warm = opened_ns - previous_end <= kWarmNs;
  if (guard_enabled() && (finish_lag_ns > kLateNs || (warm && start_lag_ns > kLateNs))) {
    const int64_t backoff = g_backoff_ns.load(std::memory_order_relaxed);
    g_serial_until_ns.store(end + backoff, std::memory_order_relaxed);
    g_backoff_ns.store(backoff * 2 < kMaxBackoffNs ? backoff * 2 : kMaxBackoffNs, std::memory_order_relaxed);
  } else if (warm) {
    g_backoff_ns.store(kMinBackoffNs, std::memory_order_relaxed);
  }
}

int thread_count() {
  const int n = g_num_threads.load(std::memory_order_relaxed);
#if defined(_OPENMP)
  return n > 0 ? n : omp_get_max_threads();
#else
  (void)n;
  return 1;
#endif
}

}  // namespace detail

const char* isa() { return detail::kernels().name; }

bool set_isa(const char* name) {
  using namespace detail;
  if (name == nullptr || strcmp(name, "auto") == 0) {
    active().store(best(nullptr));
    return true;
  }
  for (const KernelTable* t : kTables) {
    if (strcmp(t->name, name) == 0) {
      if (!supports(*t)) return false;
      active().store(t);
      return true;
    }
  }
  return false;
}

int set_num_threads(int num_threads) {
  return detail::g_num_threads.exchange(num_threads > 0 ? num_threads : 0);
}

// --- wrappers -------------------------------------------------------------------------------------
namespace {

using detail::check_nonnegative;

void check_floating(DType dtype, const char* what, const char* fn, bool allow_double) {
  if (dtype == kFloat32 || dtype == kFloat16 || dtype == kBFloat16 || (allow_double && dtype == kFloat64)) return;
  throw std::invalid_argument(std::string(fn) + ": " + what + " must be a floating dtype");
}

void check_dtype(DType dtype, const char* fn) { (void)dtype_size(dtype); (void)fn; }

// coef_rows must be 1 or batch; batch must be positive and divide the element count when there are elements.
void check_batch(int64_t total, int64_t batch, const float* coef, int64_t coef_rows, const char* fn) {
  check_nonnegative(batch, "batch", fn);
  if (total == 0) return;
  if (batch <= 0 || total % batch != 0) {
    throw std::invalid_argument(std::string(fn) + ": batch must be positive and divide the element count");
  }
  if (coef == nullptr || !(coef_rows == 1 || coef_rows == batch)) {
    throw std::invalid_argument(std::string(fn) + ": coef must have 1 or batch rows");
  }
}

}  // namespace

void uniform(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  check_nonnegative(n, "n", "uniform");
  if (n == 0) return;
  detail::kernels().uniform(out, n, seed, offset);
}

void bernoulli(const void* probs, DType dtype, uint8_t* out, int64_t rows, int64_t num_bits, bool packed,
               uint64_t seed, uint64_t offset) {
  check_nonnegative(rows, "rows", "bernoulli");
  check_nonnegative(num_bits, "num_bits", "bernoulli");
  check_floating(dtype, "probs", "bernoulli", true);
  if (rows == 0 || num_bits == 0) return;
  detail::kernels().bernoulli(probs, dtype, out, rows, num_bits, packed, seed, offset);
}

void binary_quantize(const void* probs, DType dtype, void* out, int64_t n, bool deterministic, uint64_t seed,
                     uint64_t offset) {
  check_nonnegative(n, "n", "binary_quantize");
  check_floating(dtype, "probs", "binary_quantize", true);
  if (n == 0) return;
  detail::kernels().binary_quantize(probs, dtype, out, n, deterministic, seed, offset);
}

void q_sample(const QSampleArgs& args, uint8_t* x_t, uint8_t* residual, int64_t* flips) {
  check_nonnegative(args.rows, "rows", "q_sample");
  check_nonnegative(args.num_bits, "num_bits", "q_sample");
  check_dtype(args.x0_dtype, "q_sample");
  check_batch(args.rows * args.num_bits, args.batch, args.coef, args.coef_rows, "q_sample");
  detail::kernels().q_sample(args, x_t, residual, flips);
}

namespace {
void check_step(const StepArgs& a, const char* fn) {
  check_nonnegative(a.rows, "rows", fn);
  check_nonnegative(a.num_bits, "num_bits", fn);
  check_floating(a.logits_dtype, "logits", fn, false);
  if (a.uncond_logits != nullptr) check_floating(a.uncond_dtype, "uncond_logits", fn, false);
  if (!a.packed) check_dtype(a.x_dtype, fn);
  if ((a.mask == nullptr) != (a.known == nullptr)) {
    throw std::invalid_argument(std::string(fn) + ": mask and known go together");
  }
  check_batch(a.rows * a.num_bits, a.batch, a.coef, a.coef_rows, fn);
}
}  // namespace

void posterior(const StepArgs& args, float* out) {
  check_step(args, "posterior");
  if (args.rows * args.num_bits == 0) return;
  detail::kernels().posterior(args, out);
}

void sample_step(const StepArgs& args, uint8_t* out) {
  check_step(args, "sample_step");
  if (args.rows * args.num_bits == 0) return;
  detail::kernels().sample_step(args, out);
}

void diffusion_loss(const LossArgs& args, float* loss, float* grad) {
  check_nonnegative(args.n, "n", "diffusion_loss");
  check_floating(args.logits_dtype, "logits", "diffusion_loss", false);
  check_dtype(args.x_dtype, "diffusion_loss");
  check_dtype(args.x0_dtype, "diffusion_loss");
  if (!(args.reduction == kMean || args.reduction == kSum || args.reduction == kNone)) {
    throw std::invalid_argument("diffusion_loss: unknown reduction");
  }
  check_batch(args.n, args.batch, args.coef, args.coef_rows, "diffusion_loss");
  detail::kernels().diffusion_loss(args, loss, grad);
}

}  // namespace cpu
}  // namespace blkit
