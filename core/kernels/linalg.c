/*
 * linalg.c — the linear-algebra kernels, through LAPACK (Debian's liblapack,
 * reference LAPACK on the BLIS BLAS): LU (getrf/getri/getrs) for inv, solve,
 * det and slogdet, trtrs for triangular solves, potrf for Cholesky,
 * geqrf+orgqr for QR's Q, gesdd for the SVD and syevd for eigh. No
 * factorization is written here: this file moves data in and out of LAPACK's
 * layout and turns its info codes into errors.
 *
 * Layout: moongrad is row-major, LAPACK column-major. A row-major matrix read
 * as column-major is its transpose, which the LU ops use directly (inv(A^T)^T
 * = inv(A), det(A^T) = det(A), and solve factors A^T and asks getrs for the
 * transposed system). The others copy each matrix transposed into a
 * column-major workspace and the results back: O(n^2) next to the O(n^3)
 * factorization. The Fortran prototypes are declared here (no LAPACKE), with
 * the hidden length argument gfortran passes for each character argument.
 *
 * Batches: the matrices of a batch are independent and run in an OpenMP loop
 * above a work threshold, each with its own workspace. A matrix LAPACK
 * refuses (singular for inv/solve/triangular_solve, not positive-definite for
 * cholesky, no convergence for svd/eigh) is an error naming the op and the
 * batch element (the lowest failing one), as PyTorch's linalg does, not NaNs.
 * det and slogdet of a singular matrix are 0 and (0, -inf), as NumPy.
 */
#include "internal.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <blis.h>

/* ---- LAPACK (Fortran, column-major) ---------------------------------------------------------- */
typedef int lint;  /* LAPACK's INTEGER: 32-bit in Debian's liblapack */
void sgetrf_(const lint *m, const lint *n, float *a, const lint *lda, lint *ipiv, lint *info);
void dgetrf_(const lint *m, const lint *n, double *a, const lint *lda, lint *ipiv, lint *info);
void sgetri_(const lint *n, float *a, const lint *lda, const lint *ipiv, float *w, const lint *lw, lint *info);
void dgetri_(const lint *n, double *a, const lint *lda, const lint *ipiv, double *w, const lint *lw, lint *info);
void sgetrs_(const char *tr, const lint *n, const lint *nrhs, const float *a, const lint *lda, const lint *ipiv,
             float *b, const lint *ldb, lint *info, size_t);
void dgetrs_(const char *tr, const lint *n, const lint *nrhs, const double *a, const lint *lda, const lint *ipiv,
             double *b, const lint *ldb, lint *info, size_t);
void strtrs_(const char *uplo, const char *tr, const char *diag, const lint *n, const lint *nrhs, const float *a,
             const lint *lda, float *b, const lint *ldb, lint *info, size_t, size_t, size_t);
void dtrtrs_(const char *uplo, const char *tr, const char *diag, const lint *n, const lint *nrhs, const double *a,
             const lint *lda, double *b, const lint *ldb, lint *info, size_t, size_t, size_t);
void spotrf_(const char *uplo, const lint *n, float *a, const lint *lda, lint *info, size_t);
void dpotrf_(const char *uplo, const lint *n, double *a, const lint *lda, lint *info, size_t);
void sgeqrf_(const lint *m, const lint *n, float *a, const lint *lda, float *tau, float *w, const lint *lw, lint *info);
void dgeqrf_(const lint *m, const lint *n, double *a, const lint *lda, double *tau, double *w, const lint *lw, lint *info);
void sorgqr_(const lint *m, const lint *n, const lint *k, float *a, const lint *lda, const float *tau, float *w,
             const lint *lw, lint *info);
void dorgqr_(const lint *m, const lint *n, const lint *k, double *a, const lint *lda, const double *tau, double *w,
             const lint *lw, lint *info);
void sgesdd_(const char *jobz, const lint *m, const lint *n, float *a, const lint *lda, float *s, float *u,
             const lint *ldu, float *vt, const lint *ldvt, float *w, const lint *lw, lint *iw, lint *info, size_t);
void dgesdd_(const char *jobz, const lint *m, const lint *n, double *a, const lint *lda, double *s, double *u,
             const lint *ldu, double *vt, const lint *ldvt, double *w, const lint *lw, lint *iw, lint *info, size_t);
void ssyevd_(const char *jobz, const char *uplo, const lint *n, float *a, const lint *lda, float *w, float *work,
             const lint *lw, lint *iw, const lint *liw, lint *info, size_t, size_t);
void dsyevd_(const char *jobz, const char *uplo, const lint *n, double *a, const lint *lda, double *w, double *work,
             const lint *lw, lint *iw, const lint *liw, lint *info, size_t, size_t);

/* ---- shared plumbing ------------------------------------------------------------------------------ */

/* Floating-point work (multiply-adds) above which a batch runs in parallel. */
#define LA_PAR_WORK 200000.0

typedef struct la {
  const mg_call *c;
  int dbl;           /* float64 (else float32) */
  size_t es;         /* element size */
  int64_t batch;     /* matrices in the batch */
  int64_t bad;       /* lowest failing batch element, -1 none */
  lint bad_info;     /* LAPACK's info there */
} la;

static void la_init(la *L, const mg_call *c, const mg_tensor *x, int mat_dims) {
  L->c = c;
  L->dbl = x->dtype == MG_FLOAT64;
  L->es = L->dbl ? 8 : 4;
  L->batch = 1;
  for (int d = 0; d < x->ndim - mat_dims; d++) L->batch *= x->shape[d];
  L->bad = -1;
  L->bad_info = 0;
}

static void la_fail(la *L, int64_t b, lint info) {
#pragma omp critical  /* unnamed: a named one exports a .gomp_critical_user_* symbol */
  if (L->bad < 0 || b < L->bad) {
    L->bad = b;
    L->bad_info = info;
  }
}

/* The display name: linalg_inv -> linalg.inv. */
static void la_name(const mg_call *c, char *buf, size_t cap) {
  snprintf(buf, cap, "%s", c->info->name);
  if (!strncmp(buf, "linalg_", 7)) buf[6] = '.';
}

/* " (batch element {i, j})" for batched input (the index base of the context), else "". */
static void la_where(const la *L, const mg_tensor *x, char *buf, size_t cap) {
  buf[0] = 0;
  if (x->ndim <= 2) return;
  int base = L->c->ctx ? L->c->ctx->index_base : 0;
  int64_t idx[MG_MAX_DIMS], r = L->bad;
  for (int d = x->ndim - 3; d >= 0; d--) {
    idx[d] = r % x->shape[d];
    r /= x->shape[d];
  }
  size_t n = (size_t)snprintf(buf, cap, " (batch element {");
  for (int d = 0; d < x->ndim - 2 && n < cap; d++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? ", " : "", (long long)(idx[d] + base));
  if (n < cap) snprintf(buf + n, cap - n, "})");
}

/* Copies an r x k row-major block (row stride ld_src elements) into column-major (leading
 * dimension ld_dst), i.e. transposes the storage order; the same call goes back. */
static void la_transpose(int dbl, const void *src, int64_t r, int64_t k, int64_t ld_src, void *dst, int64_t ld_dst) {
  if (dbl) {
    const double *s = src;
    double *d = dst;
    for (int64_t i = 0; i < r; i++)
      for (int64_t j = 0; j < k; j++) d[j * ld_dst + i] = s[i * ld_src + j];
  } else {
    const float *s = src;
    float *d = dst;
    for (int64_t i = 0; i < r; i++)
      for (int64_t j = 0; j < k; j++) d[j * ld_dst + i] = s[i * ld_src + j];
  }
}

static double la_get(int dbl, const void *p, int64_t i) { return dbl ? ((const double *)p)[i] : ((const float *)p)[i]; }
static void la_set(int dbl, void *p, int64_t i, double v) {
  if (dbl)
    ((double *)p)[i] = v;
  else
    ((float *)p)[i] = (float)v;
}

/* Whether to run the batch loop in parallel: several matrices and enough work. */
static int la_par(const la *L, double per_matrix_work) {
  return L->batch > 1 && (double)L->batch * per_matrix_work >= LA_PAR_WORK;
}

static mg_status la_nomem(const mg_call *c) {
  char nm[64];
  la_name(c, nm, sizeof nm);
  return mg_seterror(MG_ENOMEM, "%s: out of memory for the LAPACK workspace", nm);
}

/* ---- inv ------------------------------------------------------------------------------------------- */

/* getrf + getri on the row-major storage (as column-major: A^T; inv(A^T)^T = inv(A)). */
static mg_status linalg_inv_body(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  la L;
  la_init(&L, c, x, 2);
  lint n = (lint)x->shape[x->ndim - 1];
  if (n == 0 || L.batch == 0) return MG_OK;
  mg_status st = mg_copy_into(out, x);
  if (st) return st;
  char *o = mg_ptr(out);
  int64_t nn = (int64_t)n * n;
  lint lw = 64 * n;
  int nomem = 0;
#pragma omp parallel if (la_par(&L, (double)nn * n))
  {
    lint *ipiv = malloc((size_t)n * sizeof(lint));
    void *w = malloc((size_t)lw * L.es);
    if (!ipiv || !w) {
#pragma omp atomic write
      nomem = 1;
    }
#pragma omp for schedule(dynamic)
    for (int64_t b = 0; b < L.batch; b++) {
      if (!ipiv || !w) continue;
      void *a = o + b * nn * (int64_t)L.es;
      lint info = 0;
      if (L.dbl) {
        dgetrf_(&n, &n, a, &n, ipiv, &info);
        if (!info) dgetri_(&n, a, &n, ipiv, w, &lw, &info);
      } else {
        sgetrf_(&n, &n, a, &n, ipiv, &info);
        if (!info) sgetri_(&n, a, &n, ipiv, w, &lw, &info);
      }
      if (info) la_fail(&L, b, info);
    }
    free(ipiv);
    free(w);
  }
  if (nomem) return la_nomem(c);
  if (L.bad >= 0) {
    char nm[64], wh[128];
    la_name(c, nm, sizeof nm);
    la_where(&L, x, wh, sizeof wh);
    return mg_seterror(MG_EARG,
                       "%s: the matrix is singular%s: pivot %d of its LU factorization is exactly zero, so it has no "
                       "inverse (mg.linalg.pinv gives a pseudo-inverse)",
                       nm, wh, (int)L.bad_info);
  }
  return MG_OK;
}

/* ---- solve ----------------------------------------------------------------------------------------- */

/* solve(a, b, adjoint): getrf of the storage (A^T), then getrs with trans 'T' for A x = b ('N' for
 * A^T x = b); b goes through a column-major workspace. */
static mg_status linalg_solve_body(const mg_call *c, mg_tensor *out) {
  const mg_tensor *a = c->in[0], *bm = c->in[1];
  la L;
  la_init(&L, c, a, 2);
  lint n = (lint)a->shape[a->ndim - 1], k = (lint)bm->shape[bm->ndim - 1];
  if (n == 0 || k == 0 || L.batch == 0) return MG_OK;
  const char *pa, *pb;
  mg_tensor *ta, *tb;
  mg_status st = mg_contiguous_input(c->info->name, a, &pa, &ta);
  if (st) return st;
  if ((st = mg_contiguous_input(c->info->name, bm, &pb, &tb))) {
    mg_tensor_release(ta);
    return st;
  }
  char *o = mg_ptr(out);
  int64_t nn = (int64_t)n * n, nk = (int64_t)n * k;
  const char tr = A_I(c, 0) ? 'N' : 'T';
  int nomem = 0;
#pragma omp parallel if (la_par(&L, (double)nn * (n + k)))
  {
    lint *ipiv = malloc((size_t)n * sizeof(lint));
    char *wa = malloc((size_t)(nn + nk) * L.es);
    if (!ipiv || !wa) {
#pragma omp atomic write
      nomem = 1;
    }
#pragma omp for schedule(dynamic)
    for (int64_t b = 0; b < L.batch; b++) {
      if (!ipiv || !wa) continue;
      char *wb = wa + nn * (int64_t)L.es;
      memcpy(wa, pa + b * nn * (int64_t)L.es, (size_t)nn * L.es);
      la_transpose(L.dbl, pb + b * nk * (int64_t)L.es, n, k, k, wb, n);
      lint info = 0;
      if (L.dbl) {
        dgetrf_(&n, &n, (double *)wa, &n, ipiv, &info);
        if (!info) dgetrs_(&tr, &n, &k, (double *)wa, &n, ipiv, (double *)wb, &n, &info, 1);
      } else {
        sgetrf_(&n, &n, (float *)wa, &n, ipiv, &info);
        if (!info) sgetrs_(&tr, &n, &k, (float *)wa, &n, ipiv, (float *)wb, &n, &info, 1);
      }
      if (info) la_fail(&L, b, info);
      else la_transpose(L.dbl, wb, k, n, n, o + b * nk * (int64_t)L.es, k);
    }
    free(ipiv);
    free(wa);
  }
  mg_tensor_release(ta);
  mg_tensor_release(tb);
  if (nomem) return la_nomem(c);
  if (L.bad >= 0) {
    char nm[64], wh[128];
    la_name(c, nm, sizeof nm);
    la_where(&L, a, wh, sizeof wh);
    return mg_seterror(MG_EARG,
                       "%s: the matrix is singular%s: pivot %d of its LU factorization is exactly zero, so the "
                       "system has no unique solution (mg.linalg.lstsq or pinv give a least-squares one)",
                       nm, wh, (int)L.bad_info);
  }
  return MG_OK;
}

/* ---- triangular_solve ------------------------------------------------------------------------------ */

/* trtrs on the storage of a (column-major A^T: upper when A is lower), trans 'T' for A x = b. Only
 * a's named triangle is read. An exactly zero diagonal element is an error (LAPACK's check). */
static mg_status linalg_triangular_solve_body(const mg_call *c, mg_tensor *out) {
  const mg_tensor *a = c->in[0], *bm = c->in[1];
  la L;
  la_init(&L, c, a, 2);
  lint n = (lint)a->shape[a->ndim - 1], k = (lint)bm->shape[bm->ndim - 1];
  if (n == 0 || k == 0 || L.batch == 0) return MG_OK;
  const char *pa, *pb;
  mg_tensor *ta, *tb;
  mg_status st = mg_contiguous_input(c->info->name, a, &pa, &ta);
  if (st) return st;
  if ((st = mg_contiguous_input(c->info->name, bm, &pb, &tb))) {
    mg_tensor_release(ta);
    return st;
  }
  char *o = mg_ptr(out);
  int64_t nn = (int64_t)n * n, nk = (int64_t)n * k;
  const char uplo = A_I(c, 0) ? 'U' : 'L', tr = A_I(c, 1) ? 'N' : 'T', dg = 'N';
  int nomem = 0;
#pragma omp parallel if (la_par(&L, (double)nn * k))
  {
    char *wb = malloc((size_t)nk * L.es);
    if (!wb) {
#pragma omp atomic write
      nomem = 1;
    }
#pragma omp for schedule(dynamic)
    for (int64_t b = 0; b < L.batch; b++) {
      if (!wb) continue;
      la_transpose(L.dbl, pb + b * nk * (int64_t)L.es, n, k, k, wb, n);
      const char *ab = pa + b * nn * (int64_t)L.es;
      lint info = 0;
      if (L.dbl)
        dtrtrs_(&uplo, &tr, &dg, &n, &k, (const double *)ab, &n, (double *)wb, &n, &info, 1, 1, 1);
      else
        strtrs_(&uplo, &tr, &dg, &n, &k, (const float *)ab, &n, (float *)wb, &n, &info, 1, 1, 1);
      if (info) la_fail(&L, b, info);
      else la_transpose(L.dbl, wb, k, n, n, o + b * nk * (int64_t)L.es, k);
    }
    free(wb);
  }
  mg_tensor_release(ta);
  mg_tensor_release(tb);
  if (nomem) return la_nomem(c);
  if (L.bad >= 0) {
    char nm[64], wh[128];
    la_name(c, nm, sizeof nm);
    la_where(&L, a, wh, sizeof wh);
    return mg_seterror(MG_EARG, "%s: the triangular matrix is singular%s: its diagonal element %d is exactly zero", nm,
                       wh, (int)L.bad_info);
  }
  return MG_OK;
}

/* ---- det, slogdet ---------------------------------------------------------------------------------- */

/* getrf of a copy; det = +-prod(diag U) (the sign from the row swaps). A singular matrix gives 0 (det)
 * or sign 0 and log|det| = -inf (slogdet), as NumPy. slogdet sums logs, so it neither overflows nor
 * underflows where the determinant itself would. */
static mg_status linalg_det_body(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  la L;
  la_init(&L, c, x, 2);
  int slog = c->op == MG_OP_LINALG_SLOGDET;
  lint n = (lint)x->shape[x->ndim - 1];
  char *o = mg_ptr(out);
  if (L.batch == 0) return MG_OK;
  const char *px;
  mg_tensor *tx;
  mg_status st = mg_contiguous_input(c->info->name, x, &px, &tx);
  if (st) return st;
  int64_t nn = (int64_t)n * n;
  int nomem = 0;
#pragma omp parallel if (la_par(&L, (double)nn * n))
  {
    lint *ipiv = malloc((size_t)(n ? n : 1) * sizeof(lint));
    char *wa = malloc((size_t)(nn ? nn : 1) * L.es);
    if (!ipiv || !wa) {
#pragma omp atomic write
      nomem = 1;
    }
#pragma omp for schedule(dynamic)
    for (int64_t b = 0; b < L.batch; b++) {
      if (!ipiv || !wa) continue;
      memcpy(wa, px + b * nn * (int64_t)L.es, (size_t)nn * L.es);
      lint info = 0;
      if (n) {
        if (L.dbl) dgetrf_(&n, &n, (double *)wa, &n, ipiv, &info);
        else sgetrf_(&n, &n, (float *)wa, &n, ipiv, &info);
      }
      double sign = 1, logabs = 0, prod = 1;
      if (info > 0) {
        sign = 0;
        logabs = -INFINITY;
        prod = 0;
      } else {
        for (lint i = 0; i < n; i++) {
          double u = la_get(L.dbl, wa, (int64_t)i * n + i);
          if (ipiv[i] != i + 1) sign = -sign;
          if (u < 0) sign = -sign;
          logabs += log(fabs(u));
          prod *= u;
        }
        if (ipiv && n) {
          /* prod carries the sign of the diagonal; the swaps flip it */
          int swaps = 0;
          for (lint i = 0; i < n; i++) swaps += ipiv[i] != i + 1;
          if (swaps & 1) prod = -prod;
        }
      }
      if (slog) {
        la_set(L.dbl, o, 2 * b, sign);
        la_set(L.dbl, o, 2 * b + 1, logabs);
      } else {
        la_set(L.dbl, o, b, prod);
      }
    }
    free(ipiv);
    free(wa);
  }
  mg_tensor_release(tx);
  if (nomem) return la_nomem(c);
  return MG_OK;
}

/* ---- cholesky -------------------------------------------------------------------------------------- */

/* potrf('L') on a column-major copy (reads x's lower triangle, as TF and PyTorch); the upper
 * triangle of the result is zero. */
static mg_status linalg_cholesky_body(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  la L;
  la_init(&L, c, x, 2);
  lint n = (lint)x->shape[x->ndim - 1];
  if (n == 0 || L.batch == 0) return MG_OK;
  const char *px;
  mg_tensor *tx;
  mg_status st = mg_contiguous_input(c->info->name, x, &px, &tx);
  if (st) return st;
  char *o = mg_ptr(out);
  int64_t nn = (int64_t)n * n;
  const char uplo = 'L';
  int nomem = 0;
#pragma omp parallel if (la_par(&L, (double)nn * n / 3))
  {
    char *wa = malloc((size_t)nn * L.es);
    if (!wa) {
#pragma omp atomic write
      nomem = 1;
    }
#pragma omp for schedule(dynamic)
    for (int64_t b = 0; b < L.batch; b++) {
      if (!wa) continue;
      la_transpose(L.dbl, px + b * nn * (int64_t)L.es, n, n, n, wa, n);
      lint info = 0;
      if (L.dbl) dpotrf_(&uplo, &n, (double *)wa, &n, &info, 1);
      else spotrf_(&uplo, &n, (float *)wa, &n, &info, 1);
      if (info) {
        la_fail(&L, b, info);
        continue;
      }
      char *ob = o + b * nn * (int64_t)L.es;
      la_transpose(L.dbl, wa, n, n, n, ob, n);
      for (lint i = 0; i < n; i++)
        for (lint j = i + 1; j < n; j++) la_set(L.dbl, ob, (int64_t)i * n + j, 0);
    }
    free(wa);
  }
  mg_tensor_release(tx);
  if (nomem) return la_nomem(c);
  if (L.bad >= 0) {
    char nm[64], wh[128];
    la_name(c, nm, sizeof nm);
    la_where(&L, x, wh, sizeof wh);
    return mg_seterror(MG_EARG,
                       "%s: the matrix is not positive-definite%s: its leading minor of order %d is not positive "
                       "(the factorization reads the lower triangle of a symmetric matrix)",
                       nm, wh, (int)L.bad_info);
  }
  return MG_OK;
}

/* ---- qr (Q) ---------------------------------------------------------------------------------------- */

/* geqrf + orgqr on a column-major copy: Q (m x min(m, n), or m x m with mode complete). R is
 * Q^T a with its lower part cut (the stdlib), so that its gradient flows through Q's. */
static mg_status linalg_qr_q_body(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  la L;
  la_init(&L, c, x, 2);
  lint m = (lint)x->shape[x->ndim - 2], n = (lint)x->shape[x->ndim - 1];
  lint k = m < n ? m : n, qc = A_I(c, 0) == 1 ? m : k, cols = n > qc ? n : qc;
  if (m == 0 || qc == 0 || L.batch == 0) return MG_OK;
  if (k == 0) {  /* a 0-column input: Q is the identity's first columns */
    char *o = mg_ptr(out);
    for (int64_t b = 0; b < L.batch; b++)
      for (lint i = 0; i < m; i++)
        for (lint j = 0; j < qc; j++) la_set(L.dbl, o, (b * m + i) * qc + j, i == j);
    return MG_OK;
  }
  const char *px;
  mg_tensor *tx;
  mg_status st = mg_contiguous_input(c->info->name, x, &px, &tx);
  if (st) return st;
  char *o = mg_ptr(out);
  int64_t mn = (int64_t)m * n;
  lint lw = 64 * (cols > 1 ? cols : 1);
  int nomem = 0;
#pragma omp parallel if (la_par(&L, (double)mn * k))
  {
    char *wa = malloc((size_t)((int64_t)m * cols + k + lw) * L.es);
    if (!wa) {
#pragma omp atomic write
      nomem = 1;
    }
#pragma omp for schedule(dynamic)
    for (int64_t b = 0; b < L.batch; b++) {
      if (!wa) continue;
      char *tau = wa + (int64_t)m * cols * (int64_t)L.es, *w = tau + (int64_t)k * (int64_t)L.es;
      la_transpose(L.dbl, px + b * mn * (int64_t)L.es, m, n, n, wa, m);
      lint info = 0;
      if (L.dbl) {
        dgeqrf_(&m, &n, (double *)wa, &m, (double *)tau, (double *)w, &lw, &info);
        if (!info) dorgqr_(&m, &qc, &k, (double *)wa, &m, (double *)tau, (double *)w, &lw, &info);
      } else {
        sgeqrf_(&m, &n, (float *)wa, &m, (float *)tau, (float *)w, &lw, &info);
        if (!info) sorgqr_(&m, &qc, &k, (float *)wa, &m, (float *)tau, (float *)w, &lw, &info);
      }
      if (info) la_fail(&L, b, info);
      else la_transpose(L.dbl, wa, qc, m, m, o + b * (int64_t)m * qc * (int64_t)L.es, qc);
    }
    free(wa);
  }
  mg_tensor_release(tx);
  if (nomem) return la_nomem(c);
  if (L.bad >= 0) {
    char nm[64];
    la_name(c, nm, sizeof nm);
    return mg_seterror(MG_ESTATE, "%s: LAPACK's geqrf/orgqr failed with info %d", nm, (int)L.bad_info);
  }
  return MG_OK;
}

/* ---- svd ------------------------------------------------------------------------------------------- */

/* gesdd on a column-major copy; the packed result of infer_linalg_svd (S, then U, then V). */
static mg_status linalg_svd_body(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  la L;
  la_init(&L, c, x, 2);
  int full = (int)A_I(c, 0), uv = (int)A_I(c, 1);
  lint m = (lint)x->shape[x->ndim - 2], n = (lint)x->shape[x->ndim - 1], k = m < n ? m : n;
  int64_t W = uv ? (full ? (m > n ? m : n) : k) : k, rows = uv ? 1 + (int64_t)m + n : 1;
  char *o = mg_ptr(out);
  if (L.batch == 0) return MG_OK;
  memset(o, 0, (size_t)(L.batch * rows * W) * L.es);
  lint ucols = full ? m : k, vrows = full ? n : k;
  if (k == 0) {  /* empty: U and V are identities (full) or empty */
    if (uv && full)
      for (int64_t b = 0; b < L.batch; b++) {
        char *ob = o + b * rows * W * (int64_t)L.es;
        for (lint i = 0; i < m; i++) la_set(L.dbl, ob, (1 + i) * W + i, 1);
        for (lint i = 0; i < n; i++) la_set(L.dbl, ob, (1 + m + i) * W + i, 1);
      }
    return MG_OK;
  }
  const char *px;
  mg_tensor *tx;
  mg_status st = mg_contiguous_input(c->info->name, x, &px, &tx);
  if (st) return st;
  const char jobz = uv ? (full ? 'A' : 'S') : 'N';
  lint ldu = m, ldvt = full ? n : k;
  int64_t mn = (int64_t)m * n;
  /* workspace size: LAPACK's own query, once */
  lint lw = -1, info = 0, *iw0 = malloc((size_t)8 * k * sizeof(lint));
  double q = 0;
  float qf = 0;
  if (!iw0) {
    mg_tensor_release(tx);
    return la_nomem(c);
  }
  if (L.dbl) dgesdd_(&jobz, &m, &n, NULL, &m, NULL, NULL, &ldu, NULL, &ldvt, &q, &lw, iw0, &info, 1);
  else {
    sgesdd_(&jobz, &m, &n, NULL, &m, NULL, NULL, &ldu, NULL, &ldvt, &qf, &lw, iw0, &info, 1);
    q = qf;
  }
  free(iw0);
  lw = (lint)q + 1;
  int nomem = 0;
#pragma omp parallel if (la_par(&L, (double)mn * k * 4))
  {
    size_t elems = (size_t)(mn + k + (int64_t)ldu * ucols + (int64_t)ldvt * n + lw);
    char *wa = malloc(elems * L.es);
    lint *iw = malloc((size_t)8 * k * sizeof(lint));
    if (!wa || !iw) {
#pragma omp atomic write
      nomem = 1;
    }
#pragma omp for schedule(dynamic)
    for (int64_t b = 0; b < L.batch; b++) {
      if (!wa || !iw) continue;
      char *s = wa + mn * (int64_t)L.es, *u = s + (int64_t)k * (int64_t)L.es;
      char *vt = u + (int64_t)ldu * ucols * (int64_t)L.es, *w = vt + (int64_t)ldvt * n * (int64_t)L.es;
      la_transpose(L.dbl, px + b * mn * (int64_t)L.es, m, n, n, wa, m);
      lint inf = 0;
      if (L.dbl)
        dgesdd_(&jobz, &m, &n, (double *)wa, &m, (double *)s, (double *)u, &ldu, (double *)vt, &ldvt, (double *)w,
                &lw, iw, &inf, 1);
      else
        sgesdd_(&jobz, &m, &n, (float *)wa, &m, (float *)s, (float *)u, &ldu, (float *)vt, &ldvt, (float *)w, &lw,
                iw, &inf, 1);
      if (inf) {
        la_fail(&L, b, inf);
        continue;
      }
      char *ob = o + b * rows * W * (int64_t)L.es;
      memcpy(ob, s, (size_t)k * L.es);
      if (!uv) continue;
      /* U (m x ucols, column-major, ld m) -> rows 2..m+1 (row stride W) */
      la_transpose(L.dbl, u, ucols, m, ldu, ob + W * (int64_t)L.es, W);
      /* V = VT^T: VT is vrows x n column-major (ld ldvt), i.e. row-major V (n x vrows) with row stride ldvt */
      for (lint i = 0; i < n; i++)
        memcpy(ob + ((1 + (int64_t)m + i) * W) * (int64_t)L.es, vt + (int64_t)i * ldvt * (int64_t)L.es,
               (size_t)vrows * L.es);
    }
    free(wa);
    free(iw);
  }
  mg_tensor_release(tx);
  if (nomem) return la_nomem(c);
  if (L.bad >= 0) {
    char nm[64], wh[128];
    la_name(c, nm, sizeof nm);
    la_where(&L, x, wh, sizeof wh);
    return mg_seterror(MG_EARG, "%s: the SVD did not converge%s (LAPACK gesdd info %d; is there a NaN or inf?)", nm,
                       wh, (int)L.bad_info);
  }
  return MG_OK;
}

/* ---- eigh ------------------------------------------------------------------------------------------ */

/* Each eigenvector (a column of the column-major v) signed so that its component of largest
 * magnitude (the first such) is positive: LAPACK's signs depend on the build, the precision and
 * the CPU, and an eigenvector is defined only up to sign, so a canonical one makes results
 * reproducible (float32 against float64, one machine against another). */
static void eigh_canonical_signs(int dbl, char *v, lint n) {
  for (lint j = 0; j < n; j++) {
    lint best = 0;
    double bm = -1;
    for (lint i = 0; i < n; i++) {
      double a = dbl ? fabs(((double *)v)[j * n + i]) : fabsf(((float *)v)[j * n + i]);
      if (a > bm) bm = a, best = i;
    }
    int neg = dbl ? ((double *)v)[j * n + best] < 0 : ((float *)v)[j * n + best] < 0;
    for (lint i = 0; neg && i < n; i++) {
      if (dbl) ((double *)v)[j * n + i] = -((double *)v)[j * n + i];
      else ((float *)v)[j * n + i] = -((float *)v)[j * n + i];
    }
  }
}

/* syevd('V', 'L') on a column-major copy (reads x's lower triangle, as TF and PyTorch); each
 * eigenvector's largest component made positive (eigh_canonical_signs). */
static mg_status linalg_eigh_body(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  la L;
  la_init(&L, c, x, 2);
  lint n = (lint)x->shape[x->ndim - 1];
  if (n == 0 || L.batch == 0) return MG_OK;
  const char *px;
  mg_tensor *tx;
  mg_status st = mg_contiguous_input(c->info->name, x, &px, &tx);
  if (st) return st;
  char *o = mg_ptr(out);
  int64_t nn = (int64_t)n * n;
  const char jobz = 'V', uplo = 'L';
  lint lw = 1 + 6 * n + 2 * n * n, liw = 3 + 5 * n;
  int nomem = 0;
#pragma omp parallel if (la_par(&L, (double)nn * n * 4))
  {
    char *wa = malloc((size_t)(nn + n + lw) * L.es);
    lint *iw = malloc((size_t)liw * sizeof(lint));
    if (!wa || !iw) {
#pragma omp atomic write
      nomem = 1;
    }
#pragma omp for schedule(dynamic)
    for (int64_t b = 0; b < L.batch; b++) {
      if (!wa || !iw) continue;
      char *ev = wa + nn * (int64_t)L.es, *w = ev + (int64_t)n * (int64_t)L.es;
      la_transpose(L.dbl, px + b * nn * (int64_t)L.es, n, n, n, wa, n);
      lint info = 0;
      if (L.dbl)
        dsyevd_(&jobz, &uplo, &n, (double *)wa, &n, (double *)ev, (double *)w, &lw, iw, &liw, &info, 1, 1);
      else
        ssyevd_(&jobz, &uplo, &n, (float *)wa, &n, (float *)ev, (float *)w, &lw, iw, &liw, &info, 1, 1);
      if (info) {
        la_fail(&L, b, info);
        continue;
      }
      eigh_canonical_signs(L.dbl, wa, n);
      char *ob = o + b * (nn + n) * (int64_t)L.es;
      memcpy(ob, ev, (size_t)n * L.es);
      la_transpose(L.dbl, wa, n, n, n, ob + (int64_t)n * (int64_t)L.es, n);
    }
    free(wa);
    free(iw);
  }
  mg_tensor_release(tx);
  if (nomem) return la_nomem(c);
  if (L.bad >= 0) {
    char nm[64], wh[128];
    la_name(c, nm, sizeof nm);
    la_where(&L, x, wh, sizeof wh);
    return mg_seterror(MG_EARG, "%s: the eigenvalue solver did not converge%s (LAPACK syevd info %d; is there a NaN or inf?)",
                       nm, wh, (int)L.bad_info);
  }
  return MG_OK;
}

/* ---- band_part ------------------------------------------------------------------------------------- */

/* TF's matrix_band_part: element (i, j) is kept when (num_lower < 0 or i - j <= num_lower) and
 * (num_upper < 0 or j - i <= num_upper), else zero; any dtype (bytes moved as they are). */
mg_status k_linalg_band_part(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  int64_t lo = A_I(c, 0), up = A_I(c, 1);
  int64_t r = x->shape[x->ndim - 2], k = x->shape[x->ndim - 1], batch = 1;
  for (int d = 0; d < x->ndim - 2; d++) batch *= x->shape[d];
  const char *px;
  mg_tensor *tx;
  mg_status st = mg_contiguous_input(c->info->name, x, &px, &tx);
  if (st) return st;
  size_t es = mg_dtype_size((mg_dtype)x->dtype);
  char *o = mg_ptr(out);
  int64_t total = batch * r;
#pragma omp parallel for if (total * k >= MG_PAR_MIN)
  for (int64_t t = 0; t < total; t++) {
    int64_t i = t % r;
    const char *src = px + t * k * (int64_t)es;
    char *dst = o + t * k * (int64_t)es;
    for (int64_t j = 0; j < k; j++) {
      int keep = (lo < 0 || i - j <= lo) && (up < 0 || j - i <= up);
      if (keep) memcpy(dst + j * (int64_t)es, src + j * (int64_t)es, es);
      else memset(dst + j * (int64_t)es, 0, es);
    }
  }
  mg_tensor_release(tx);
  return MG_OK;
}

/* ---- the kernels of the table: LAPACK with single-threaded BLIS ---------------------------------- */

/* Reference LAPACK factors a matrix in panels whose recursion makes thousands of tiny BLAS calls
 * (trsm and gemm on a few columns). Multi-threaded BLIS opens a parallel region with spinning
 * barriers for each of them: measured here, solve 512 took 14 ms on one thread and did not finish in
 * 50 s with two while other processes loaded the 2 cores (each barrier waits for a descheduled
 * thread). So LAPACK runs with BLIS on one thread, and batches are parallel over their matrices
 * (la_par) instead. BLIS's thread count is a process-wide setting: a matmul running meanwhile in
 * another thread of the host runs single-threaded for that time, never wrongly. */
static mg_status la_single_blis(mg_status (*body)(const mg_call *, mg_tensor *), const mg_call *c, mg_tensor *out) {
  bli_thread_set_num_threads(1);
  mg_status st = body(c, out);
  bli_thread_set_num_threads(mg_threads());
  return st;
}
mg_status k_linalg_inv(const mg_call *c, mg_tensor *out) { return la_single_blis(linalg_inv_body, c, out); }
mg_status k_linalg_solve(const mg_call *c, mg_tensor *out) { return la_single_blis(linalg_solve_body, c, out); }
mg_status k_linalg_triangular_solve(const mg_call *c, mg_tensor *out) { return la_single_blis(linalg_triangular_solve_body, c, out); }
mg_status k_linalg_det(const mg_call *c, mg_tensor *out) { return la_single_blis(linalg_det_body, c, out); }
mg_status k_linalg_cholesky(const mg_call *c, mg_tensor *out) { return la_single_blis(linalg_cholesky_body, c, out); }
mg_status k_linalg_qr_q(const mg_call *c, mg_tensor *out) { return la_single_blis(linalg_qr_q_body, c, out); }
mg_status k_linalg_svd(const mg_call *c, mg_tensor *out) { return la_single_blis(linalg_svd_body, c, out); }
mg_status k_linalg_eigh(const mg_call *c, mg_tensor *out) { return la_single_blis(linalg_eigh_body, c, out); }
