// The tiled kernels compiled for AVX2 (used only where the CPU reports AVX2; see dispatch.cpp).

// Let the vectorizer if-convert selects between floating-point values (it may then evaluate both
// sides): FP exceptions are not trapped here, results are unchanged. No FMA contraction, so that every
// instruction set rounds alike. Set before any include so that every function of this file
// (step_math.h included) has the same FP options and can be inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "fp-contract=off")
#endif
#include "cpu_internal.h"

#if BLKIT_CPU_MULTI_ISA
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define BLKIT_ISA_LEVEL 2
#define BLKIT_ISA_NS avx2
#define BLKIT_ISA_NAME "avx2"
#include "kernels_isa.inc"
#pragma GCC pop_options
#endif
