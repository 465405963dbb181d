// Emulated cuda_fp16.h: the two conversions blkit's kernels use (exact).
#pragma once
#include "blkit/step_math.h"

struct __half {
  unsigned short x;
};
inline __half __ushort_as_half(unsigned short v) { return __half{v}; }
inline float __half2float(__half h) { return blkit::math::half_to_float(h.x); }
