/*
 * fused.c — runs fused elementwise nodes (made by fuse.c): a small program
 * of unary/binary float ops evaluated over the elements a block at a time.
 *
 * For each block of FUSED_BLOCK elements the instructions run in order,
 * each as one tight loop over the block (vectorised like the kernels' own
 * loops) from its operands into a scratch register, the last one straight
 * into the output; so the intermediates live in a few KB of L1-resident
 * scratch instead of full-size tensors, and the data is read and written
 * once. Every op uses the element formula of its kernel (elementwise.c,
 * ew_binary.c and ew.h's inline exp/log/tanh), so fused and unfused
 * results agree bit for bit. Broadcast one-element inputs are converted to
 * the chain's dtype as the cast before the op would (cast loops: (T)x,
 * bool as 0/1) and spread over a register once per thread. Big outputs
 * split into contiguous block ranges across the threads (MG_PAR_MIN).
 *
 * Unfused runs, through mg_apply op by op: when a tape may record (it must
 * see every op to differentiate), and when an input is not as traced (not
 * contiguous, another layout), which is always correct, only slower. The
 * output buffer is kept and reused when nobody holds it at the next run,
 * as the executor does for op nodes.
 */
#include "passes.h"
#include "kernels/ew.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define FUSED_BLOCK 256

int mg_fused_op_ok(mg_op op) {
  switch (op) {
  case MG_OP_ADD: case MG_OP_SUB: case MG_OP_MUL: case MG_OP_DIV: case MG_OP_MAXIMUM: case MG_OP_MINIMUM:
  case MG_OP_NEG: case MG_OP_ABS: case MG_OP_EXP: case MG_OP_LOG: case MG_OP_SQRT: case MG_OP_SQUARE:
  case MG_OP_TANH: case MG_OP_SIGMOID: case MG_OP_RELU:
    return 1;
  default: return 0;
  }
}

void mg_fused_free(void *ud) {
  mg_fused *p = ud;
  if (!p) return;
  mg_tensor_release(p->keep);
  free(p->full);
  free(p->scalar_reg);
  free(p);
}

int mg_fused_describe(const mg_gnode *n, char *buf, size_t cap) {
  const mg_fused *p = n->ud;
  char text[MG_FUSED_MAX_INSTR * 24 + 16];  /* op names are short */
  size_t len = 0;
  len += (size_t)snprintf(text, sizeof text, "fused(");
  for (int t = 0; t < p->ninstr && len < sizeof text; t++)
    len += (size_t)snprintf(text + len, sizeof text - len, t ? ",%s" : "%s", mg_op_info(p->code[t].op)->name);
  if (len < sizeof text) len += (size_t)snprintf(text + len, sizeof text - len, ")");
  if (len >= sizeof text) len = sizeof text - 1;
  if (cap) snprintf(buf, cap, "%s", text);
  return (int)len;
}

/* ---- the interpreter ------------------------------------------------------------- */

/* sigmoid as elementwise.c computes it: from e = e^-|x|, branch-free. */
static inline float fused_sigmoidf(float x) {
  float e = ew_expf(-fabsf(x)), r = 1.0f / (1.0f + e);
  return x >= 0.0f ? r : e * r;
}
static inline double fused_sigmoid(double x) {
  double e = exp(-fabs(x)), r = 1.0 / (1.0 + e);
  return x >= 0.0 ? r : e * r;
}

#define FUSED_UNARY(T, EXPR)                                                                       \
  EW_SIMD for (int i = 0; i < m; i++) {                                                            \
    const T x = a[i];                                                                              \
    d[i] = (EXPR);                                                                                 \
  }                                                                                                \
  break
#define FUSED_BINARY(T, EXPR)                                                                      \
  EW_SIMD for (int i = 0; i < m; i++) {                                                            \
    const T x = a[i], y = b[i];                                                                    \
    d[i] = (EXPR);                                                                                 \
  }                                                                                                \
  break

/* One interpreter per dtype: the element formulas are the kernels'. */
#define FUSED_DEFINE(sfx, T, EXP, LOG, TANH, SIGMOID, SQRT, ABS)                                   \
  static T fused_load_##sfx(const mg_tensor *t) {                                                  \
    const char *q = mg_ptr(t);                                                                     \
    switch ((mg_dtype)t->dtype) {                                                                  \
    case MG_FLOAT32: return (T)(*(const float *)q);                                                \
    case MG_FLOAT64: return (T)(*(const double *)q);                                               \
    case MG_INT32: return (T)(*(const int32_t *)q);                                                \
    case MG_INT64: return (T)(*(const int64_t *)q);                                                \
    case MG_UINT8: return (T)(*(const uint8_t *)q);                                                \
    default: return (T)(*(const uint8_t *)q != 0);                                                 \
    }                                                                                              \
  }                                                                                                \
  static const T *fused_src_##sfx(const mg_fused *p, T (*regs)[FUSED_BLOCK], T *const *full,       \
                                  int code, int64_t off) {                                         \
    if (code >= 0) return regs[p->code[code].reg];                                                 \
    int k = -1 - code;                                                                             \
    return p->scalar_reg[k] >= 0 ? regs[p->scalar_reg[k]] : full[k] + off;                         \
  }                                                                                                \
  static void fused_block_##sfx(const mg_fused *p, T (*regs)[FUSED_BLOCK], T *const *full, T *out, \
                                int64_t off, int m) {                                              \
    for (int t = 0; t < p->ninstr; t++) {                                                          \
      const mg_fused_instr *I = &p->code[t];                                                       \
      T *restrict d = I->reg < 0 ? out + off : regs[I->reg];                                       \
      const T *restrict a = fused_src_##sfx(p, regs, full, I->a, off);                             \
      const T *restrict b = fused_src_##sfx(p, regs, full, I->b, off);                             \
      switch (I->op) {                                                                             \
      case MG_OP_ADD: FUSED_BINARY(T, x + y);                                                      \
      case MG_OP_SUB: FUSED_BINARY(T, x - y);                                                      \
      case MG_OP_MUL: FUSED_BINARY(T, x * y);                                                      \
      case MG_OP_DIV: FUSED_BINARY(T, x / y);                                                      \
      case MG_OP_MAXIMUM: FUSED_BINARY(T, (x > y || x != x) ? x : y);                              \
      case MG_OP_MINIMUM: FUSED_BINARY(T, (x < y || x != x) ? x : y);                              \
      case MG_OP_NEG: FUSED_UNARY(T, -x);                                                          \
      case MG_OP_ABS: FUSED_UNARY(T, ABS(x));                                                      \
      case MG_OP_EXP: FUSED_UNARY(T, EXP(x));                                                      \
      case MG_OP_LOG: FUSED_UNARY(T, LOG(x));                                                      \
      case MG_OP_SQRT: FUSED_UNARY(T, SQRT(x));                                                    \
      case MG_OP_SQUARE: FUSED_UNARY(T, x * x);                                                    \
      case MG_OP_TANH: FUSED_UNARY(T, TANH(x));                                                    \
      case MG_OP_SIGMOID: FUSED_UNARY(T, SIGMOID(x));                                              \
      case MG_OP_RELU: FUSED_UNARY(T, x < (T)0 ? (T)0 : x);                                        \
      default: break; /* fuse.c only emits the ops above */                                        \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
  static void fused_range_##sfx(const mg_fused *p, mg_tensor *const *ins, T *out, int64_t lo,      \
                                int64_t hi) {                                                      \
    _Alignas(64) T regs[MG_FUSED_MAX_REGS][FUSED_BLOCK];                                           \
    T *full[2 * MG_FUSED_MAX_INSTR];                                                               \
    int fill = hi - lo < FUSED_BLOCK ? (int)(hi - lo) : FUSED_BLOCK; /* a tiny output: few copies */ \
    for (int k = 0; k < p->nin; k++) {                                                             \
      full[k] = p->scalar_reg[k] >= 0 ? NULL : (T *)mg_ptr(ins[k]);                                \
      if (p->scalar_reg[k] < 0) continue;                                                          \
      T v = fused_load_##sfx(ins[k]);                                                              \
      for (int i = 0; i < fill; i++) regs[p->scalar_reg[k]][i] = v;                                \
    }                                                                                              \
    for (int64_t off = lo; off < hi; off += FUSED_BLOCK)                                           \
      fused_block_##sfx(p, regs, full, out, off, (int)(hi - off < FUSED_BLOCK ? hi - off : FUSED_BLOCK)); \
  }

FUSED_DEFINE(f32, float, ew_expf, ew_logf, ew_tanhf, fused_sigmoidf, sqrtf, fabsf)
FUSED_DEFINE(f64, double, exp, log, tanh, fused_sigmoid, sqrt, fabs)

static void fused_range(const mg_fused *p, mg_tensor *const *ins, mg_tensor *out, int64_t lo, int64_t hi) {
  if (p->dtype == MG_FLOAT32) fused_range_f32(p, ins, (float *)mg_ptr(out), lo, hi);
  else fused_range_f64(p, ins, (double *)mg_ptr(out), lo, hi);
}

/* Elements [lo, hi) in pieces of MG_POLL_CHUNK, polling the kernel limits
 * between them (limits.c). */
static void fused_polled(const mg_fused *p, mg_tensor *const *ins, mg_tensor *out, int64_t lo, int64_t hi,
                         mg_limits *lim) {
  int64_t step = lim ? MG_POLL_CHUNK : hi - lo;
  for (int64_t a = lo; a < hi && !mg_kernel_stop(lim); a += step)
    fused_range(p, ins, out, a, hi - a < step ? hi : a + step);
}

/* Contiguous block ranges, one per thread, for big outputs. Compiled once
 * per ISA with the kernels (core/isa.c), so fused and unfused nodes run the
 * same instructions and agree bit for bit. */
void mg_fused_exec(const mg_fused *p, mg_tensor *const *ins, mg_tensor *out, int64_t n) {
  int nt = n >= MG_PAR_MIN ? mg_threads() : 1;
  mg_limits *lim = mg_tl_kernel;
  if (nt <= 1) {
    fused_polled(p, ins, out, 0, n, lim);
    return;
  }
  int64_t nblocks = (n + FUSED_BLOCK - 1) / FUSED_BLOCK;
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num(), k = omp_get_num_threads();
    int64_t lo = nblocks * t / k * FUSED_BLOCK, hi = nblocks * (t + 1) / k * FUSED_BLOCK;
    if (hi > n) hi = n;
    if (lo < hi) fused_polled(p, ins, out, lo, hi, lim);
  }
}

/* The copy of mg_fused_exec for the ISA the kernels run with (core/isa.c). */
static void fused_exec(const mg_fused *p, mg_tensor *const *ins, mg_tensor *out, int64_t n) {
#ifndef MG_ISA_COPY
  mg_fused_exec_fn f = mg_isa_fused_exec();
  if (f) {
    f(p, ins, out, n);
    return;
  }
#endif
  mg_fused_exec(p, ins, out, n);
}

/* ---- running a node ------------------------------------------------------------------- */

/* The full-size input the output takes its shape from, if every input is
 * laid out as the program expects; else NULL. */
static const mg_tensor *fused_check(const mg_fused *p, mg_tensor *const *ins) {
  const mg_tensor *ref = NULL;
  for (int k = 0; k < p->nin; k++) {
    const mg_tensor *t = ins[k];
    if (!t->storage) return NULL;
    if (!p->full[k]) {
      if (mg_tensor_numel(t) != 1) return NULL;
      continue;
    }
    if (t->dtype != p->dtype || !mg_tensor_is_contiguous(t)) return NULL;
    if (!ref) ref = t;
    else if (t->ndim != ref->ndim || (t->ndim && memcmp(t->shape, ref->shape, (size_t)t->ndim * sizeof(int64_t))))
      return NULL;
  }
  return ref;
}

static mg_status fused_output(mg_fused *p, const mg_tensor *ref, mg_tensor **out) {
  mg_tensor *r = p->keep;
  if (r && atomic_load(&r->refs) == 1 && r->storage && atomic_load(&r->storage->refs) == 1 &&
      r->ndim == ref->ndim && (!r->ndim || !memcmp(r->shape, ref->shape, (size_t)r->ndim * sizeof(int64_t)))) {
    mg_tensor_retain(r);  /* nobody holds last run's buffer: write into it */
    *out = r;
    return MG_OK;
  }
  r = mg_tensor_header(p->dtype, ref->ndim, ref->shape);
  if (!r) return mg_seterror(MG_ENOMEM, "fused: out of memory");
  mg_status st = mg_tensor_alloc_storage(r);
  if (st) {
    mg_tensor_release(r);
    return st;
  }
  mg_tensor_release(p->keep);
  p->keep = r;
  mg_tensor_retain(r);
  *out = r;
  return MG_OK;
}

int mg_fused_run_into(const mg_gnode *n, mg_tensor *const *ins, mg_tensor *out) {
  const mg_fused *p = n->ud;
  const mg_tensor *ref = fused_check(p, ins);
  if (!ref || ref->ndim != out->ndim || (out->ndim && memcmp(ref->shape, out->shape, (size_t)out->ndim * sizeof(int64_t))))
    return -1;
  int64_t numel = mg_tensor_numel(out);
  if (numel > 0) fused_exec(p, ins, out, numel);
  return 0;
}

/* Op by op through mg_apply: what a tape must see. */
static mg_status fused_unfused(mg_ctx *ctx, const mg_fused *p, mg_tensor *const *ins, mg_tensor **out) {
  mg_tensor *val[MG_FUSED_MAX_INSTR] = {0};
  mg_status st = MG_OK;
  for (int t = 0; t < p->ninstr && !st; t++) {
    const mg_fused_instr *I = &p->code[t];
    mg_tensor *ops[2] = {I->a >= 0 ? val[I->a] : ins[-1 - I->a], I->b >= 0 ? val[I->b] : ins[-1 - I->b]};
    st = mg_apply(ctx, I->op, ops, mg_op_info(I->op)->nin, NULL, &val[t]);
  }
  if (!st) {
    *out = val[p->ninstr - 1];
    val[p->ninstr - 1] = NULL;
  }
  for (int t = 0; t < p->ninstr; t++) mg_tensor_release(val[t]);
  return st;
}

mg_status mg_fused_run(mg_ctx *ctx, const mg_gnode *n, mg_tensor *const *ins, mg_tensor **out) {
  mg_fused *p = n->ud;
  const mg_tensor *ref = ctx && ctx->ntapes ? NULL : fused_check(p, ins);
  if (!ref) return fused_unfused(ctx, p, ins, out);
  mg_status st = fused_output(p, ref, out);
  if (st) return st;
  int64_t numel = mg_tensor_numel(*out);
  mg_limits *outer = mg_kernel_begin();
  if (numel > 0) fused_exec(p, ins, *out, numel);
  if ((st = mg_kernel_end(outer, MG_OK))) {   /* stopped halfway: no partial result */
    mg_tensor_release(*out);
    *out = NULL;
  }
  return st;
}
