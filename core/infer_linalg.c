/*
 * infer_linalg.c — shape and dtype inference for the linear-algebra ops
 * (kernels/linalg.c): inverse, solve, triangular solve, det, slogdet,
 * Cholesky, QR's Q, SVD, eigh, and the band-part mask their gradients use.
 *
 * Every op works on the last two axes of its inputs and is batched over the
 * leading ones, which must be equal between two inputs (no broadcasting, as
 * tf.linalg.solve's kernel). float32 and float64 run as they are; integers
 * and bools are cast to float32 first (as mg.exp). The ops with several
 * results (slogdet, svd, eigh) return one packed tensor that the stdlib
 * (stdlib/moongrad/linalg.lua) slices:
 *   slogdet  (..., 2):            sign, log|det|
 *   svd      (..., 1+m+n, W):     row 1 the k = min(m, n) singular values
 *                                 (descending), rows 2..m+1 U, the last n rows
 *                                 V (not V^T); W = k, or max(m, n) with
 *                                 full_matrices (unused columns zero)
 *   eigh     (..., n+1, n):       row 1 the eigenvalues (ascending), then the
 *                                 eigenvectors as columns
 * Sizes unknown while a function is staged (probes) pass the checks.
 */
#include "graph.h"  /* mg_is_probe */

/* The user-facing name: "linalg_inv" is mg.linalg.inv, "linalg.inv" in messages. */
#define LNAME(c) ((c)->info->name + 7)

static int same_size(int64_t a, int64_t b) { return a == b || mg_is_probe(a) || mg_is_probe(b); }

/* The op's float dtype (input dtypes promoted; non-floats give float32), set as every input's cast. */
static mg_dtype float_dtype(const mg_call *c, mg_meta *out) {
  mg_dtype dt = mg_promote_inputs(c->in, c->nin);
  if (!mg_dtype_is_float(dt)) dt = MG_FLOAT32;
  for (int i = 0; i < c->nin && i < MG_CAST_SLOTS; i++) out->cast[i] = dt;
  out->dtype = dt;
  return dt;
}

/* x must be at least 2-d (and square when square is set). */
static mg_status need_matrix(const mg_call *c, const mg_tensor *x, const char *arg, int square) {
  char sx[MG_SHAPE_BUF];
  if (x->ndim < 2)
    return mg_seterror(MG_ESHAPE, "linalg.%s: %s must be a matrix or a batch of matrices (at least 2-d), got shape %s",
                       LNAME(c), arg, mg_shape_str(x->ndim, x->shape, sx, sizeof sx));
  if (square && !same_size(x->shape[x->ndim - 1], x->shape[x->ndim - 2]))
    return mg_seterror(MG_ESHAPE, "linalg.%s: %s must be square in its last two axes, got shape %s", LNAME(c), arg,
                       mg_shape_str(x->ndim, x->shape, sx, sizeof sx));
  return MG_OK;
}

static void copy_shape(const mg_tensor *x, mg_meta *out) {
  out->ndim = x->ndim;
  memcpy(out->shape, x->shape, (size_t)x->ndim * sizeof(int64_t));
}

/* linalg_inv, linalg_cholesky: a square matrix in, one of its shape out. */
mg_status infer_linalg_square(const mg_call *c, mg_meta *out) {
  mg_status st = need_matrix(c, c->in[0], "x", 1);
  if (st) return st;
  float_dtype(c, out);
  copy_shape(c->in[0], out);
  return MG_OK;
}

/* linalg_det: the batch shape. linalg_slogdet: the batch shape + (2). */
mg_status infer_linalg_det(const mg_call *c, mg_meta *out) {
  mg_status st = need_matrix(c, c->in[0], "x", 1);
  if (st) return st;
  float_dtype(c, out);
  copy_shape(c->in[0], out);
  out->ndim -= 2;
  if (c->op == MG_OP_LINALG_SLOGDET) out->shape[out->ndim++] = 2;
  return MG_OK;
}

/* linalg_solve(a, b), linalg_triangular_solve(a, b): a (..., n, n), b (..., n, k); the result has b's shape. */
mg_status infer_linalg_solve(const mg_call *c, mg_meta *out) {
  const mg_tensor *a = c->in[0], *b = c->in[1];
  mg_status st = need_matrix(c, a, "matrix", 1);
  if (!st) st = need_matrix(c, b, "rhs", 0);
  if (st) return st;
  int ok = a->ndim == b->ndim && same_size(a->shape[a->ndim - 1], b->shape[b->ndim - 2]);
  for (int d = 0; ok && d < a->ndim - 2; d++) ok = same_size(a->shape[d], b->shape[d]);
  if (!ok) {
    char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
    return mg_seterror(MG_ESHAPE,
                       "linalg.%s: matrix %s and rhs %s do not match: rhs must be (..., n, k) for a matrix (..., n, n), "
                       "with the same leading (batch) dimensions",
                       LNAME(c), mg_shape_str(a->ndim, a->shape, sa, sizeof sa),
                       mg_shape_str(b->ndim, b->shape, sb, sizeof sb));
  }
  float_dtype(c, out);
  copy_shape(b, out);
  return MG_OK;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* linalg_qr_q(a, mode): Q of a (..., m, n): (..., m, min(m, n)), or (..., m, m) with mode complete. */
mg_status infer_linalg_qr_q(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  mg_status st = need_matrix(c, x, "x", 0);
  if (st) return st;
  int64_t m = x->shape[x->ndim - 2], n = x->shape[x->ndim - 1];
  float_dtype(c, out);
  copy_shape(x, out);
  out->shape[x->ndim - 1] = A_I(c, 0) == 1 ? m : min64(m, n);
  return MG_OK;
}

/* linalg_svd(a, full_matrices, compute_uv): see the packing above; (..., k) without compute_uv. */
mg_status infer_linalg_svd(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  mg_status st = need_matrix(c, x, "x", 0);
  if (st) return st;
  int64_t m = x->shape[x->ndim - 2], n = x->shape[x->ndim - 1], k = min64(m, n);
  float_dtype(c, out);
  copy_shape(x, out);
  if (!A_I(c, 1)) {
    out->ndim -= 1;
    out->shape[out->ndim - 1] = k;
    return MG_OK;
  }
  if (mg_is_probe(m) || mg_is_probe(n))
    return mg_seterror(MG_ESHAPE, "linalg.%s: the matrix sizes must be known when the function is staged (got an unknown size)",
                       LNAME(c));
  out->shape[x->ndim - 2] = 1 + m + n;
  out->shape[x->ndim - 1] = A_I(c, 0) ? max64(m, n) : k;
  return MG_OK;
}

/* linalg_eigh(a): (..., n+1, n). */
mg_status infer_linalg_eigh(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  mg_status st = need_matrix(c, x, "x", 1);
  if (st) return st;
  int64_t n = x->shape[x->ndim - 1];
  if (mg_is_probe(n))
    return mg_seterror(MG_ESHAPE, "linalg.%s: the matrix size must be known when the function is staged", LNAME(c));
  float_dtype(c, out);
  copy_shape(x, out);
  out->shape[x->ndim - 2] = n + 1;
  return MG_OK;
}

/* linalg_band_part(x, num_lower, num_upper): x's shape and dtype. */
mg_status infer_linalg_band_part(const mg_call *c, mg_meta *out) {
  mg_status st = need_matrix(c, c->in[0], "x", 0);
  if (st) return st;
  if (A_I(c, 0) < -1 || A_I(c, 1) < -1)
    return mg_seterror(MG_EARG, "linalg.%s: num_lower and num_upper must be >= -1 (-1 keeps the whole triangle), got %lld, %lld",
                       LNAME(c), (long long)A_I(c, 0), (long long)A_I(c, 1));
  out->dtype = (mg_dtype)c->in[0]->dtype;
  copy_shape(c->in[0], out);
  return MG_OK;
}
