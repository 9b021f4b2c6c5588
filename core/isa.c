/*
 * isa.c — which compiled copy of the CPU kernels runs: per-ISA kernels
 * chosen at run time, so the default build runs on any x86-64.
 *
 * The library is compiled for the baseline x86-64 (SSE2). On x86-64 the
 * Makefile compiles core/kernels/ twice more, for x86-64-v3 (AVX2, FMA) and
 * x86-64-v4 (AVX-512), and renames every function of those copies with a
 * suffix (scripts/isa_rename.sh: k_add -> k_add__avx2, k_add__avx512), so the
 * three copies live side by side and each calls only its own helpers. Here the
 * op table's kernels are matched with their copies through weak references
 * (a copy that was not built, or a kernel that lives outside core/kernels/,
 * reads as NULL and the baseline one stays), and mg_isa_select picks the best
 * copy the CPU and the OS support (cpuid, via __builtin_cpu_supports, which
 * also checks that the OS saves the wide registers). MG_ISA=baseline|avx2|
 * avx512 in the environment asks for a lower one (tests, benchmarks); one the
 * CPU lacks is refused and the best is used. Built with MARCH=-march=native
 * (no copies) the one set of kernels is the native build itself ("native").
 *
 * Everything x86-only sits behind the architecture guard: on other CPUs the
 * baseline kernels are the only ones.
 */
#include "internal.h"
#include "passes/passes.h"
#include <stdlib.h>
#include <string.h>

enum { ISA_BASE, ISA_AVX2, ISA_AVX512, ISA_N };
static const char *const isa_names[ISA_N] = {"baseline", "avx2", "avx512"};

#define MG_OP(id, name, nin, flags, attrs, infer, kernel, grad, doc)                                  \
  __attribute__((weak, visibility("hidden"))) mg_status kernel##__avx2(const mg_call *c, mg_tensor *out); \
  __attribute__((weak, visibility("hidden"))) mg_status kernel##__avx512(const mg_call *c, mg_tensor *out);
#include "ops.def"
#undef MG_OP

static const mg_kernel_fn copies[ISA_N][MG_OP_COUNT] = {
    {0},
    {
#define MG_OP(id, name, nin, flags, attrs, infer, kernel, grad, doc) kernel##__avx2,
#include "ops.def"
#undef MG_OP
    },
    {
#define MG_OP(id, name, nin, flags, attrs, infer, kernel, grad, doc) kernel##__avx512,
#include "ops.def"
#undef MG_OP
    },
};

__attribute__((weak, visibility("hidden"))) void mg_fused_exec__avx2(const mg_fused *p, mg_tensor *const *ins,
                                                                     mg_tensor *out, int64_t n);
__attribute__((weak, visibility("hidden"))) void mg_fused_exec__avx512(const mg_fused *p, mg_tensor *const *ins,
                                                                       mg_tensor *out, int64_t n);
static const mg_fused_exec_fn fused_copies[ISA_N] = {0, mg_fused_exec__avx2, mg_fused_exec__avx512};

static int isa_active = ISA_BASE;

mg_fused_exec_fn mg_isa_fused_exec(void) { return fused_copies[isa_active]; }

/* Whether copy `isa` was built (its first kernel resolved). */
static int isa_built(int isa) {
  if (isa == ISA_BASE) return 1;
  for (int op = 0; op < MG_OP_COUNT; op++)
    if (copies[isa][op]) return 1;
  return 0;
}

static int isa_cpu_has(int isa) {
#if defined(__x86_64__)
  /* Feature by feature rather than the "x86-64-v3"/"x86-64-v4" level names:
   * older compilers (clang 14, used by `make fuzz`) do not know those names.
   * Every CPU with AVX2, FMA and BMI2 also has the rest of level 3 (F16C,
   * LZCNT, MOVBE); the runtimes report AVX features only when the OS saves
   * the wide registers (XCR0), as the level names do. */
  __builtin_cpu_init();
  int v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") &&
           __builtin_cpu_supports("bmi2");
  if (isa == ISA_AVX2) return v3;
  if (isa == ISA_AVX512)
    return v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl");
#endif
  return isa == ISA_BASE;
}

void mg_isa_select(void) {
  int best = ISA_BASE;
  for (int i = ISA_N - 1; i > ISA_BASE; i--)
    if (isa_built(i) && isa_cpu_has(i)) {
      best = i;
      break;
    }
  const char *want = getenv("MG_ISA");
  for (int i = 0; want && i <= best; i++)
    if (strcmp(want, isa_names[i]) == 0) best = i;
  isa_active = best;
}

mg_kernel_fn mg_isa_kernel(mg_op op, mg_kernel_fn base) {
  mg_kernel_fn k = copies[isa_active][op];
  return k ? k : base;
}

/* A build without copies (MARCH=-march=native, or another architecture)
 * runs its one set of kernels: "native" when they were compiled beyond the
 * baseline, so a benchmark can tell the builds apart. */
const char *mg_isa_name(void) {
#if defined(__AVX2__)
  if (isa_active == ISA_BASE && !isa_built(ISA_AVX2) && !isa_built(ISA_AVX512)) return "native";
#endif
  return isa_names[isa_active];
}

/* "baseline avx2" ...: the copies this library holds that this CPU can run. */
void mg_isa_available(char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = 0;
  for (int i = 0; i < ISA_N; i++)
    if (isa_built(i) && isa_cpu_has(i) && n + strlen(isa_names[i]) + 2 < cap) {
      if (n) buf[n++] = ',';
      strcpy(buf + n, isa_names[i]);
      n += strlen(isa_names[i]);
    }
}
