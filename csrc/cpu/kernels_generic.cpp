// The tiled kernels for the baseline instruction set (SSE2 on x86-64, portable C++ elsewhere).

// Let the vectorizer if-convert selects between floating-point values (it may then evaluate both
// sides): FP exceptions are not trapped here, results are unchanged. No FMA contraction, so that every
// instruction set rounds alike. Set before any include so that every function of this file
// (step_math.h included) has the same FP options and can be inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "fp-contract=off")
#endif
#include "cpu_internal.h"

#if BLKIT_CPU_X86 && defined(__SSE2__)
#define BLKIT_ISA_LEVEL 1
#else
#define BLKIT_ISA_LEVEL 0
#endif
#define BLKIT_ISA_NS generic
#define BLKIT_ISA_NAME "generic"
#include "kernels_isa.inc"
