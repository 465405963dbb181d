// The tiled kernels compiled for AVX-512 F/VL/BW/DQ (used only where the CPU reports all four; see
// dispatch.cpp).

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
// GCC 12 warns inside its own avx512fintrin.h (_mm512_set1_epi64 uses an undefined vector on purpose).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx2,fma,avx512f,avx512vl,avx512bw,avx512dq")
#define BLKIT_ISA_LEVEL 3
#define BLKIT_ISA_NS avx512
#define BLKIT_ISA_NAME "avx512"
#include "kernels_isa.inc"
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
