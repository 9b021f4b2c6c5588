/*
 * iter.c — the strided, broadcasting iterator behind elementwise kernels
 * (NumPy's ufunc loop design).
 *
 * A kernel supplies only an inner loop over n elements with per-operand byte
 * strides; the iterator broadcasts operands to the output shape (stride 0),
 * drops size-1 dimensions, merges dimensions that are contiguous for every
 * operand (so a contiguous tensor becomes one long inner loop), and splits
 * the work across OpenMP threads when it is large enough to pay for them.
 */
#include "internal.h"
#include <omp.h>

typedef struct iter_plan {
  int nops, ndim;
  int64_t shape[MG_MAX_DIMS];
  int64_t strides[MG_ITER_MAX][MG_MAX_DIMS];
  char *base[MG_ITER_MAX];
} iter_plan;

/* Runs outer positions [lo, hi) of the plan, each an inner loop of
 * shape[ndim-1] elements starting at inner offset `ilo` for `ilen` elements. */
static void run_range(const iter_plan *p, int64_t lo, int64_t hi, int64_t ilo, int64_t ilen,
                      mg_loop_fn fn, void *ud) {
  int nd = p->ndim, last = nd - 1;
  int64_t coord[MG_MAX_DIMS] = {0};
  int64_t rem = lo;
  for (int d = last - 1; d >= 0; d--) {
    coord[d] = rem % p->shape[d];
    rem /= p->shape[d];
  }
  char *ptr[MG_ITER_MAX];
  int64_t inner[MG_ITER_MAX];
  for (int k = 0; k < p->nops; k++) {
    int64_t off = ilo * p->strides[k][last];
    for (int d = 0; d < last; d++) off += coord[d] * p->strides[k][d];
    ptr[k] = p->base[k] + off;
    inner[k] = p->strides[k][last];
  }
  for (int64_t pos = lo; pos < hi; pos++) {
    fn(ptr, inner, ilen, ud);
    for (int d = last - 1; d >= 0; d--) {  /* odometer step */
      for (int k = 0; k < p->nops; k++) ptr[k] += p->strides[k][d];
      if (++coord[d] < p->shape[d]) break;
      for (int k = 0; k < p->nops; k++) ptr[k] -= p->strides[k][d] * p->shape[d];
      coord[d] = 0;
    }
  }
}

/* Drops size-1 dimensions and merges dimensions contiguous for all operands. */
static void simplify(iter_plan *p) {
  int nd = 0;
  for (int d = 0; d < p->ndim; d++) {
    if (p->shape[d] == 1) continue;
    if (nd > 0) {
      int merge = 1;
      for (int k = 0; k < p->nops; k++)
        if (p->strides[k][nd - 1] != p->strides[k][d] * p->shape[d]) merge = 0;
      if (merge) {
        p->shape[nd - 1] *= p->shape[d];
        for (int k = 0; k < p->nops; k++) p->strides[k][nd - 1] = p->strides[k][d];
        continue;
      }
    }
    p->shape[nd] = p->shape[d];
    for (int k = 0; k < p->nops; k++) p->strides[k][nd] = p->strides[k][d];
    nd++;
  }
  if (nd == 0) {  /* a single element */
    p->shape[0] = 1;
    for (int k = 0; k < p->nops; k++) p->strides[k][0] = 0;
    nd = 1;
  }
  p->ndim = nd;
}

/* Outer positions [lo, hi) (whole rows of `inner` elements), or, for one
 * long row, inner elements [ilo, ihi) of each outer position, in pieces of
 * about MG_POLL_CHUNK elements with a poll of the kernel's limits between
 * them (limits.c: a stopped kernel's caller reports the stop). */
static void run_polled(const iter_plan *p, int64_t lo, int64_t hi, int64_t inner, mg_loop_fn fn, void *ud,
                       mg_limits *lim) {
  if (!lim) {
    run_range(p, lo, hi, 0, inner, fn, ud);
    return;
  }
  int64_t rows = inner >= MG_POLL_CHUNK ? 1 : MG_POLL_CHUNK / inner;
  for (int64_t a = lo; a < hi && !mg_kernel_stop(lim); a += rows) {
    int64_t b = hi - a < rows ? hi : a + rows;
    if (inner < MG_POLL_CHUNK) {
      run_range(p, a, b, 0, inner, fn, ud);
      continue;
    }
    for (int64_t i = 0; i < inner && !mg_kernel_stop(lim); i += MG_POLL_CHUNK)
      run_range(p, a, b, i, inner - i < MG_POLL_CHUNK ? inner - i : MG_POLL_CHUNK, fn, ud);
  }
}

static void run_polled_inner(const iter_plan *p, int64_t outer, int64_t ilo, int64_t ihi, mg_loop_fn fn, void *ud,
                             mg_limits *lim) {
  int64_t step = lim ? MG_POLL_CHUNK : ihi - ilo;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = ilo; i < ihi && !mg_kernel_stop(lim); i += step)
      run_range(p, o, o + 1, i, ihi - i < step ? ihi - i : step, fn, ud);
}

void mg_iter_strided(int nops, char *const *base, int64_t strides[][MG_MAX_DIMS], int ndim,
                     const int64_t *shape, mg_loop_fn fn, void *ud, int parallel) {
  iter_plan p;
  p.nops = nops;
  p.ndim = ndim;
  int64_t total = 1;
  for (int d = 0; d < ndim; d++) {
    p.shape[d] = shape[d];
    total *= shape[d];
    for (int k = 0; k < nops; k++) p.strides[k][d] = strides[k][d];
  }
  if (total == 0) return;
  for (int k = 0; k < nops; k++) p.base[k] = base[k];
  simplify(&p);
  int64_t inner = p.shape[p.ndim - 1], outer = total / inner;
  int nt = parallel && total >= MG_PAR_MIN ? mg_threads() : 1;
  mg_limits *lim = total >= MG_POLL_CHUNK ? mg_tl_kernel : NULL;   /* read before the threads start */
  if (nt <= 1) {
    run_polled(&p, 0, outer, inner, fn, ud, lim);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num(), n = omp_get_num_threads();
    if (outer >= n) {
      int64_t lo = outer * t / n, hi = outer * (t + 1) / n;
      run_polled(&p, lo, hi, inner, fn, ud, lim);
    } else {  /* few long rows: split each row instead */
      int64_t ilo = inner * t / n, ihi = inner * (t + 1) / n;
      run_polled_inner(&p, outer, ilo, ihi, fn, ud, lim);
    }
  }
}

void mg_iter(int nops, const mg_tensor *const *ops, int ndim, const int64_t *shape,
             mg_loop_fn fn, void *ud) {
  int64_t strides[MG_ITER_MAX][MG_MAX_DIMS];
  char *base[MG_ITER_MAX];
  for (int k = 0; k < nops; k++) {
    const mg_tensor *t = ops[k];
    int64_t es = (int64_t)mg_dtype_size((mg_dtype)t->dtype);
    int lead = ndim - t->ndim;
    for (int d = 0; d < ndim; d++) {
      int od = d - lead;
      strides[k][d] = (od < 0 || t->shape[od] == 1) ? 0 : t->strides[od] * es;
    }
    base[k] = mg_ptr(t);
  }
  mg_iter_strided(nops, base, strides, ndim, shape, fn, ud, 1);
}
