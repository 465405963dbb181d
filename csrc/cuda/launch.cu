// Device queries for the launch helpers: the SM count of each device, cached after the first query.
#include <atomic>

#include "launch.cuh"

namespace blkit {
namespace cuda {
namespace detail {
namespace {

constexpr int kCachedDevices = 64;
std::atomic<int> g_sm_count[kCachedDevices];  // 0 = not queried yet (zero-initialized: static storage)

}  // namespace

int sm_count() {
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  if (device >= 0 && device < kCachedDevices) {
    const int cached = g_sm_count[device].load(std::memory_order_relaxed);
    if (cached > 0) return cached;
  }
  int count = 0;
  check_cuda(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device),
             "cudaDeviceGetAttribute(MultiProcessorCount)");
  if (count < 1) count = 1;
  if (device >= 0 && device < kCachedDevices) g_sm_count[device].store(count, std::memory_order_relaxed);
  return count;
}

int64_t grid_blocks(int64_t units) {
  int64_t blocks = (units + kThreads - 1) / kThreads;
  const int64_t cap = static_cast<int64_t>(sm_count()) * kBlocksPerSm * kWaves;
  if (blocks > cap) blocks = cap;
  if (blocks < 1) blocks = 1;
  return blocks;
}

}  // namespace detail
}  // namespace cuda
}  // namespace blkit
