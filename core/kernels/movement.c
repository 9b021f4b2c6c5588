/*
 * movement.c — kernels that move elements without computing on them.
 *
 * Views (reshape, permute, transpose, squeeze, unsqueeze, expand, slice,
 * select, contiguous) only compute strides and an offset and share the
 * input's storage through mg_view_of; reshape first asks whether the new
 * shape can be walked with strides at all (PyTorch's rule) and copies when it
 * cannot. Engine invariant: no op produces negative strides, so a slice with
 * a negative step is a copy, not a view.
 *
 * Copying movement comes in three shapes:
 *   - concat copies each input into a sub-view of the output (mg_copy_into);
 *   - pad, tile, flip and negative-step slices are one "table gather": per
 *     output axis a table maps each position to a source offset (or -1 for
 *     the pad value), and rows of the output are filled from the tables,
 *     by memcpy of runs when the last axis's table has long runs;
 *   - gather, take, scatter_add and one_hot read a contiguous int64 index
 *     (cast by mg_apply, copied here when strided), check every value against
 *     the axis first (MG_EINDEX naming position and range), then walk the
 *     index split as (P, A, Q) around the axis with offset tables for P and Q.
 * Large outputs split rows across OpenMP threads; each output element is
 * written by one thread in a fixed order, so results never depend on the
 * thread count (scatter_add sums each target in index order).
 */
#include "internal.h"
#include <stdio.h>
#include <stdlib.h>

/* Shared with infer_shape.c, which defines them. */
int64_t mg_slice_axis(int64_t n, int64_t *begin, int64_t end, int64_t step);
void mg_slice_params(const mg_call *c, int d, int64_t *begin, int64_t *end, int64_t *step);
mg_status mg_select_params(const mg_call *c, int *axis, int64_t *pos);
int mg_tile_align(const mg_call *c, int64_t *reps, int64_t *shape);
mg_status mg_flip_mask(const mg_call *c, int *flip);

#define NAME(c) ((c)->info->name)

static int movement_base(const mg_call *c) { return c->ctx ? c->ctx->index_base : 0; }

static int movement_axis(const mg_call *c, int64_t axis, int ndim) {
  int a = 0;
  mg_norm_axis(c, "axis", axis, ndim, &a);  /* infer has validated it */
  return a;
}

static mg_status movement_oom(const mg_call *c) {
  return mg_seterror(MG_ENOMEM, "%s: out of memory", NAME(c));
}

/* Gives a view op's output its own contiguous storage (for the copying path). */
static mg_status movement_alloc(const mg_call *c, mg_tensor *out) {
  mg_status st = mg_tensor_alloc_storage(out);
  if (st) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", mg_last_error());
    return mg_seterror(st, "%s: %s", NAME(c), msg);
  }
  return MG_OK;
}

/* A header over `base`'s storage with the given shape, strides and offset. */
static mg_tensor *movement_subview(const mg_tensor *base, int ndim, const int64_t *shape, const int64_t *strides,
                                   int64_t offset) {
  mg_tensor *v = mg_tensor_header((mg_dtype)base->dtype, ndim, shape);
  if (v) mg_view_of(v, base, strides, offset);
  return v;
}

/* ---- views ------------------------------------------------------------------ */

/* Strides that walk x's elements in row-major order under a new shape, if
 * any. x's axes fall into runs that are contiguous among themselves (each
 * axis's stride is the next one's stride times its size); each run must be
 * covered exactly by consecutive axes of the new shape, which then step
 * within the run. Returns 0 when some new axis would straddle two runs. */
static int movement_view_strides(const mg_tensor *x, int nd, const int64_t *shape, int64_t *strides) {
  if (mg_tensor_numel(x) <= 1 || mg_tensor_is_contiguous(x)) {
    mg_contiguous_strides(nd, shape, strides);
    return 1;
  }
  int v = nd - 1;
  int64_t unit = x->strides[x->ndim - 1], run = 1, covered = 1;
  for (int d = x->ndim - 1; d >= 0; d--) {
    run *= x->shape[d];
    if (d > 0 && (x->shape[d - 1] == 1 || x->strides[d - 1] == run * unit)) continue;  /* run goes on */
    while (v >= 0 && (covered < run || shape[v] == 1)) {
      strides[v] = covered * unit;
      covered *= shape[v--];
    }
    if (covered != run) return 0;
    if (d > 0) {
      unit = x->strides[d - 1];
      run = covered = 1;
    }
  }
  return v < 0;
}

/* Copies x row-major into out's fresh storage (shapes differ, counts agree). */
static mg_status movement_copy_reshaped(const mg_call *c, mg_tensor *out, const mg_tensor *x) {
  mg_status st = movement_alloc(c, out);
  if (st) return st;
  int64_t strides[MG_MAX_DIMS];
  mg_contiguous_strides(x->ndim, x->shape, strides);
  mg_tensor *dst = movement_subview(out, x->ndim, x->shape, strides, 0);
  if (!dst) return movement_oom(c);
  st = mg_copy_into(dst, x);
  mg_tensor_release(dst);
  return st;
}

mg_status k_reshape(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  int64_t strides[MG_MAX_DIMS];
  if (movement_view_strides(x, out->ndim, out->shape, strides)) {
    mg_view_of(out, x, strides, x->offset);
    return MG_OK;
  }
  return movement_copy_reshaped(c, out, x);
}

mg_status k_permute(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  int64_t strides[MG_MAX_DIMS];
  int given = A_SET(c, 0) || A_N(c, 0) > 0;
  for (int i = 0; i < x->ndim; i++)
    strides[i] = x->strides[given ? movement_axis(c, A_LIST(c, 0)[i], x->ndim) : x->ndim - 1 - i];
  mg_view_of(out, x, strides, x->offset);
  return MG_OK;
}

mg_status k_transpose(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  int64_t strides[MG_MAX_DIMS];
  if (x->ndim) memcpy(strides, x->strides, (size_t)x->ndim * sizeof(int64_t));
  if (x->ndim >= 2) {
    int a = movement_axis(c, A_I(c, 0), x->ndim), b = movement_axis(c, A_I(c, 1), x->ndim);
    strides[a] = x->strides[b];
    strides[b] = x->strides[a];
  }
  mg_view_of(out, x, strides, x->offset);
  return MG_OK;
}

mg_status k_squeeze(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  int drop[MG_MAX_DIMS] = {0}, n = 0;
  int64_t strides[MG_MAX_DIMS];
  for (int i = 0; i < A_N(c, 0); i++) drop[movement_axis(c, A_LIST(c, 0)[i], x->ndim)] = 1;
  for (int d = 0; d < x->ndim; d++)
    if (!(A_ALL_AXES(c, 0) ? x->shape[d] == 1 : drop[d])) strides[n++] = x->strides[d];
  mg_view_of(out, x, strides, x->offset);
  return MG_OK;
}

mg_status k_unsqueeze(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  int a = movement_axis(c, A_I(c, 0), x->ndim + 1);
  int64_t strides[MG_MAX_DIMS];
  for (int d = 0, s = 0; d < out->ndim; d++) {
    if (d != a) strides[d] = x->strides[s++];
    else strides[d] = a < x->ndim ? x->strides[a] * x->shape[a] : 1;  /* any value works for size 1 */
  }
  mg_view_of(out, x, strides, x->offset);
  return MG_OK;
}

mg_status k_expand(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  int lead = out->ndim - x->ndim;
  int64_t strides[MG_MAX_DIMS];
  for (int d = 0; d < out->ndim; d++) {
    int s = d - lead;
    strides[d] = s < 0 || (x->shape[s] == 1 && out->shape[d] != 1) ? 0 : x->strides[s];
  }
  mg_view_of(out, x, strides, x->offset);
  return MG_OK;
}

mg_status k_select(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  int a;
  int64_t pos, strides[MG_MAX_DIMS];
  mg_status st = mg_select_params(c, &a, &pos);
  if (st) return st;
  for (int d = 0, n = 0; d < x->ndim; d++)
    if (d != a) strides[n++] = x->strides[d];
  mg_view_of(out, x, strides, x->offset + pos * x->strides[a]);
  return MG_OK;
}

mg_status k_contiguous(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  if (mg_tensor_is_contiguous(x)) {
    int64_t strides[MG_MAX_DIMS];
    mg_contiguous_strides(x->ndim, x->shape, strides);
    mg_view_of(out, x, strides, x->offset);
    return MG_OK;
  }
  mg_status st = movement_alloc(c, out);
  return st ? st : mg_copy_into(out, x);
}

/* ---- the table gather (pad, tile, flip, negative-step slice) ------------------------ */

typedef struct movement_table {
  int ndim;
  const int64_t *shape;       /* the output's */
  int64_t *tab[MG_MAX_DIMS];  /* per axis: source offset in elements, -1 = fill */
  const char *src;
  char *dst;
  size_t es;
  unsigned char fill[8];
  int64_t nruns;              /* > 0: the last table as runs, copied with memcpy */
  int64_t (*runs)[3];         /* {first output position, source offset or -1, length} */
} movement_table;

#define TABLE_ROW(T)                                         \
  do {                                                       \
    const T *s_ = (const T *)g->src + base;                  \
    T *o_ = (T *)o, f_;                                      \
    memcpy(&f_, g->fill, sizeof f_);                         \
    if (base < 0) {                                          \
      for (int64_t j = 0; j < n; j++) o_[j] = f_;            \
    } else {                                                 \
      for (int64_t j = 0; j < n; j++)                        \
        o_[j] = tab[j] < 0 ? f_ : s_[tab[j]];                \
    }                                                        \
  } while (0)

/* Row segments [j, j + n) of the fill value. */
static void movement_fill(const movement_table *g, char *o, int64_t n) {
  for (int64_t j = 0; j < n; j++) memcpy(o + j * (int64_t)g->es, g->fill, g->es);
}

/* One output row: base is the summed offset of the outer axes (-1: fill). */
static void movement_table_row(const movement_table *g, int64_t base, char *o) {
  const int64_t *tab = g->tab[g->ndim - 1];
  int64_t n = g->shape[g->ndim - 1], es = (int64_t)g->es;
  if (base >= 0 && g->nruns) {
    for (int64_t r = 0; r < g->nruns; r++) {
      const int64_t *run = g->runs[r];
      if (run[1] < 0) movement_fill(g, o + run[0] * es, run[2]);
      else memcpy(o + run[0] * es, g->src + (base + run[1]) * es, (size_t)(run[2] * es));
    }
    return;
  }
  switch (g->es) {
  case 1: TABLE_ROW(uint8_t); break;
  case 2: TABLE_ROW(uint16_t); break;
  case 4: TABLE_ROW(uint32_t); break;
  default: TABLE_ROW(uint64_t); break;
  }
}

static void movement_table_rows(const movement_table *g, int64_t lo, int64_t hi) {
  int last = g->ndim - 1;
  int64_t coord[MG_MAX_DIMS], rem = lo, row_bytes = g->shape[last] * (int64_t)g->es;
  for (int d = last - 1; d >= 0; d--) {
    coord[d] = rem % g->shape[d];
    rem /= g->shape[d];
  }
  for (int64_t r = lo; r < hi; r++) {
    int64_t base = 0;
    for (int d = 0; d < last && base >= 0; d++) base = g->tab[d][coord[d]] < 0 ? -1 : base + g->tab[d][coord[d]];
    movement_table_row(g, base, g->dst + r * row_bytes);
    for (int d = last - 1; d >= 0; d--) {  /* odometer */
      if (++coord[d] < g->shape[d]) break;
      coord[d] = 0;
    }
  }
}

/* Splits the last table into runs of consecutive sources (or of the fill);
 * worth it when runs average 8 elements or more (tile, pad, positive copies). */
static void movement_table_runs(movement_table *g) {
  const int64_t *t = g->tab[g->ndim - 1];
  int64_t inner = g->shape[g->ndim - 1], n = 1;
  for (int64_t j = 1; j < inner; j++) n += !(t[j] < 0 ? t[j - 1] < 0 : t[j - 1] >= 0 && t[j] == t[j - 1] + 1);
  g->nruns = 0;
  if (n * 8 > inner || mg_work_alloc((size_t)n * sizeof *g->runs, "movement", (void **)&g->runs)) return;
  for (int64_t j = 0; j < inner; j++) {
    int64_t *last = g->nruns ? g->runs[g->nruns - 1] : NULL;
    if (last && (t[j] < 0 ? last[1] < 0 : last[1] >= 0 && t[j] == last[1] + last[2])) {
      last[2]++;
      continue;
    }
    int64_t *run = g->runs[g->nruns++];
    run[0] = j;
    run[1] = t[j] < 0 ? -1 : t[j];
    run[2] = 1;
  }
}

static void movement_table_run(movement_table *g, int64_t numel) {
  if (numel == 0) return;
  int64_t inner = g->shape[g->ndim - 1], rows = numel / inner;
  movement_table_runs(g);
  int nt = numel >= MG_PAR_MIN && rows > 1 ? mg_threads() : 1;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int k = 0; k < nt; k++) movement_table_rows(g, rows * k / nt, rows * (k + 1) / nt);
  if (g->nruns) mg_work_free(g->runs);
}

/* Allocates the per-axis tables of `out` (one block; freed by the caller
 * through g->tab[0]) and points g at x and out. A 0-d out is treated as 1-d. */
static mg_status movement_table_init(const mg_call *c, movement_table *g, const mg_tensor *x, mg_tensor *out) {
  static const int64_t one = 1;
  int64_t total = 0;
  g->ndim = out->ndim ? out->ndim : 1;
  g->shape = out->ndim ? out->shape : &one;
  for (int d = 0; d < g->ndim; d++) total += g->shape[d];
  int64_t *block;
  mg_status st = mg_work_alloc((size_t)(total ? total : 1) * sizeof(int64_t), NAME(c), (void **)&block);
  if (st) return st;
  for (int d = 0; d < g->ndim; d++) {
    g->tab[d] = block;
    block += g->shape[d];
  }
  if (!out->ndim) g->tab[0][0] = 0;
  g->src = mg_ptr(x);
  g->dst = mg_ptr(out);
  g->es = mg_dtype_size((mg_dtype)x->dtype);
  memset(g->fill, 0, sizeof g->fill);
  return MG_OK;
}

static mg_status movement_table_finish(movement_table *g, const mg_tensor *out) {
  movement_table_run(g, mg_tensor_numel(out));
  mg_work_free(g->tab[0]);
  return MG_OK;
}

/* A negative-step slice: a copy through tables. */
static mg_status movement_slice_copy(const mg_call *c, const mg_tensor *x, mg_tensor *out) {
  movement_table g;
  mg_status st = movement_alloc(c, out);
  if (!st) st = movement_table_init(c, &g, x, out);
  if (st) return st;
  for (int d = 0; d < x->ndim; d++) {
    int64_t b, e, s;
    mg_slice_params(c, d, &b, &e, &s);
    mg_slice_axis(x->shape[d], &b, e, s);
    for (int64_t i = 0; i < out->shape[d]; i++) g.tab[d][i] = (b + i * s) * x->strides[d];
  }
  return movement_table_finish(&g, out);
}

mg_status k_slice(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  int64_t strides[MG_MAX_DIMS], offset = x->offset;
  int empty = 0;
  for (int d = 0; d < x->ndim; d++) empty |= out->shape[d] == 0;
  for (int d = 0; d < x->ndim; d++) {
    int64_t b, e, s;
    mg_slice_params(c, d, &b, &e, &s);
    mg_slice_axis(x->shape[d], &b, e, s);
    if (s < 0 && out->shape[d] > 1) return movement_slice_copy(c, x, out);
    strides[d] = out->shape[d] > 1 ? x->strides[d] * s : x->strides[d];
    if (!empty) offset += b * x->strides[d];
  }
  mg_view_of(out, x, strides, offset);
  return MG_OK;
}

/* Converts v to dtype dt's bytes (ints saturate, NaN gives 0; infer has
 * refused values that do not fit). */
static void movement_store(mg_dtype dt, double v, void *p) {
  double lo = dt == MG_INT32 ? -2147483648.0 : dt == MG_UINT8 ? 0 : -9223372036854775808.0;
  double hi = dt == MG_INT32 ? 2147483647.0 : dt == MG_UINT8 ? 255 : 9223372036854775807.0;
  double w = v != v ? 0 : v < lo ? lo : v > hi ? hi : v;
  switch (dt) {
  case MG_FLOAT32: *(float *)p = (float)v; break;
  case MG_FLOAT64: *(double *)p = v; break;
  case MG_INT32: *(int32_t *)p = (int32_t)w; break;
  case MG_INT64: *(int64_t *)p = w >= 9223372036854775807.0 ? INT64_MAX : (int64_t)w; break;
  case MG_UINT8: *(uint8_t *)p = (uint8_t)w; break;
  default: *(uint8_t *)p = v != 0; break;
  }
}

/* Where output position i of a padded axis reads from (-1: the pad value). */
static int64_t movement_pad_source(int mode, int64_t i, int64_t before, int64_t n) {
  int64_t j = i - before;
  if (j >= 0 && j < n) return j;
  if (mode == 0) return -1;
  if (mode == 2) return j < 0 ? 0 : n - 1;  /* replicate */
  return j < 0 ? -j : 2 * (n - 1) - j;      /* reflect, edge not repeated */
}

mg_status k_pad(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  movement_table g;
  mg_status st = movement_table_init(c, &g, x, out);
  if (st) return st;
  int mode = (int)A_I(c, 2);
  movement_store((mg_dtype)x->dtype, A_F(c, 1), g.fill);
  for (int d = 0; d < x->ndim; d++)
    for (int64_t i = 0; i < out->shape[d]; i++) {
      int64_t j = movement_pad_source(mode, i, A_LIST(c, 0)[2 * d], x->shape[d]);
      g.tab[d][i] = j < 0 ? -1 : j * x->strides[d];
    }
  return movement_table_finish(&g, out);
}

mg_status k_tile(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  movement_table g;
  int64_t reps[MG_MAX_LIST], shape[MG_MAX_LIST];
  int n = mg_tile_align(c, reps, shape), lead = n - x->ndim;
  mg_status st = movement_table_init(c, &g, x, out);
  if (st) return st;
  for (int d = 0; d < n; d++) {
    int64_t stride = d < lead ? 0 : x->strides[d - lead];
    for (int64_t i = 0; i < out->shape[d]; i++) g.tab[d][i] = (i % shape[d]) * stride;
  }
  return movement_table_finish(&g, out);
}

mg_status k_flip(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  movement_table g;
  int flip[MG_MAX_DIMS];
  mg_status st = mg_flip_mask(c, flip);
  if (!st) st = movement_table_init(c, &g, x, out);
  if (st) return st;
  for (int d = 0; d < x->ndim; d++)
    for (int64_t i = 0, n = x->shape[d]; i < n; i++) g.tab[d][i] = (flip[d] ? n - 1 - i : i) * x->strides[d];
  return movement_table_finish(&g, out);
}

/* ---- concat ------------------------------------------------------------------------ */

mg_status k_concat(const mg_call *c, mg_tensor *out) {
  int a = A_SET(c, 0) ? movement_axis(c, A_I(c, 0), out->ndim) : 0;
  int64_t at = 0;
  for (int i = 0; i < c->nin; i++) {
    const mg_tensor *t = c->in[i];
    if (t->shape[a] == 0) continue;
    mg_tensor *dst = movement_subview(out, t->ndim, t->shape, out->strides, at * out->strides[a]);
    if (!dst) return movement_oom(c);
    mg_status st = mg_copy_into(dst, t);
    mg_tensor_release(dst);
    if (st) return st;
    at += t->shape[a];
  }
  return MG_OK;
}

/* ---- index ops ------------------------------------------------------------------------ */

/* The int64 index as a contiguous array: its own data, or a copy in *owned. */
static mg_status movement_index(const mg_call *c, const mg_tensor *idx, const int64_t **v, mg_tensor **owned) {
  *owned = NULL;
  if (mg_tensor_is_contiguous(idx)) {
    *v = (const int64_t *)mg_ptr(idx);
    return MG_OK;
  }
  mg_status st = mg_tensor_empty(MG_INT64, idx->ndim, idx->shape, owned);
  if (!st) st = mg_copy_into(*owned, idx);
  if (st) {
    mg_tensor_release(*owned);
    *owned = NULL;
    return st == MG_ENOMEM ? movement_oom(c) : st;
  }
  *v = (const int64_t *)mg_ptr(*owned);
  return MG_OK;
}

/* Every index value must lie in [base, base + size): else MG_EINDEX naming
 * the first bad value, its position in the index tensor and the range. */
static mg_status movement_check(const mg_call *c, const mg_tensor *idx, const int64_t *v, int axis, int64_t size) {
  int64_t n = mg_tensor_numel(idx), base = movement_base(c), k = 0;
  while (k < n && v[k] >= base && v[k] - base < size) k++;
  if (k == n) return MG_OK;
  int64_t pos[MG_MAX_DIMS], rem = k;
  for (int d = idx->ndim - 1; d >= 0; d--) {
    pos[d] = rem % idx->shape[d] + base;
    rem /= idx->shape[d];
  }
  char sp[MG_SHAPE_BUF], range[64];
  if (size) snprintf(range, sizeof range, "valid: %lld..%lld", (long long)base, (long long)(size - 1 + base));
  else snprintf(range, sizeof range, "the axis is empty");
  return mg_seterror(MG_EINDEX, "%s: index %lld at position %s is out of range for axis %d of size %lld (%s)",
                     NAME(c), (long long)v[k], mg_shape_str(idx->ndim, pos, sp, sizeof sp), axis + (int)base,
                     (long long)size, range);
}

/* Element offsets, by `strides`, of every row-major position over axes
 * [lo, hi) of `shape`; *n gets their count. NULL with the error set (out of
 * memory, or the memory limit: a workspace, limits.c); free with mg_work_free. */
static int64_t *movement_offsets(const int64_t *shape, const int64_t *strides, int lo, int hi, int64_t *n) {
  int64_t total = 1, coord[MG_MAX_DIMS] = {0}, off = 0;
  for (int d = lo; d < hi; d++) total *= shape[d];
  int64_t *t;
  if (mg_work_alloc((size_t)(total ? total : 1) * sizeof *t, "movement", (void **)&t)) return NULL;
  for (int64_t k = 0; k < total; k++) {
    t[k] = off;
    for (int d = hi - 1; d >= lo; d--) {
      off += strides[d];
      if (++coord[d] < shape[d]) break;
      off -= strides[d] * shape[d];
      coord[d] = 0;
    }
  }
  *n = total;
  return t;
}

/* The index's shape split around axis a into P rows, A along the axis and Q
 * columns, with offset tables of one strided tensor over P and Q. */
typedef struct movement_split {
  int64_t P, A, Q;
  int64_t *p, *q;
} movement_split;

static mg_status movement_split_init(const mg_call *c, movement_split *s, const mg_tensor *idx, const int64_t *strides,
                                     int a) {
  s->A = idx->shape[a];
  s->p = movement_offsets(idx->shape, strides, 0, a, &s->P);
  s->q = movement_offsets(idx->shape, strides, a + 1, idx->ndim, &s->Q);
  if (s->p && s->q) return MG_OK;
  mg_status st = strstr(mg_last_error(), "memory limit") ? MG_ELIMIT : movement_oom(c);
  mg_work_free(s->p);
  mg_work_free(s->q);
  s->p = s->q = NULL;
  return st;
}

static void movement_split_free(movement_split *s) {
  mg_work_free(s->p);
  mg_work_free(s->q);
}

/* Typed rows of gather: out[(p*A + i)*Q + q] = x[p[p] + v*xa + q[q]]. */
#define GATHER_ROWS(T)                                                              \
  do {                                                                              \
    const T *x_ = (const T *)xp;                                                    \
    T *o_ = (T *)op;                                                                \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if (nt > 1)")        \
    for (int64_t r = 0; r < s.P * s.A; r++) {                                       \
      const int64_t *iv = v + r * s.Q;                                              \
      int64_t pb = s.p[r / s.A];                                                    \
      for (int64_t q = 0; q < s.Q; q++) o_[r * s.Q + q] = x_[pb + (iv[q] - base) * xa + s.q[q]]; \
    }                                                                               \
  } while (0)

mg_status k_gather(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0], *idx = c->in[1];
  int a = movement_axis(c, A_I(c, 0), x->ndim);
  const int64_t *v;
  mg_tensor *owned;
  movement_split s;
  mg_status st = movement_index(c, idx, &v, &owned);
  if (!st) st = movement_check(c, idx, v, a, x->shape[a]);
  if (!st) st = movement_split_init(c, &s, idx, x->strides, a);
  if (st) {
    mg_tensor_release(owned);
    return st;
  }
  const char *xp = mg_ptr(x);
  char *op = mg_ptr(out);
  int64_t base = movement_base(c), xa = x->strides[a];
  int nt = mg_tensor_numel(out) >= MG_PAR_MIN ? mg_threads() : 1;
  switch (mg_dtype_size((mg_dtype)x->dtype)) {
  case 1: GATHER_ROWS(uint8_t); break;
  case 2: GATHER_ROWS(uint16_t); break;
  case 4: GATHER_ROWS(uint32_t); break;
  default: GATHER_ROWS(uint64_t); break;
  }
  movement_split_free(&s);
  mg_tensor_release(owned);
  return MG_OK;
}

/* take: out[p, k, q] = x[p, v[k], q] over x split around the axis. */
static void movement_take_rows(const mg_tensor *x, int a, const int64_t *v, int64_t K, const movement_split *s,
                               int64_t base, char *out) {
  size_t es = mg_dtype_size((mg_dtype)x->dtype);
  const char *xp = mg_ptr(x);
  int64_t xa = x->strides[a], Q = s->Q;
  int run = 1;  /* the q table is 0, 1, 2, ...: each (p, k) block is one memcpy */
  for (int64_t q = 0; q < Q && run; q++) run = s->q[q] == q;
  int nt = s->P * K * Q >= MG_PAR_MIN ? mg_threads() : 1;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t r = 0; r < s->P * K; r++) {
    int64_t src = s->p[r / K] + (v[r % K] - base) * xa;
    char *o = out + r * Q * (int64_t)es;
    if (run) {
      memcpy(o, xp + src * (int64_t)es, (size_t)Q * es);
      continue;
    }
    for (int64_t q = 0; q < Q; q++) memcpy(o + q * (int64_t)es, xp + (src + s->q[q]) * (int64_t)es, es);
  }
}

mg_status k_take(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0], *idx = c->in[1];
  int a = A_SET(c, 0) ? movement_axis(c, A_I(c, 0), x->ndim) : 0;
  const int64_t *v;
  mg_tensor *owned;
  movement_split s;
  mg_status st = movement_index(c, idx, &v, &owned);
  if (!st) st = movement_check(c, idx, v, a, x->shape[a]);
  if (!st) st = movement_split_init(c, &s, x, x->strides, a);
  if (st) {
    mg_tensor_release(owned);
    return st;
  }
  movement_take_rows(x, a, v, mg_tensor_numel(idx), &s, movement_base(c), mg_ptr(out));
  movement_split_free(&s);
  mg_tensor_release(owned);
  return MG_OK;
}

/* scatter_add's walk: tile (p, columns [q0, q1)) adds src into out along the
 * axis in index order; tiles own disjoint targets, so they run in parallel. */
typedef struct movement_scatter {
  movement_split s;          /* over the index's shape, out's strides */
  int64_t *sp, *sq;          /* the same positions, src's strides */
  int64_t oa, sa, base;      /* out's and src's axis strides */
  const int64_t *v;
  char *out;
  const char *src;
} movement_scatter;

#define SCATTER_FN(NAME_, T, ADD)                                                          \
  static void NAME_(const movement_scatter *m, int64_t p, int64_t q0, int64_t q1) {        \
    T *o = (T *)m->out;                                                                    \
    const T *sv = (const T *)m->src;                                                       \
    for (int64_t i = 0; i < m->s.A; i++) {                                                 \
      const int64_t *iv = m->v + (p * m->s.A + i) * m->s.Q;                                \
      int64_t ob = m->s.p[p] - m->base * m->oa, sb = m->sp[p] + i * m->sa;                 \
      for (int64_t q = q0; q < q1; q++) {                                                  \
        T *t = o + ob + iv[q] * m->oa + m->s.q[q];                                         \
        T y = sv[sb + m->sq[q]];                                                           \
        *t = ADD(*t, y);                                                                   \
      }                                                                                    \
    }                                                                                      \
  }
#define ADD_PLAIN(a, b) ((a) + (b))
#define ADD_I32(a, b) ((int32_t)((uint32_t)(a) + (uint32_t)(b)))  /* wraps, no UB */
#define ADD_I64(a, b) ((int64_t)((uint64_t)(a) + (uint64_t)(b)))
#define ADD_U8(a, b) ((uint8_t)((a) + (b)))
#define ADD_BOOL(a, b) ((uint8_t)((a) | (b)))
SCATTER_FN(scatter_f32, float, ADD_PLAIN)
SCATTER_FN(scatter_f64, double, ADD_PLAIN)
SCATTER_FN(scatter_i32, int32_t, ADD_I32)
SCATTER_FN(scatter_i64, int64_t, ADD_I64)
SCATTER_FN(scatter_u8, uint8_t, ADD_U8)
SCATTER_FN(scatter_bool, uint8_t, ADD_BOOL)

typedef void (*movement_scatter_fn)(const movement_scatter *, int64_t, int64_t, int64_t);

static void movement_scatter_run(const movement_scatter *m, mg_dtype dt) {
  static const movement_scatter_fn fns[MG_NDTYPES] = {scatter_f32, scatter_f64, scatter_i32,
                                                      scatter_i64, scatter_u8,  scatter_bool};
  movement_scatter_fn fn = fns[dt];
  int64_t P = m->s.P, Q = m->s.Q, total = P * m->s.A * Q;
  int nt = total >= MG_PAR_MIN ? mg_threads() : 1;
  int64_t chunks = nt > 1 && P < nt ? nt : 1;  /* few rows: split the columns too */
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t t = 0; t < P * chunks; t++) {
    int64_t k = t % chunks;
    fn(m, t / chunks, Q * k / chunks, Q * (k + 1) / chunks);
  }
}

mg_status k_scatter_add(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0], *idx = c->in[1], *src = c->in[2];
  int a = movement_axis(c, A_I(c, 0), x->ndim);
  movement_scatter m = {0};
  mg_tensor *owned;
  int64_t zero[MG_MAX_DIMS] = {0}, n;
  const int64_t *sstr = src->ndim ? src->strides : zero;  /* a 0-d src adds everywhere */
  /* out is x's own buffer when the executor lets it add in place (MG_ACCUM) */
  int inplace = x->storage == out->storage && x->offset == out->offset && mg_tensor_is_contiguous(x);
  mg_status st = inplace ? MG_OK : mg_copy_into(out, x);
  if (!st) st = movement_index(c, idx, &m.v, &owned);
  if (st) return st;
  if (!(st = movement_check(c, idx, m.v, a, x->shape[a])) &&
      !(st = movement_split_init(c, &m.s, idx, out->strides, a))) {
    m.sp = movement_offsets(idx->shape, sstr, 0, a, &n);
    m.sq = movement_offsets(idx->shape, sstr, a + 1, idx->ndim, &n);
    if (m.sp && m.sq) {
      m.oa = out->strides[a];
      m.sa = sstr[a];
      m.base = movement_base(c);
      m.out = mg_ptr(out);
      m.src = mg_ptr(src);
      movement_scatter_run(&m, (mg_dtype)out->dtype);
    } else {
      st = strstr(mg_last_error(), "memory limit") ? MG_ELIMIT : movement_oom(c);
    }
    mg_work_free(m.sp);
    mg_work_free(m.sq);
    movement_split_free(&m.s);
  }
  mg_tensor_release(owned);
  return st;
}

mg_status k_one_hot(const mg_call *c, mg_tensor *out) {
  const mg_tensor *idx = c->in[0];
  const int64_t *v;
  mg_tensor *owned;
  mg_status st = movement_index(c, idx, &v, &owned);
  if (st) return st;
  int64_t n = mg_tensor_numel(idx), depth = A_I(c, 0), base = movement_base(c);
  size_t es = mg_dtype_size((mg_dtype)out->dtype);
  unsigned char one[8];
  char *o = mg_ptr(out);
  movement_store((mg_dtype)out->dtype, 1.0, one);
  memset(o, 0, mg_tensor_nbytes(out));  /* zero bits are 0 in every dtype */
  for (int64_t k = 0; k < n; k++) {
    if (v[k] >= base && v[k] - base < depth) {
      memcpy(o + (k * depth + v[k] - base) * (int64_t)es, one, es);
    } else if (A_I(c, 2) == 0 && depth > 0) {  /* outside = "error": a label from 0 must not become a zero row */
      long long got = (long long)v[k], at = (long long)(k + base), last = (long long)(depth - 1 + base);
      mg_tensor_release(owned);
      if (base == 1 && got == 0)
        return mg_seterror(MG_EINDEX, "one_hot: labels count from 1 (got 0); shift them with y + 1 (element %lld; "
                           "valid: 1..%lld; outside = \"zero\" gives TensorFlow's zero rows)", at, last);
      return mg_seterror(MG_EINDEX, "one_hot: index %lld (element %lld) is outside %lld..%lld (the depth); "
                         "outside = \"zero\" gives TensorFlow's zero rows", got, at, (long long)base, last);
    }
  }
  mg_tensor_release(owned);
  return MG_OK;
}
