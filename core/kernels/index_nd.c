/*
 * index_nd.c — kernels of the N-d indexing ops: gather_nd, the five
 * tensor_scatter_nd ops (update, add, sub, max, min), the segment reductions
 * (segment_* with sorted ids, unsorted_segment_*) and argwhere.
 *
 * An index tensor of gather_nd/scatter has shape (..., K): each of its rows
 * names the first K coordinates of a slice of `inner` elements (the product
 * of the remaining axes). Every row is checked against the shape before any
 * element moves, so an index out of range is an MG_EINDEX error naming the
 * op, the row's position, its value and the shape — never a write elsewhere.
 *
 * Parallelism keeps results independent of the thread count: gather_nd splits
 * its output rows; scatters and segment reductions split the columns of the
 * slice (each thread walks every index row in order over its own columns, so
 * repeated indices combine in index order); argwhere counts per chunk, takes
 * the prefix sums and writes each chunk's coordinates at its offset.
 */
#include "internal.h"
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define NAME(c) ((c)->info->name)

static int64_t nd_base(const mg_call *c) { return c->ctx ? c->ctx->index_base : 0; }

/* Row r of the (M, K) index v as a multi-index of idx's leading axes, and the
 * row's values, into the two strings (both 1-based in Lua). */
static void nd_row_text(const mg_tensor *idx, const int64_t *v, int64_t r, int64_t K, int64_t base, char *pos,
                        size_t pcap, char *val, size_t vcap) {
  int64_t p[MG_MAX_DIMS] = {0}, rem = r;
  int lead = idx->ndim - 1;
  for (int d = lead - 1; d >= 0; d--) {
    p[d] = rem % idx->shape[d] + base;
    rem /= idx->shape[d];
  }
  mg_shape_str(lead, p, pos, pcap);
  int64_t w[MG_MAX_DIMS] = {0};
  for (int64_t j = 0; j < K && j < MG_MAX_DIMS; j++) w[j] = v[r * K + j];
  mg_shape_str((int)K, w, val, vcap);
}

/* Offsets (in elements of a contiguous tensor of `shape`) of the slices the
 * M rows of v name; an MG_EINDEX error for the first row out of range. */
static mg_status nd_offsets(const mg_call *c, const char *what, const mg_tensor *idx, const int64_t *v, int64_t M,
                            int K, int ndim, const int64_t *shape, int64_t *off) {
  int64_t stride[MG_MAX_DIMS], base = nd_base(c), s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    stride[d] = s;
    s *= shape[d];
  }
  for (int64_t r = 0; r < M; r++) {
    int64_t o = 0;
    for (int j = 0; j < K; j++) {
      int64_t i = v[r * K + j] - base;
      if (i < 0 || i >= shape[j]) {
        char pos[MG_SHAPE_BUF], val[MG_SHAPE_BUF], sh[MG_SHAPE_BUF];
        nd_row_text(idx, v, r, K, base, pos, sizeof pos, val, sizeof val);
        mg_shape_str(ndim, shape, sh, sizeof sh);
        return mg_seterror(MG_EINDEX,
                           "%s: index %s at position %s of indices is out of range for %s of shape %s (axis %d has "
                           "size %lld: valid %lld..%lld)%s",
                           NAME(c), val, pos, what, sh, j + (int)base, (long long)shape[j], (long long)base,
                           (long long)(shape[j] - 1 + base),
                           base == 1 && v[r * K + j] == 0 ? "; indices count from 1" : "");
      }
      o += i * stride[j];
    }
    off[r] = o;
  }
  return MG_OK;
}

static int64_t nd_inner(const int64_t *shape, int from, int ndim) {
  int64_t n = 1;
  for (int d = from; d < ndim; d++) n *= shape[d];
  return n;
}

/* ---- gather_nd ----------------------------------------------------------------------- */

mg_status k_gather_nd(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0], *idx = c->in[1];
  int K = (int)idx->shape[idx->ndim - 1];
  int64_t M = nd_inner(idx->shape, 0, idx->ndim - 1);
  int64_t inner = nd_inner(x->shape, K, x->ndim), *off = NULL;
  const char *xp, *ip;
  mg_tensor *xo = NULL, *io = NULL;
  mg_status st = mg_contiguous_input(NAME(c), x, &xp, &xo);
  if (!st) st = mg_contiguous_input(NAME(c), idx, &ip, &io);
  if (!st) st = mg_work_alloc((size_t)(M ? M : 1) * sizeof *off, NAME(c), (void **)&off);
  if (!st) st = nd_offsets(c, "x", idx, (const int64_t *)ip, M, K, x->ndim, x->shape, off);
  if (!st && inner > 0) {
    size_t es = mg_dtype_size((mg_dtype)x->dtype), row = (size_t)inner * es;
    char *o = mg_ptr(out);
    int nt = M * inner >= MG_PAR_MIN ? mg_threads() : 1;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t r = 0; r < M; r++) memcpy(o + (size_t)r * row, xp + (size_t)off[r] * es, row);
  }
  mg_work_free(off);
  mg_tensor_release(xo);
  mg_tensor_release(io);
  return st;
}

/* ---- tensor_scatter_nd_* -------------------------------------------------------------- */

enum { SC_UPDATE, SC_ADD, SC_SUB, SC_MAX, SC_MIN };

/* Combining rules: integers wrap (no UB), max/min propagate NaN (NumPy's maximum). */
#define WRAP_ADD(T, U, a, b) ((T)((U)(a) + (U)(b)))
#define WRAP_SUB(T, U, a, b) ((T)((U)(a) - (U)(b)))
#define FMAX_NAN(a, b) ((a) != (a) || (a) > (b) ? (a) : (b))
#define FMIN_NAN(a, b) ((a) != (a) || (a) < (b) ? (a) : (b))
#define IMAX(a, b) ((a) > (b) ? (a) : (b))
#define IMIN(a, b) ((a) < (b) ? (a) : (b))

#define SCATTER_LOOP(T, EXPR)                                                       \
  for (int64_t r = 0; r < M; r++) {                                                 \
    T *o_ = (T *)o + off[r];                                                        \
    const T *u_ = (const T *)u + r * inner;                                         \
    for (int64_t q = q0; q < q1; q++) {                                             \
      T a = o_[q], b = u_[q];                                                       \
      (void)a;                                                                      \
      o_[q] = (EXPR);                                                               \
    }                                                                               \
  }

#define SCATTER_FLOAT(T)                                            \
  switch (mode) {                                                   \
  case SC_UPDATE: SCATTER_LOOP(T, b) break;                         \
  case SC_ADD: SCATTER_LOOP(T, a + b) break;                        \
  case SC_SUB: SCATTER_LOOP(T, a - b) break;                        \
  case SC_MAX: SCATTER_LOOP(T, FMAX_NAN(b, a)) break;               \
  default: SCATTER_LOOP(T, FMIN_NAN(b, a)) break;                   \
  }
#define SCATTER_INT(T, U)                                           \
  switch (mode) {                                                   \
  case SC_UPDATE: SCATTER_LOOP(T, b) break;                         \
  case SC_ADD: SCATTER_LOOP(T, WRAP_ADD(T, U, a, b)) break;         \
  case SC_SUB: SCATTER_LOOP(T, WRAP_SUB(T, U, a, b)) break;         \
  case SC_MAX: SCATTER_LOOP(T, IMAX(a, b)) break;                   \
  default: SCATTER_LOOP(T, IMIN(a, b)) break;                       \
  }

static void scatter_cols(int mode, mg_dtype dt, char *o, const char *u, const int64_t *off, int64_t M, int64_t inner,
                         int64_t q0, int64_t q1) {
  switch (dt) {
  case MG_FLOAT32: SCATTER_FLOAT(float) break;
  case MG_FLOAT64: SCATTER_FLOAT(double) break;
  case MG_INT32: SCATTER_INT(int32_t, uint32_t) break;
  case MG_INT64: SCATTER_INT(int64_t, uint64_t) break;
  case MG_UINT8: SCATTER_INT(uint8_t, unsigned) break;
  default:  /* bool: update copies, add/max are or, min is and (infer refuses sub) */
    switch (mode) {
    case SC_UPDATE: SCATTER_LOOP(uint8_t, b) break;
    case SC_MIN: SCATTER_LOOP(uint8_t, (uint8_t)(a & b)) break;
    default: SCATTER_LOOP(uint8_t, (uint8_t)(a | b)) break;
    }
    break;
  }
}

static mg_status tensor_scatter(const mg_call *c, mg_tensor *out, int mode) {
  const mg_tensor *x = c->in[0], *idx = c->in[1], *upd = c->in[2];
  int K = (int)idx->shape[idx->ndim - 1];
  int64_t M = nd_inner(idx->shape, 0, idx->ndim - 1), inner = nd_inner(x->shape, K, x->ndim), *off = NULL;
  const char *ip, *up;
  mg_tensor *io = NULL, *uo = NULL;
  mg_status st = mg_copy_into(out, x);
  if (!st) st = mg_contiguous_input(NAME(c), idx, &ip, &io);
  if (!st) st = mg_contiguous_input(NAME(c), upd, &up, &uo);
  if (!st) st = mg_work_alloc((size_t)(M ? M : 1) * sizeof *off, NAME(c), (void **)&off);
  if (!st) st = nd_offsets(c, "tensor", idx, (const int64_t *)ip, M, K, x->ndim, x->shape, off);
  if (!st && inner > 0 && M > 0) {
    int nt = M * inner >= MG_PAR_MIN ? mg_threads() : 1;
    int64_t chunks = nt > 1 && inner >= 64 ? nt : 1;  /* columns split: repeated rows stay in order */
    char *o = mg_ptr(out);
    mg_dtype dt = (mg_dtype)out->dtype;
#pragma omp parallel for num_threads(nt) schedule(static) if (chunks > 1)
    for (int64_t k = 0; k < chunks; k++)
      scatter_cols(mode, dt, o, up, off, M, inner, inner * k / chunks, inner * (k + 1) / chunks);
  }
  mg_work_free(off);
  mg_tensor_release(io);
  mg_tensor_release(uo);
  return st;
}

mg_status k_tensor_scatter_nd_update(const mg_call *c, mg_tensor *out) { return tensor_scatter(c, out, SC_UPDATE); }
mg_status k_tensor_scatter_nd_add(const mg_call *c, mg_tensor *out) { return tensor_scatter(c, out, SC_ADD); }
mg_status k_tensor_scatter_nd_sub(const mg_call *c, mg_tensor *out) { return tensor_scatter(c, out, SC_SUB); }
mg_status k_tensor_scatter_nd_max(const mg_call *c, mg_tensor *out) { return tensor_scatter(c, out, SC_MAX); }
mg_status k_tensor_scatter_nd_min(const mg_call *c, mg_tensor *out) { return tensor_scatter(c, out, SC_MIN); }

/* ---- segment reductions --------------------------------------------------------------- */

enum { SEG_SUM, SEG_PROD, SEG_MAX, SEG_MIN };

#define SEG_LOOP(T, EXPR)                                                           \
  for (int64_t r = 0; r < N; r++) {                                                 \
    T *o_ = (T *)o + (ids[r] - base) * inner;                                       \
    const T *d_ = (const T *)d + r * inner;                                         \
    for (int64_t q = q0; q < q1; q++) {                                             \
      T a = o_[q], b = d_[q];                                                       \
      o_[q] = (EXPR);                                                               \
    }                                                                               \
  }
#define SEG_FLOAT(T)                                                \
  switch (mode) {                                                   \
  case SEG_SUM: SEG_LOOP(T, a + b) break;                           \
  case SEG_PROD: SEG_LOOP(T, a * b) break;                          \
  case SEG_MAX: SEG_LOOP(T, FMAX_NAN(b, a)) break;                  \
  default: SEG_LOOP(T, FMIN_NAN(b, a)) break;                       \
  }
#define SEG_INT(T, U)                                               \
  switch (mode) {                                                   \
  case SEG_SUM: SEG_LOOP(T, WRAP_ADD(T, U, a, b)) break;            \
  case SEG_PROD: SEG_LOOP(T, (T)((U)a * (U)b)) break;               \
  case SEG_MAX: SEG_LOOP(T, IMAX(a, b)) break;                      \
  default: SEG_LOOP(T, IMIN(a, b)) break;                           \
  }

static void seg_cols(int mode, mg_dtype dt, char *o, const char *d, const int64_t *ids, int64_t base, int64_t N,
                     int64_t inner, int64_t q0, int64_t q1) {
  switch (dt) {
  case MG_FLOAT32: SEG_FLOAT(float) break;
  case MG_FLOAT64: SEG_FLOAT(double) break;
  case MG_INT32: SEG_INT(int32_t, uint32_t) break;
  case MG_INT64: SEG_INT(int64_t, uint64_t) break;
  default: SEG_INT(uint8_t, unsigned) break;  /* uint8 (infer refuses bool) */
  }
}

/* Identity of the reduction (the start value of every output element), and
 * what an empty segment ends as: 0 for the sorted ops' max/min (TF), the
 * dtype's lowest/highest value for the unsorted ones (TF). */
static double seg_identity(int mode, mg_dtype dt) {
  int fl = mg_dtype_is_float(dt);
  switch (mode) {
  case SEG_SUM: return 0;
  case SEG_PROD: return 1;
  case SEG_MAX: return fl ? -INFINITY : dt == MG_INT32 ? (double)INT32_MIN : dt == MG_INT64 ? (double)INT64_MIN : 0;
  default: return fl ? INFINITY : dt == MG_INT32 ? (double)INT32_MAX : dt == MG_INT64 ? (double)INT64_MAX : 255;
  }
}

static void seg_store(mg_dtype dt, char *o, int64_t i, double v) {
  switch (dt) {
  case MG_FLOAT32: ((float *)o)[i] = (float)v; break;
  case MG_FLOAT64: ((double *)o)[i] = v; break;
  case MG_INT32: ((int32_t *)o)[i] = (int32_t)v; break;
  case MG_INT64:  /* the extremes exactly (INT64_MAX is not a double) */
    ((int64_t *)o)[i] = v >= 9.2e18 ? INT64_MAX : v <= -9.2e18 ? INT64_MIN : (int64_t)v;
    break;
  default: ((uint8_t *)o)[i] = (uint8_t)v; break;
  }
}

static mg_status segment(const mg_call *c, mg_tensor *out, int mode, int sorted) {
  const mg_tensor *data = c->in[0], *sid = c->in[1];
  int64_t S = A_I(c, 0), N = mg_tensor_numel(sid), base = nd_base(c);
  int64_t inner = nd_inner(data->shape, sid->ndim, data->ndim);
  const char *dp, *ip;
  mg_tensor *dov = NULL, *iov = NULL;
  unsigned char *hit = NULL;
  mg_status st = mg_contiguous_input(NAME(c), data, &dp, &dov);
  if (!st) st = mg_contiguous_input(NAME(c), sid, &ip, &iov);
  if (!st) st = mg_work_alloc((size_t)(S ? S : 1), NAME(c), (void **)&hit);
  if (st) goto done;
  const int64_t *ids = (const int64_t *)ip;
  memset(hit, 0, (size_t)(S ? S : 1));
  for (int64_t r = 0; r < N; r++) {
    int64_t i = ids[r];
    if (i < base || i - base >= S) {
      char pos[MG_SHAPE_BUF];
      int64_t p[MG_MAX_DIMS] = {0}, rem = r;
      for (int d = sid->ndim - 1; d >= 0; d--) {
        p[d] = rem % sid->shape[d] + base;
        rem /= sid->shape[d];
      }
      mg_shape_str(sid->ndim, p, pos, sizeof pos);
      st = mg_seterror(MG_EINDEX, "%s: segment id %lld at position %s is out of range for %lld segments (valid: %lld..%lld)%s",
                       NAME(c), (long long)i, pos, (long long)S, (long long)base, (long long)(S - 1 + base),
                       base == 1 && i == 0 ? "; segment ids count from 1" : "");
      goto done;
    }
    if (sorted && r > 0 && i < ids[r - 1]) {
      st = mg_seterror(MG_EARG, "%s: segment_ids must be sorted: id %lld at position %lld follows %lld (use "
                       "unsorted_segment_%s for ids in any order)", NAME(c), (long long)i, (long long)(r + base),
                       (long long)ids[r - 1], NAME(c) + 8);
      goto done;
    }
    hit[i - base] = 1;
  }
  mg_dtype dt = (mg_dtype)out->dtype;
  char *o = mg_ptr(out);
  int64_t total = S * inner;
  double id = seg_identity(mode, dt);
  if (id == 0) memset(o, 0, mg_tensor_nbytes(out));
  else {
    unsigned char one[8];
    seg_store(dt, (char *)one, 0, id);
    size_t es = mg_dtype_size(dt);
    for (int64_t k = 0; k < total; k++) memcpy(o + (size_t)k * es, one, es);
  }
  if (inner > 0 && N > 0) {
    int nt = N * inner >= MG_PAR_MIN ? mg_threads() : 1;
    int64_t chunks = nt > 1 && inner >= 64 ? nt : 1;
#pragma omp parallel for num_threads(nt) schedule(static) if (chunks > 1)
    for (int64_t k = 0; k < chunks; k++)
      seg_cols(mode, dt, o, dp, ids, base, N, inner, inner * k / chunks, inner * (k + 1) / chunks);
  }
  if (mode == SEG_MAX || mode == SEG_MIN) {  /* empty segments */
    double e = sorted ? 0 : mg_dtype_is_float(dt) ? (mode == SEG_MAX ? -1 : 1) * (dt == MG_FLOAT32 ? FLT_MAX : DBL_MAX) : id;
    for (int64_t s = 0; s < S; s++)
      if (!hit[s])
        for (int64_t q = 0; q < inner; q++) seg_store(dt, o, s * inner + q, e);
  }
done:
  mg_work_free(hit);
  mg_tensor_release(dov);
  mg_tensor_release(iov);
  return st;
}

mg_status k_segment_sum(const mg_call *c, mg_tensor *out) { return segment(c, out, SEG_SUM, 1); }
mg_status k_segment_prod(const mg_call *c, mg_tensor *out) { return segment(c, out, SEG_PROD, 1); }
mg_status k_segment_max(const mg_call *c, mg_tensor *out) { return segment(c, out, SEG_MAX, 1); }
mg_status k_segment_min(const mg_call *c, mg_tensor *out) { return segment(c, out, SEG_MIN, 1); }
mg_status k_unsorted_segment_sum(const mg_call *c, mg_tensor *out) { return segment(c, out, SEG_SUM, 0); }
mg_status k_unsorted_segment_prod(const mg_call *c, mg_tensor *out) { return segment(c, out, SEG_PROD, 0); }
mg_status k_unsorted_segment_max(const mg_call *c, mg_tensor *out) { return segment(c, out, SEG_MAX, 0); }
mg_status k_unsorted_segment_min(const mg_call *c, mg_tensor *out) { return segment(c, out, SEG_MIN, 0); }

/* ---- argwhere ------------------------------------------------------------------------- */

/* Coordinates of the nonzero elements of x (cast to bool by mg_apply), in
 * row-major order; `count` (attribute 0) is their number, which the caller
 * counted (the output's shape); a different count is an error. */
mg_status k_argwhere(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  const char *xp;
  mg_tensor *xo = NULL;
  int64_t n = mg_tensor_numel(x), count = A_I(c, 0), base = nd_base(c), *starts = NULL;
  int nd = x->ndim;
  mg_status st = mg_contiguous_input(NAME(c), x, &xp, &xo);
  int nt = n >= MG_PAR_MIN ? mg_threads() : 1;
  if (!st) st = mg_work_alloc((size_t)(nt + 1) * sizeof *starts, NAME(c), (void **)&starts);
  if (st) {
    mg_tensor_release(xo);
    return st;
  }
  const uint8_t *b = (const uint8_t *)xp;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int k = 0; k < nt; k++) {
    int64_t m = 0;
    for (int64_t i = n * k / nt; i < n * (k + 1) / nt; i++) m += b[i] != 0;
    starts[k + 1] = m;
  }
  starts[0] = 0;
  for (int k = 0; k < nt; k++) starts[k + 1] += starts[k];
  if (starts[nt] != count) {
    st = mg_seterror(MG_EARG, "%s: x has %lld nonzero elements, count says %lld", NAME(c), (long long)starts[nt],
                     (long long)count);
  } else if (nd > 0) {
    int64_t *o = (int64_t *)mg_ptr(out);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int k = 0; k < nt; k++) {
      int64_t at = starts[k], lo = n * k / nt, hi = n * (k + 1) / nt, coord[MG_MAX_DIMS], rem = lo;
      for (int d = nd - 1; d >= 0; d--) {
        coord[d] = rem % x->shape[d];
        rem /= x->shape[d];
      }
      int64_t last = x->shape[nd - 1], i = lo;
      while (i < hi) {  /* a run along the last axis at a time: the carry once per run */
        int64_t run = last - coord[nd - 1] < hi - i ? last - coord[nd - 1] : hi - i;
        for (int64_t j = 0; j < run; j++) {
          if (!b[i + j]) continue;
          int64_t *w = o + at * nd;
          for (int d = 0; d < nd - 1; d++) w[d] = coord[d] + base;
          w[nd - 1] = coord[nd - 1] + j + base;
          at++;
        }
        i += run;
        coord[nd - 1] += run;
        for (int d = nd - 1; d > 0 && coord[d] == x->shape[d]; d--) {
          coord[d] = 0;
          coord[d - 1]++;
        }
      }
    }
  }
  mg_work_free(starts);
  mg_tensor_release(xo);
  return st;
}
