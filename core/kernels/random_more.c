/*
 * random_more.c — the issue-17 random ops: random_gamma, random_poisson,
 * random_categorical and random_permutation.
 *
 * They draw from the same Philox4x32-10 generator as random.c and take key
 * and counter the same way: the op's seed attribute (>= 0) is the key with
 * the counter at 0, else the context's seed and counter, which the op
 * advances by one block per element it draws, so mg.random.seed replays the
 * sequence and a staged function draws anew at each call (its kernel reads
 * the context when it runs). Element e owns the counter block ctr + e; its
 * variable number of draws (rejection sampling, Knuth's product) take the
 * attempt number as the third counter word and a sub-stream id as the fourth,
 * so they never collide with other elements or later ops, and the result of
 * each element is independent of the thread count.
 *
 * gamma: Marsaglia and Tsang (2000) for alpha >= 1; alpha < 1 as
 * gamma(alpha + 1) * U^(1/alpha); divided by the rate beta (TF's
 * tf.random.gamma). poisson: Knuth's product of uniforms below lam = 10,
 * Hörmann's PTRS transformed rejection (1993) above (NumPy's choice).
 * categorical: per row, the cumulative exp(logits - max) in float64 and a
 * binary search per sample (1-based class indices; -inf logits are never
 * drawn; a row with no finite weight is an error). permutation: Fisher–Yates
 * with Lemire's unbiased bounded integers.
 */
#include "internal.h"
#include <math.h>
#include <omp.h>

void mg_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

typedef struct rm_gen {
  uint32_t key[2];
  uint64_t ctr;
} rm_gen;

/* Key and counter for an op drawing `nblocks` blocks (seed attribute at kseed). */
static rm_gen rm_start(const mg_call *c, int kseed, int64_t nblocks) {
  int64_t seed = A_I(c, kseed);
  uint64_t key = 0x9e3779b97f4a7c15ull, ctr = 0;
  if (seed >= 0) {
    key = (uint64_t)seed;
  } else if (c->ctx) {
    key = c->ctx->seed;
    ctr = c->ctx->counter;
    c->ctx->counter += (uint64_t)nblocks;
  }
  return (rm_gen){{(uint32_t)key, (uint32_t)(key >> 32)}, ctr};
}

/* One element's stream: draw `a` of sub-stream `sub` gives two 53-bit uniforms in [0, 1). */
typedef struct rm_stream {
  const rm_gen *g;
  uint64_t block;
  uint32_t attempt;
} rm_stream;

static void rm_u2(rm_stream *s, uint32_t sub, double u[2]) {
  uint64_t ctr = s->g->ctr + s->block;
  uint32_t c[4] = {(uint32_t)ctr, (uint32_t)(ctr >> 32), s->attempt++, sub}, w[4];
  mg_philox4x32(c, s->g->key, w);
  u[0] = (double)(w[0] >> 5) * 0x1p-27 + (double)(w[1] >> 6) * 0x1p-53;
  u[1] = (double)(w[2] >> 5) * 0x1p-27 + (double)(w[3] >> 6) * 0x1p-53;
}

/* A standard normal (Box–Muller; 1 - u keeps the log finite). */
static double rm_normal(rm_stream *s) {
  double u[2];
  rm_u2(s, 0, u);
  return sqrt(-2.0 * log(1.0 - u[0])) * cos(6.283185307179586 * u[1]);
}

static double rm_uniform(rm_stream *s) {
  double u[2];
  rm_u2(s, 1, u);
  return u[0];
}

/* Gamma(alpha, 1) for alpha >= 1: Marsaglia and Tsang's squeeze and rejection. */
static double rm_gamma1(rm_stream *s, double alpha) {
  double d = alpha - 1.0 / 3.0, cc = 1.0 / sqrt(9.0 * d);
  for (;;) {
    double x = rm_normal(s), v = 1.0 + cc * x;
    if (v <= 0) continue;
    v = v * v * v;
    double u = rm_uniform(s), x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2) return d * v;
    if (log(u) < 0.5 * x2 + d * (1.0 - v + log(v))) return d * v;
  }
}

static void rm_store(mg_tensor *out, int64_t i, double v) {
  char *p = mg_ptr(out);
  switch ((mg_dtype)out->dtype) {
  case MG_FLOAT32: ((float *)p)[i] = (float)v; break;
  case MG_FLOAT64: ((double *)p)[i] = v; break;
  case MG_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
  default: ((int64_t *)p)[i] = (int64_t)v; break;
  }
}

static int rm_threads(int64_t n) { return n >= 4096 ? mg_threads() : 1; }

mg_status k_random_gamma(const mg_call *c, mg_tensor *out) {
  int64_t n = mg_tensor_numel(out);
  rm_gen g = rm_start(c, 4, n);
  double alpha = A_F(c, 1), beta = A_F(c, 2);
  int small = alpha < 1.0;
#pragma omp parallel for num_threads(rm_threads(n)) schedule(static) if (n >= 4096)
  for (int64_t i = 0; i < n; i++) {
    rm_stream s = {&g, (uint64_t)i, 0};
    double v = rm_gamma1(&s, small ? alpha + 1.0 : alpha);
    if (small) {  /* Gamma(a) = Gamma(a + 1) U^(1/a), in logs so that tiny alpha does not underflow early */
      double u = rm_uniform(&s);
      v = exp(log(v) + log(1.0 - u) / alpha);
    }
    rm_store(out, i, v / beta);
  }
  return MG_OK;
}

/* Poisson(lam): Knuth below 10, PTRS above. */
static double rm_poisson1(rm_stream *s, double lam) {
  if (lam == 0) return 0;
  if (lam < 10) {
    double l = exp(-lam), p = 1.0;
    int64_t k = 0;
    for (;;) {
      double u[2];
      rm_u2(s, 2, u);
      for (int j = 0; j < 2; j++) {
        p *= u[j];
        if (p <= l) return (double)k;
        k++;
      }
    }
  }
  double slam = sqrt(lam), loglam = log(lam), b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
  double invalpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    double u[2];
    rm_u2(s, 2, u);
    double U = u[0] - 0.5, V = u[1], us = 0.5 - fabs(U);
    double k = floor((2 * a / us + b) * U + lam + 0.43);
    if (us >= 0.07 && V <= vr) return k;
    if (k < 0 || (us < 0.013 && V > us)) continue;
    if (log(V) + log(invalpha) - log(a / (us * us) + b) <= -lam + k * loglam - lgamma(k + 1)) return k;
  }
}

mg_status k_random_poisson(const mg_call *c, mg_tensor *out) {
  int64_t n = mg_tensor_numel(out);
  rm_gen g = rm_start(c, 3, n);
  double lam = A_F(c, 1);
#pragma omp parallel for num_threads(rm_threads(n)) schedule(static) if (n >= 4096)
  for (int64_t i = 0; i < n; i++) {
    rm_stream s = {&g, (uint64_t)i, 0};
    rm_store(out, i, rm_poisson1(&s, lam));
  }
  return MG_OK;
}

mg_status k_random_categorical(const mg_call *c, mg_tensor *out) {
  const mg_tensor *lg = c->in[0];
  int64_t B = lg->shape[0], C = lg->shape[1], ns = out->shape[1];
  rm_gen g = rm_start(c, 2, B * ns);
  if (B * ns == 0) return MG_OK;
  double *cdf;
  int nt = rm_threads(B * (C + ns));
  mg_status st = mg_work_alloc((size_t)(C * nt) * sizeof(double), "random_categorical", (void **)&cdf);
  if (st) return st;
  int64_t bad = -1;
  const char *base = mg_ptr(lg);
  size_t es = mg_dtype_size((mg_dtype)lg->dtype);
  int f32 = lg->dtype == MG_FLOAT32;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t r = 0; r < B; r++) {
    double *cd = cdf + C * omp_get_thread_num(), mx = -INFINITY, tot = 0;
    const char *row = base + (size_t)(r * lg->strides[0]) * es;
    int ok = 1;
    for (int64_t j = 0; j < C; j++) {
      const char *p = row + (size_t)(j * lg->strides[1]) * es;
      double v = f32 ? *(const float *)p : *(const double *)p;
      cd[j] = v;
      ok &= !isnan(v) && v != INFINITY;
      if (v > mx) mx = v;
    }
    if (!ok || mx == -INFINITY) {
#pragma omp critical
      if (bad < 0 || r < bad) bad = r;
      continue;
    }
    for (int64_t j = 0; j < C; j++) {
      tot += exp(cd[j] - mx);
      cd[j] = tot;
    }
    for (int64_t k = 0; k < ns; k++) {
      rm_stream s = {&g, (uint64_t)(r * ns + k), 0};
      double t = rm_uniform(&s) * tot;
      int64_t lo = 0, hi = C - 1;  /* the first class whose cumulative weight exceeds t */
      while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (cd[mid] > t) hi = mid;
        else lo = mid + 1;
      }
      rm_store(out, r * ns + k, (double)(lo + (c->ctx ? c->ctx->index_base : 0)));
    }
  }
  mg_work_free(cdf);
  if (bad >= 0)
    return mg_seterror(MG_EARG, "%s: row %lld of logits has no valid distribution (a NaN or +inf logit, or every logit -inf)",
                       c->info->name, (long long)(bad + (c->ctx ? c->ctx->index_base : 0)));
  return MG_OK;
}

mg_status k_random_permutation(const mg_call *c, mg_tensor *out) {
  int64_t n = out->shape[0], b = c->ctx ? c->ctx->index_base : 0;
  rm_gen g = rm_start(c, 0, n);
  int64_t *p = (int64_t *)mg_ptr(out);
  for (int64_t i = 0; i < n; i++) p[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {  /* Fisher–Yates: swap i with a uniform j in [0, i] */
    rm_stream s = {&g, (uint64_t)i, 0};
    uint64_t range = (uint64_t)i + 1, j;
    for (;;) {  /* Lemire: the high word of a 64x64 product, rejecting the biased low words */
      uint64_t ctr = g.ctr + s.block;
      uint32_t cw[4] = {(uint32_t)ctr, (uint32_t)(ctr >> 32), s.attempt++, 3}, w[4];
      mg_philox4x32(cw, g.key, w);
      uint64_t x = (uint64_t)w[0] << 32 | w[1];
      unsigned __int128 m = (unsigned __int128)x * range;
      uint64_t lo = (uint64_t)m;
      if (lo >= (uint64_t)(-range) % range) {
        j = (uint64_t)(m >> 64);
        break;
      }
    }
    int64_t t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  for (int64_t i = 0; i < n; i++) p[i] += b;
  return MG_OK;
}
