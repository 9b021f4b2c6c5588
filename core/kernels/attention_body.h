/*
 * attention_body.h — the typed body of the fused attention kernels, included
 * by attention.c once per element type with T (float, double), SFX (the
 * name suffix), ATT_EXP/ATT_LOG and ATT_GEMM (bli_sgemm_ex, bli_dgemm_ex)
 * defined. See attention.c for the algorithm; everything here is static.
 *
 * The operands are read where they lie, through their strides: the gemms
 * take general strides (BLIS packs its panels anyway), so a block of Q, K or
 * V costs no copy in float32/float64. A narrower storage type (bfloat16) is
 * meant to enter at the ATT_ROWS hook below: a block is converted into the
 * thread's scratch in float32 and handed to the same gemms.
 */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define F(name) CAT(name, SFX)

/* C (m x n) = alpha * A (m x k) B (k x n) + beta * C, strides in elements.
 * Small or degenerate products (BLIS rejects some 1-row layouts and costs
 * more than it saves below ATT_SMALL) run as plain loops. */
static void F(att_gemm)(int64_t m, int64_t n, int64_t k, T alpha, const T *a, int64_t rsa, int64_t csa,
                        const T *b, int64_t rsb, int64_t csb, T beta, T *c, int64_t rsc, int64_t csc) {
  if (m <= 0 || n <= 0) return;
  if (m < 2 || n < 2 || k < 2 || (double)m * (double)n * (double)k < ATT_SMALL) {
    for (int64_t i = 0; i < m; i++) {
      T *cr = c + i * rsc;
      for (int64_t j = 0; j < n; j++) cr[j * csc] = beta == 0 ? 0 : cr[j * csc] * beta;
      for (int64_t p = 0; p < k; p++) {
        T av = alpha * a[i * rsa + p * csa];
        const T *br = b + p * rsb;
        if (csc == 1 && csb == 1) {
          _Pragma("omp simd") for (int64_t j = 0; j < n; j++) cr[j] += av * br[j];
        } else {
          for (int64_t j = 0; j < n; j++) cr[j * csc] += av * br[j * csb];
        }
      }
    }
    return;
  }
  rntm_t rt = BLIS_RNTM_INITIALIZER;
  bli_rntm_set_num_threads(1, &rt);  /* the kernel's own threads run the blocks */
  ATT_GEMM(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &alpha, (T *)a, rsa, csa, (T *)b, rsb, csb, &beta, c,
           rsc, csc, NULL, &rt);
}

/* The mask of score (i, j) of batch b, head h: 1 = attend. */
static inline int F(att_keep)(const att_geom *g, const unsigned char *mrow, int64_t i, int64_t j) {
  if (g->causal && j > i) return 0;
  return !mrow || mrow[j * g->ms[3]];
}

/* Scores of one block, masked: S (ni x nj, row stride ATT_BC) = scale * Q K^T
 * with masked entries set to ATT_NEG (Keras's large negative logit, so a
 * row with every key masked is a uniform average, as in Keras and JAX);
 * `keep` (when not NULL) records which entries were kept. */
static void F(att_scores)(const att_geom *g, const T *q, const T *k, int64_t b, int64_t h, int64_t i0,
                          int64_t ni, int64_t j0, int64_t nj, T *s, unsigned char *keep) {
  const T *qb = q + b * g->qs[0] + i0 * g->qs[1] + h * g->qs[2];
  const T *kb = k + b * g->ks[0] + j0 * g->ks[1] + (h / g->group) * g->ks[2];
  F(att_gemm)(ni, nj, g->D, (T)g->scale, qb, g->qs[1], g->qs[3], kb, g->ks[3], g->ks[1], 0, s, ATT_BC, 1);
  if (!g->causal && !g->mask) {
    if (keep) memset(keep, 1, (size_t)(ATT_BR * ATT_BC));
    return;
  }
  for (int64_t r = 0; r < ni; r++) {
    const unsigned char *mrow = g->mask ? g->mask + b * g->ms[0] + h * g->ms[1] + (i0 + r) * g->ms[2] : NULL;
    for (int64_t c = 0; c < nj; c++) {
      int kp = F(att_keep)(g, mrow, i0 + r, j0 + c);
      if (!kp) s[r * ATT_BC + c] = (T)ATT_NEG;
      if (keep) keep[r * ATT_BC + c] = (unsigned char)kp;
    }
  }
}

/* Keys [0, end) that can matter to query rows [i0, i0 + ni): with only the
 * causal mask, keys past the last row are masked for every row (and every
 * row keeps key 0, so skipping them changes no softmax). */
static inline int64_t F(att_kend)(const att_geom *g, int64_t i0, int64_t ni) {
  if (g->causal && !g->mask) return i0 + ni < g->Tk ? i0 + ni : g->Tk;
  return g->Tk;
}

/* Forward for query rows [i0, i0 + ni) of batch b, head h: the online
 * softmax over key blocks; writes the output rows and their logsumexp
 * (column Dv of the packed output). ws: ATT_BR*ATT_BC + ATT_BR*Dv + 2*ATT_BR. */
static void F(att_fwd_block)(const att_geom *g, const T *q, const T *k, const T *v, T *out, int64_t b, int64_t h,
                             int64_t i0, int64_t ni, T *ws) {
  int64_t Dv = g->Dv;
  T *s = ws, *o = s + ATT_BR * ATT_BC, *m = o + ATT_BR * Dv, *l = m + ATT_BR;
  for (int64_t r = 0; r < ni; r++) m[r] = -INFINITY, l[r] = 0;
  memset(o, 0, (size_t)(ni * Dv) * sizeof(T));
  const T *vh = v + b * g->vs[0] + (h / g->group) * g->vs[2];
  int64_t kend = F(att_kend)(g, i0, ni);
  for (int64_t j0 = 0; j0 < kend; j0 += ATT_BC) {
    int64_t nj = kend - j0 < ATT_BC ? kend - j0 : ATT_BC;
    F(att_scores)(g, q, k, b, h, i0, ni, j0, nj, s, NULL);
    for (int64_t r = 0; r < ni; r++) {
      T *sr = s + r * ATT_BC, mx = m[r], sum = 0;
      _Pragma("omp simd reduction(max:mx)") for (int64_t c = 0; c < nj; c++) mx = sr[c] > mx ? sr[c] : mx;
      T a = m[r] == -INFINITY ? 0 : ATT_EXP(m[r] - mx);
      /* (two loops: GCC vectorises neither when the sum shares the loop with ATT_EXP's bit casts) */
      _Pragma("omp simd") for (int64_t c = 0; c < nj; c++) sr[c] = ATT_EXP(sr[c] - mx);
      _Pragma("omp simd reduction(+:sum)") for (int64_t c = 0; c < nj; c++) sum += sr[c];
      l[r] = l[r] * a + sum;
      m[r] = mx;
      if (j0) {
        T *orow = o + r * Dv;
        _Pragma("omp simd") for (int64_t d = 0; d < Dv; d++) orow[d] *= a;
      }
    }
    F(att_gemm)(ni, Dv, nj, 1, s, ATT_BC, 1, vh + j0 * g->vs[1], g->vs[1], g->vs[3], 1, o, Dv, 1);
  }
  for (int64_t r = 0; r < ni; r++) {
    T *dst = out + ((b * g->Tq + i0 + r) * g->Hq + h) * (Dv + 1), inv = 1 / l[r];
    for (int64_t d = 0; d < Dv; d++) dst[d] = o[r * Dv + d] * inv;
    dst[Dv] = m[r] + ATT_LOG(l[r]);
  }
}

/* Backward for batch b, key/value head kvh (and every query head of its
 * group, so that dK and dV of the head have one writer): FlashAttention's
 * recomputation from the saved logsumexp, block by block. pk (packed output)
 * and gk (its gradient) are read through their strides; dq/dk/dv (each
 * contiguous, NULL when not wanted) are written. */
static void F(att_bwd_head)(const att_geom *g, const T *q, const T *k, const T *v, const T *po, const int64_t *pos,
                            const T *go, const int64_t *gos, T *dq, T *dk, T *dv, int64_t b, int64_t kvh, T *ws) {
  int64_t D = g->D, Dv = g->Dv, Tk = g->Tk;
  T *p = ws, *dp = p + ATT_BR * ATT_BC, *dqb = dp + ATT_BR * ATT_BC, *di = dqb + ATT_BR * D, *lse = di + ATT_BR;
  T *dka = lse + ATT_BR, *dva = dka + Tk * D;
  unsigned char *keep = (unsigned char *)(dva + Tk * Dv);
  T sc = (T)g->scale;
  if (dk) memset(dka, 0, (size_t)(Tk * D) * sizeof(T));
  if (dv) memset(dva, 0, (size_t)(Tk * Dv) * sizeof(T));
  const T *kh = k + b * g->ks[0] + kvh * g->ks[2], *vh = v + b * g->vs[0] + kvh * g->vs[2];
  for (int64_t h = kvh * g->group; h < (kvh + 1) * g->group; h++) {
    const T *qh = q + b * g->qs[0] + h * g->qs[2];
    for (int64_t i0 = 0; i0 < g->Tq; i0 += ATT_BR) {
      int64_t ni = g->Tq - i0 < ATT_BR ? g->Tq - i0 : ATT_BR;
      const T *gob = go + b * gos[0] + i0 * gos[1] + h * gos[2];
      for (int64_t r = 0; r < ni; r++) {
        const T *orow = po + b * pos[0] + (i0 + r) * pos[1] + h * pos[2], *grow = gob + r * gos[1];
        T acc = 0;
        for (int64_t d = 0; d < Dv; d++) acc += grow[d * gos[3]] * orow[d * pos[3]];
        di[r] = acc - grow[Dv * gos[3]];  /* the logsumexp's own gradient enters here */
        lse[r] = orow[Dv * pos[3]];
      }
      if (dq) memset(dqb, 0, (size_t)(ni * D) * sizeof(T));
      int64_t kend = F(att_kend)(g, i0, ni);
      for (int64_t j0 = 0; j0 < kend; j0 += ATT_BC) {
        int64_t nj = kend - j0 < ATT_BC ? kend - j0 : ATT_BC;
        F(att_scores)(g, q, k, b, h, i0, ni, j0, nj, p, keep);
        for (int64_t r = 0; r < ni; r++) {
          T *pr = p + r * ATT_BC, lr = lse[r];
          if (lr <= (T)(0.5 * ATT_NEG)) {  /* every key masked: the uniform average (NEG + log Tk rounds to NEG) */
            for (int64_t c = 0; c < nj; c++) pr[c] = (T)1 / (T)g->Tk;
            continue;
          }
          _Pragma("omp simd") for (int64_t c = 0; c < nj; c++) pr[c] = ATT_EXP(pr[c] - lr);
        }
        if (dv)  /* dV_j += P^T dO */
          F(att_gemm)(nj, Dv, ni, 1, p, 1, ATT_BC, gob, gos[1], gos[3], 1, dva + j0 * Dv, Dv, 1);
        if (!dq && !dk) continue;
        /* dP = dO V_j^T, then dS = P (dP - D_i), zero where the logit was masked (a constant) */
        F(att_gemm)(ni, nj, Dv, 1, gob, gos[1], gos[3], vh + j0 * g->vs[1], g->vs[3], g->vs[1], 0, dp, ATT_BC, 1);
        for (int64_t r = 0; r < ni; r++) {
          T *pr = p + r * ATT_BC, *dr = dp + r * ATT_BC, dr0 = di[r];
          const unsigned char *kr = keep + r * ATT_BC;
          _Pragma("omp simd") for (int64_t c = 0; c < nj; c++) dr[c] = pr[c] * (dr[c] - dr0) * (T)kr[c];  /* (no ?:: vectorises) */
        }
        if (dq)  /* dQ_i += scale dS K_j */
          F(att_gemm)(ni, D, nj, sc, dp, ATT_BC, 1, kh + j0 * g->ks[1], g->ks[1], g->ks[3], 1, dqb, D, 1);
        if (dk)  /* dK_j += scale dS^T Q_i */
          F(att_gemm)(nj, D, ni, sc, dp, 1, ATT_BC, qh + i0 * g->qs[1], g->qs[1], g->qs[3], 1, dka + j0 * D, D, 1);
      }
      if (dq)
        for (int64_t r = 0; r < ni; r++)
          memcpy(dq + ((b * g->Tq + i0 + r) * g->Hq + h) * D, dqb + r * D, (size_t)D * sizeof(T));
    }
  }
  for (int64_t j = 0; j < Tk; j++) {
    if (dk) memcpy(dk + ((b * Tk + j) * g->Hk + kvh) * D, dka + j * D, (size_t)D * sizeof(T));
    if (dv) memcpy(dv + ((b * Tk + j) * g->Hk + kvh) * Dv, dva + j * Dv, (size_t)Dv * sizeof(T));
  }
}

/* Workspace elements of one thread. */
static int64_t F(att_fwd_ws)(const att_geom *g) { return ATT_BR * ATT_BC + ATT_BR * g->Dv + 2 * ATT_BR; }
static int64_t F(att_bwd_ws)(const att_geom *g) {
  int64_t n = 2 * ATT_BR * ATT_BC + ATT_BR * g->D + 2 * ATT_BR + g->Tk * (g->D + g->Dv);
  return n + (ATT_BR * ATT_BC + (int64_t)sizeof(T) - 1) / (int64_t)sizeof(T);  /* the keep bytes */
}

static mg_status F(att_forward)(const att_geom *g, const T *q, const T *k, const T *v, T *out) {
  int64_t nqb = (g->Tq + ATT_BR - 1) / ATT_BR, tasks = g->B * g->Hq * nqb, per = F(att_fwd_ws)(g);
  double work = (double)g->B * g->Hq * g->Tq * g->Tk * (g->D + g->Dv);
  int nt = work >= ATT_PAR_WORK && tasks > 1 ? mg_threads() : 1;
  if (nt > tasks) nt = (int)tasks;
  T *ws;
  mg_status st = mg_work_alloc((size_t)(per * nt) * sizeof(T), "dot_product_attention", (void **)&ws);
  if (st) return st;
  mg_limits *lim = mg_tl_kernel;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
  for (int64_t t = 0; t < tasks; t++) {
    if (mg_kernel_stop(lim)) continue;  /* a task is a few ms: poll the clock each time */
    int64_t ib = t % nqb, bh = t / nqb, i0 = ib * ATT_BR;
    F(att_fwd_block)(g, q, k, v, out, bh / g->Hq, bh % g->Hq, i0, g->Tq - i0 < ATT_BR ? g->Tq - i0 : ATT_BR,
                     ws + per * omp_get_thread_num());
  }
  mg_work_free(ws);
  return MG_OK;
}

static mg_status F(att_backward)(const att_geom *g, const T *q, const T *k, const T *v, const T *po,
                                 const int64_t *pos, const T *go, const int64_t *gos, T *dq, T *dk, T *dv) {
  int64_t tasks = g->B * g->Hk, per = F(att_bwd_ws)(g);
  double work = (double)g->B * g->Hq * g->Tq * g->Tk * (g->D + g->Dv);
  int nt = work >= ATT_PAR_WORK && tasks > 1 ? mg_threads() : 1;
  if (nt > tasks) nt = (int)tasks;
  T *ws;
  mg_status st = mg_work_alloc((size_t)(per * nt) * sizeof(T), "dot_product_attention_grad", (void **)&ws);
  if (st) return st;
  mg_limits *lim = mg_tl_kernel;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
  for (int64_t t = 0; t < tasks; t++) {
    if (mg_kernel_stop(lim)) continue;  /* a task is a few ms: poll the clock each time */
    F(att_bwd_head)(g, q, k, v, po, pos, go, gos, dq, dk, dv, t / g->Hk, t % g->Hk, ws + per * omp_get_thread_num());
  }
  mg_work_free(ws);
  return MG_OK;
}

#undef F
#undef CAT
#undef CAT_
