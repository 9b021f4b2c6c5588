/*
 * grad_linalg.c — gradient rules of the linear-algebra ops (kernels/linalg.c),
 * the standard formulas written with other ops (so they are differentiable
 * again, and staged functions record them like any op).
 *
 *   inv        gA = -inv^T g inv^T
 *   solve      gb = solve(A^T, g), gA = -gb x^T (adjoint: gb = solve(A, g), gA = -x gb^T)
 *   triangular_solve   the same with triangular solves, gA cut to A's triangle
 *   det        gA = g det inv(A)^T; slogdet: g_logabs inv(A)^T (the sign has none).
 *              Both need inv(A): at a singular A the gradient is an error (as TF).
 *   cholesky   PyTorch's: gA = L^-T Phi(L^T gL) L^-1, Phi = the lower triangle with the
 *              diagonal halved, symmetrised; then folded onto the lower triangle the kernel
 *              reads (below)
 *   qr_q       TF's QrGrad with dR = 0 (R = triu(Q^T A) is built from Q in the stdlib, so
 *              R's own gradient reaches A through Q and the matmul); m < n splits A = [X Y]
 *              as TF. mode "complete" with m > n has no gradient (as TF), an error.
 *   eigh       TF's: gA = V (diag(gw) + F o (V^T gV)) V^T, F_ij = 1/(w_j - w_i), folded onto
 *              the lower triangle. Undefined (inf/NaN) for repeated eigenvalues when gV is
 *              nonzero, as in TF and PyTorch.
 *   svd        PyTorch's: gA = U[(skew(U^T gU)/E) S + S (skew(V^T gV)/E) + diag(gS)]V^T
 *              + (I - UU^T) gU S^-1 V^T + U S^-1 gV^T (I - VV^T), E_jk = S_k^2 - S_j^2.
 *              Undefined for repeated (or, for the last two terms, zero) singular values
 *              when gU/gV are nonzero; full_matrices with m != n has no gradient (as TF).
 *
 * Folding: cholesky and eigh read only the lower triangle of their input, so the exact
 * gradient of the op is zero above the diagonal and G + G^T below it (G the gradient of
 * the symmetric matrix), the diagonal G_ii: tril(G + G^T) with the diagonal halved (TF's
 * eigh rule). For an input built symmetric (A = B B^T, or (B + B^T)/2) this gives the same
 * gradient to B as the symmetric convention.
 */
#include "grad_scope.h"
#include <stdint.h>

static mg_tensor *T(gs *s, mg_tensor *x) { return A1(s, MG_OP_TRANSPOSE, x); }
static mg_tensor *mm(gs *s, mg_tensor *a, mg_tensor *b) { return A2(s, MG_OP_MATMUL, a, b); }
static mg_tensor *sub(gs *s, mg_tensor *a, mg_tensor *b) { return A2(s, MG_OP_SUB, a, b); }
static mg_tensor *add(gs *s, mg_tensor *a, mg_tensor *b) { return A2(s, MG_OP_ADD, a, b); }
static mg_tensor *dv(gs *s, mg_tensor *a, mg_tensor *b) { return A2(s, MG_OP_DIV, a, b); }
static mg_tensor *neg(gs *s, mg_tensor *a) { return A1(s, MG_OP_NEG, a); }

static mg_tensor *band(gs *s, mg_tensor *x, int64_t lo, int64_t up) {
  mg_attrs a = {.set = 3u};
  a.v[0].n = a.v[1].n = 1;
  a.v[0].i[0] = lo;
  a.v[1].i[0] = up;
  return app(s, MG_OP_LINALG_BAND_PART, &x, 1, &a);
}

static mg_tensor *solve(gs *s, mg_tensor *a, mg_tensor *b, int adjoint) {
  mg_attrs at = {.set = 1u};
  at.v[0].n = 1;
  at.v[0].i[0] = adjoint;
  mg_tensor *in[2] = {a, b};
  return app(s, MG_OP_LINALG_SOLVE, in, 2, &at);
}

static mg_tensor *trisolve(gs *s, mg_tensor *a, mg_tensor *b, int lower, int adjoint) {
  mg_attrs at = {.set = 3u};
  at.v[0].n = at.v[1].n = 1;
  at.v[0].i[0] = lower;
  at.v[1].i[0] = adjoint;
  mg_tensor *in[2] = {a, b};
  return app(s, MG_OP_LINALG_TRIANGULAR_SOLVE, in, 2, &at);
}

/* x R^-T for an upper-triangular R: (R^-1 x^T)^T. */
static mg_tensor *right_solve_rt(gs *s, mg_tensor *x, mg_tensor *r) { return T(s, trisolve(s, r, T(s, x), 0, 0)); }

/* x[..., r0:r1, c0:c1] (0-based, end exclusive). */
static mg_tensor *block(gs *s, mg_tensor *x, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  if (s->st) return NULL;
  mg_attrs a = {.set = 7u};
  int nd = x->ndim;
  for (int k = 0; k < 3; k++) a.v[k].n = nd;
  for (int d = 0; d < nd; d++) {
    a.v[0].i[d] = 0;
    a.v[1].i[d] = INT64_MAX;
    a.v[2].i[d] = 1;
  }
  a.v[0].i[nd - 2] = r0;
  a.v[1].i[nd - 2] = r1;
  a.v[0].i[nd - 1] = c0;
  a.v[1].i[nd - 1] = c1;
  return app(s, MG_OP_SLICE, &x, 1, &a);
}

static mg_tensor *eye(gs *s, int64_t n, mg_dtype dt) {
  mg_attrs a = {.set = 7u};
  a.v[0].n = a.v[1].n = a.v[2].n = 1;
  a.v[0].i[0] = n;
  a.v[1].i[0] = -1;
  a.v[2].i[0] = dt;
  return app(s, MG_OP_EYE, NULL, 0, &a);
}

/* The gradient of an op that reads only the lower triangle of its (symmetric) input, from the
 * gradient G of the symmetric matrix: tril(G + G^T) with the diagonal halved. */
static mg_tensor *fold_lower(gs *s, mg_tensor *G) {
  mg_tensor *t = band(s, add(s, G, T(s, G)), -1, 0);
  return sub(s, t, mulc(s, band(s, t, 0, 0), 0.5));
}

static int64_t rows(const mg_tensor *x) { return x->shape[x->ndim - 2]; }
static int64_t cols(const mg_tensor *x) { return x->shape[x->ndim - 1]; }

RULE(grad_linalg_inv) {
  gs s = gs_begin(g);
  mg_tensor *it = T(&s, OUT);
  SET(0, neg(&s, mm(&s, mm(&s, it, GOUT), it)));
  return gs_end(&s);
}

/* solve(a, b, adjoint) and triangular_solve(a, b, lower, adjoint). */
static mg_status grad_solves(const mg_grad_call *g, int tri) {
  gs s = gs_begin(g);
  int adj = (int)g->attrs->v[tri ? 1 : 0].i[0], lower = tri ? (int)g->attrs->v[0].i[0] : 0;
  mg_tensor *gb = tri ? trisolve(&s, X, GOUT, lower, !adj) : solve(&s, X, GOUT, !adj);
  if (NEED(0)) {
    mg_tensor *ga = adj ? neg(&s, mm(&s, OUT, T(&s, gb))) : neg(&s, mm(&s, gb, T(&s, OUT)));
    if (tri) ga = band(&s, ga, lower ? -1 : 0, lower ? 0 : -1);
    SET(0, ga);
  }
  SET(1, gb);
  return gs_end(&s);
}
RULE(grad_linalg_solve) { return grad_solves(g, 0); }
RULE(grad_linalg_triangular_solve) { return grad_solves(g, 1); }

RULE(grad_linalg_det) {
  gs s = gs_begin(g);
  mg_tensor *c;
  if (g->op == MG_OP_LINALG_SLOGDET) {
    mg_attrs a = {.set = 3u};
    a.v[0].n = a.v[1].n = 1;
    a.v[0].i[0] = -1;
    a.v[1].i[0] = 1 + base(g);
    c = app(&s, MG_OP_SELECT, (mg_tensor *const *)&g->gout, 1, &a);  /* g of log|det| */
  } else {
    c = mul(&s, GOUT, OUT);
  }
  c = unsqueeze(&s, g, unsqueeze(&s, g, c, -1), -1);
  mg_tensor *inv = A1(&s, MG_OP_LINALG_INV, X);
  SET(0, mul(&s, c, T(&s, inv)));
  return gs_end(&s);
}

RULE(grad_linalg_cholesky) {
  gs s = gs_begin(g);
  mg_tensor *L = OUT;
  mg_tensor *P = band(&s, mm(&s, T(&s, L), GOUT), -1, 0);
  mg_tensor *M = mulc(&s, add(&s, P, T(&s, sub(&s, P, band(&s, P, 0, 0)))), 0.5);  /* sym(Phi(P)) */
  mg_tensor *Z = trisolve(&s, L, M, 1, 1);                                          /* L^-T M */
  mg_tensor *G = T(&s, trisolve(&s, L, T(&s, Z), 1, 1));                            /* Z L^-1 */
  SET(0, fold_lower(&s, G));
  return gs_end(&s);
}

/* TF's QrGrad for m >= n (dR = 0): (Q tril(Q^T dQ - dQ^T Q) + dQ - Q Q^T dQ) R^-T. */
static mg_tensor *qr_grad_deep(gs *s, mg_tensor *q, mg_tensor *r, mg_tensor *dq) {
  mg_tensor *qdq = mm(s, T(s, q), dq);
  mg_tensor *tril = band(s, sub(s, qdq, T(s, qdq)), -1, 0);
  mg_tensor *x = add(s, sub(s, mm(s, q, tril), mm(s, q, qdq)), dq);
  return right_solve_rt(s, x, r);
}

RULE(grad_linalg_qr_q) {
  int64_t m = rows(X), n = cols(X);
  if (g->attrs->v[0].i[0] == 1 && m > n)
    return mg_seterror(MG_EARG,
                       "linalg.qr: the gradient of the QR decomposition is not defined for mode \"complete\" "
                       "with more rows than columns (%lld > %lld), as in TensorFlow: use mode \"reduced\"",
                       (long long)m, (long long)n);
  gs s = gs_begin(g);
  mg_tensor *q = OUT;
  if (m >= n) {
    mg_tensor *r = band(&s, mm(&s, T(&s, q), X), 0, -1);
    SET(0, qr_grad_deep(&s, q, r, GOUT));
  } else {
    /* A = [X Y] with X square (m x m): Q depends on X alone, whose R is u = triu(Q^T X). */
    mg_tensor *x = block(&s, X, 0, m, 0, m);
    mg_tensor *u = band(&s, mm(&s, T(&s, q), x), 0, -1);
    mg_tensor *dx = qr_grad_deep(&s, q, u, GOUT);
    if (NEED(0) && !s.st) {
      mg_attrs pa = {.set = 1u};
      pa.v[0].n = 2 * X->ndim;
      for (int d = 0; d < 2 * X->ndim; d++) pa.v[0].i[d] = 0;
      pa.v[0].i[2 * X->ndim - 1] = n - m;
      SET(0, app(&s, MG_OP_PAD, &dx, 1, &pa));
    }
  }
  return gs_end(&s);
}

RULE(grad_linalg_eigh) {
  gs s = gs_begin(g);
  int64_t n = cols(X);
  mg_tensor *w = block(&s, OUT, 0, 1, 0, n), *V = block(&s, OUT, 1, n + 1, 0, n);
  mg_tensor *gw = block(&s, GOUT, 0, 1, 0, n), *gV = block(&s, GOUT, 1, n + 1, 0, n);
  mg_tensor *I = eye(&s, n, (mg_dtype)OUT->dtype);
  /* F_ij = 1/(w_j - w_i) off the diagonal, 0 on it: 1/(E + I) - I */
  mg_tensor *F = sub(&s, dv(&s, S(&s, 1), add(&s, sub(&s, w, T(&s, w)), I)), I);
  mg_tensor *inner = add(&s, mul(&s, I, gw), mul(&s, F, mm(&s, T(&s, V), gV)));
  mg_tensor *G = mm(&s, mm(&s, V, inner), T(&s, V));
  SET(0, fold_lower(&s, G));
  return gs_end(&s);
}

/* The svd of x (reduced, with U and V) unpacked into *S (..., 1, k), *U, *V. */
static void svd_parts(gs *s, mg_tensor *packed, int64_t m, int64_t n, int64_t k, mg_tensor **Sv, mg_tensor **U,
                      mg_tensor **V) {
  *Sv = block(s, packed, 0, 1, 0, k);
  *U = block(s, packed, 1, 1 + m, 0, k);
  *V = block(s, packed, 1 + m, 1 + m + n, 0, k);
}

RULE(grad_linalg_svd) {
  int64_t m = rows(X), n = cols(X), k = m < n ? m : n;
  int full = (int)g->attrs->v[0].i[0], uv = (int)g->attrs->v[1].i[0];
  if (uv && full && m != n)
    return mg_seterror(MG_EARG,
                       "linalg.svd: the gradient of the SVD is not defined with full_matrices=true for a non-square "
                       "matrix (%lld x %lld), as in TensorFlow: use full_matrices=false",
                       (long long)m, (long long)n);
  gs s = gs_begin(g);
  mg_tensor *Sv, *U, *V;
  if (!uv) {
    mg_attrs a = {.set = 3u};
    a.v[0].n = a.v[1].n = 1;
    a.v[0].i[0] = 0;
    a.v[1].i[0] = 1;
    mg_tensor *packed = app(&s, MG_OP_LINALG_SVD, (mg_tensor *const *)&g->in[0], 1, &a);
    svd_parts(&s, packed, m, n, k, &Sv, &U, &V);
    mg_tensor *gs_row = unsqueeze(&s, g, GOUT, -2);
    SET(0, mm(&s, mul(&s, U, gs_row), T(&s, V)));
    return gs_end(&s);
  }
  svd_parts(&s, OUT, m, n, k, &Sv, &U, &V);
  mg_tensor *gS, *gU, *gV;
  svd_parts(&s, GOUT, m, n, k, &gS, &gU, &gV);
  mg_tensor *St = T(&s, Sv);  /* (..., k, 1) */
  mg_tensor *I = eye(&s, k, (mg_dtype)OUT->dtype);
  mg_tensor *S2 = mul(&s, Sv, Sv);
  mg_tensor *E = add(&s, sub(&s, S2, T(&s, S2)), I);  /* E_jk = S_k^2 - S_j^2, 1 on the diagonal */
  mg_tensor *UhgU = mm(&s, T(&s, U), gU), *VhgV = mm(&s, T(&s, V), gV);
  mg_tensor *a = mul(&s, dv(&s, sub(&s, UhgU, T(&s, UhgU)), E), Sv);
  mg_tensor *b = mul(&s, St, dv(&s, sub(&s, VhgV, T(&s, VhgV)), E));
  mg_tensor *inner = add(&s, add(&s, a, b), mul(&s, I, gS));
  mg_tensor *G = mm(&s, mm(&s, U, inner), T(&s, V));
  if (m > k) G = add(&s, G, mm(&s, dv(&s, sub(&s, gU, mm(&s, U, UhgU)), Sv), T(&s, V)));
  if (n > k) G = add(&s, G, mm(&s, U, dv(&s, T(&s, sub(&s, gV, mm(&s, V, VhgV))), St)));
  SET(0, G);
  return gs_end(&s);
}

RULE(grad_linalg_band_part) {
  gs s = gs_begin(g);
  SET(0, app(&s, MG_OP_LINALG_BAND_PART, (mg_tensor *const *)&g->gout, 1, g->attrs));
  return gs_end(&s);
}
