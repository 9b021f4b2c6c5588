/*
 * random.c — the counter-based generator and the random ops.
 *
 * The generator is Philox4x32-10 (Salmon et al., "Parallel random numbers:
 * as easy as 1, 2, 3", SC'11): a keyed bijection of a 128-bit counter, so
 * any block of four 32-bit words can be computed on its own. The ops work in
 * batches of RANDOM_LANES consecutive blocks, computed side by side so the
 * compiler turns the rounds into SIMD multiplies; batch k holds blocks
 * counter + k*LANES ... + LANES-1 and covers a fixed slice of the output:
 * one-word ops (uniform float32, bernoulli) give element j*LANES + l word j
 * of lane l; two-word ops (uniform float64, randint) give element h*LANES + l
 * words 2h and 2h+1; normals take all four words of lane l for the pair of
 * elements l (cosine) and LANES + l (sine). Which element reads which block
 * is thus fixed by its index alone: results never depend on the thread
 * count, and batches are split across OpenMP threads.
 *
 * Key and counter: the op's `seed` attribute, when >= 0, is the key and the
 * counter starts at 0 (the same seed gives the same tensor every call, like a
 * stateless op). Otherwise the key is the context's seed and the counter is
 * the context's, advanced by the blocks the op used, so consecutive calls
 * differ and mg_ctx_seed replays the sequence. Rejection sampling
 * (truncated_normal, randint) redraws an element from its own block with the
 * third counter word set to the attempt number, so redraws never collide
 * with other elements or later calls.
 *
 * Normals are Box–Muller over two 53-bit uniforms, with branchless
 * polynomial log and sincos (accurate to ~1e-16) so the loop vectorizes;
 * randint is Lemire's multiply-shift with rejection, so it is unbiased.
 */
#include "internal.h"
#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u  /* golden ratio */
#define PHILOX_W1 0xBB67AE85u  /* sqrt(3) - 1 */
#define RANDOM_LANES 16        /* blocks per batch */
#define RANDOM_MAX_ATTEMPTS 64 /* rejection: P(64 misses) < 1e-80 */

/* Philox4x32 with all 128 counter bits (the KAT test calls this directly). */
void mg_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
void mg_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
    k0 += PHILOX_W0;  /* the key schedule: a Weyl sequence */
    k1 += PHILOX_W1;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

void mg_philox(uint64_t key, uint64_t ctr, uint32_t out[4]) {
  uint32_t c[4] = {(uint32_t)ctr, (uint32_t)(ctr >> 32), 0, 0}, k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
  mg_philox4x32(c, k, out);
}

typedef struct random_gen {
  uint32_t key[2];
  uint64_t ctr;
} random_gen;

/* Words of one batch: w[j][l] is word j of block l. */
typedef struct random_batch {
  uint32_t w[4][RANDOM_LANES];
} random_batch;

/* Picks key and counter for an op using `nbatches` batches (see the top). */
static random_gen random_start(const mg_call *c, int kseed, int64_t nbatches) {
  int64_t seed = A_I(c, kseed);
  uint64_t key = 0x9e3779b97f4a7c15ull, ctr = 0;
  if (seed >= 0) {
    key = (uint64_t)seed;
  } else if (c->ctx) {
    key = c->ctx->seed;
    ctr = c->ctx->counter;
    c->ctx->counter += (uint64_t)nbatches * RANDOM_LANES;
  }
  return (random_gen){{(uint32_t)key, (uint32_t)(key >> 32)}, ctr};
}

/* The blocks of batch k, all lanes at once (vectorized by the compiler). */
static void random_batch_fill(const random_gen *g, int64_t k, random_batch *o) {
  uint32_t c0[RANDOM_LANES], c1[RANDOM_LANES], c2[RANDOM_LANES], c3[RANDOM_LANES];
  uint32_t k0 = g->key[0], k1 = g->key[1];
  uint64_t first = g->ctr + (uint64_t)k * RANDOM_LANES;
  for (int l = 0; l < RANDOM_LANES; l++) {
    uint64_t ctr = first + (uint64_t)l;
    c0[l] = (uint32_t)ctr;
    c1[l] = (uint32_t)(ctr >> 32);
    c2[l] = c3[l] = 0;
  }
  for (int r = 0; r < 10; r++) {
#pragma omp simd
    for (int l = 0; l < RANDOM_LANES; l++) {
      uint64_t p0 = (uint64_t)PHILOX_M0 * c0[l], p1 = (uint64_t)PHILOX_M1 * c2[l];
      uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
      c1[l] = (uint32_t)p1;
      c3[l] = (uint32_t)p0;
      c0[l] = n0;
      c2[l] = n2;
    }
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  memcpy(o->w[0], c0, sizeof c0);
  memcpy(o->w[1], c1, sizeof c1);
  memcpy(o->w[2], c2, sizeof c2);
  memcpy(o->w[3], c3, sizeof c3);
}

/* Lane l of batch k drawn again: attempt a (>= 1) of a rejected element. */
static void random_redraw(const random_gen *g, int64_t k, int l, uint32_t a, uint32_t w[4]) {
  uint64_t ctr = g->ctr + (uint64_t)k * RANDOM_LANES + (uint64_t)l;
  uint32_t c[4] = {(uint32_t)ctr, (uint32_t)(ctr >> 32), a, 0};
  mg_philox4x32(c, g->key, w);
}

/* A 53-bit uniform in [0, 1) from 27 bits of hi and 26 of lo (built from
 * 32-bit conversions, which every SIMD level has). */
static inline __attribute__((always_inline)) double random_u53(uint32_t hi, uint32_t lo) {
  return (double)(int32_t)(hi >> 5) * 0x1p-27 + (double)(int32_t)(lo >> 6) * 0x1p-53;
}

/* log(x) for x in (0, 1], branchless: x = m * 2^e with m in [sqrt(1/2),
 * sqrt(2)), log m = 2 atanh(s), s = (m-1)/(m+1), |s| < 0.172 (series to s^19). */
static inline __attribute__((always_inline)) double random_log(double x) {
  uint64_t bits;
  double e, m;
  memcpy(&bits, &x, sizeof bits);
  uint64_t mant = bits & 0x000fffffffffffffull;
  uint64_t big = (0x6a09e667f3bcdull - mant) >> 63;            /* m > sqrt(2): use m/2 and e+1 */
  uint64_t ebits = 0x4330000000000000ull | ((bits >> 52) + big);  /* 2^52 + biased exponent: an */
  uint64_t mbits = mant | ((0x3ffull - big) << 52);              /* int-to-double any SIMD does */
  memcpy(&e, &ebits, sizeof e);
  memcpy(&m, &mbits, sizeof m);
  e -= 4503599627370496.0 + 1023;
  double s = (m - 1) / (m + 1), z = s * s;
  double p = 1.0 / 19;
  p = 1.0 / 17 + z * p;
  p = 1.0 / 15 + z * p;
  p = 1.0 / 13 + z * p;
  p = 1.0 / 11 + z * p;
  p = 1.0 / 9 + z * p;
  p = 1.0 / 7 + z * p;
  p = 1.0 / 5 + z * p;
  p = 1.0 / 3 + z * p;
  return e * 0.6931471805599453 + 2 * s + 2 * s * z * p;
}

/* cos(2*pi*u - turns*pi/2) for u in [0, 1): the cosine for turns = 0, the
 * sine for turns = 1 (computed as 3 quarter turns forward). Branchless: the
 * nearest quarter turn q is split off (t >= 0, so rounding is a truncation),
 * the rest (|f| <= pi/4) goes through Taylor series, q picks series and sign. */
static inline __attribute__((always_inline)) double random_sincos(double u, int turns) {
  double t = u * 4, q = (double)(int32_t)(t + 0.5), f = (t - q) * 1.5707963267948966, z = f * f;
  double s = -1.0 / 1307674368000;
  s = 1.0 / 6227020800 + z * s;
  s = -1.0 / 39916800 + z * s;
  s = 1.0 / 362880 + z * s;
  s = -1.0 / 5040 + z * s;
  s = 1.0 / 120 + z * s;
  s = -1.0 / 6 + z * s;
  s = f + f * z * s;
  double c = 1.0 / 20922789888000;
  c = -1.0 / 87178291200 + z * c;
  c = 1.0 / 479001600 + z * c;
  c = -1.0 / 3628800 + z * c;
  c = 1.0 / 40320 + z * c;
  c = -1.0 / 720 + z * c;
  c = 1.0 / 24 + z * c;
  c = -0.5 + z * c;
  c = 1 + z * c;
  int r = ((int)q + 3 * turns) & 3;      /* sin(x) = cos(x - pi/2) = cos(x + 3*pi/2) */
  double odd = (double)(r & 1), sign = 1.0 - (double)((r + 1) & 2);  /* exact selects, no branches */
  return sign * (odd * s + (1.0 - odd) * c);  /* cos(f + r*pi/2): c, -s, -c, s */
}

/* Box–Muller: two independent standard normals from four words. */
static inline __attribute__((always_inline)) void random_box_muller(uint32_t w0, uint32_t w1, uint32_t w2,
                                                                    uint32_t w3, double *z0, double *z1) {
  double u1 = 1.0 - random_u53(w0, w1), u2 = random_u53(w2, w3);  /* u1 in (0, 1] */
  double r = sqrt(-2.0 * random_log(u1));
  *z0 = r * random_sincos(u2, 0);
  *z1 = r * random_sincos(u2, 1);
}

/* Runs fn on batches [0, ceil(n / per)), split across threads when n is
 * large; fn gets the filled batch and the range of elements it covers. */
typedef void (*random_batch_fn)(const random_gen *g, int64_t k, const random_batch *b, int64_t i0, int cnt,
                                void *ud);

static void random_run(const random_gen *g, int64_t n, int per, random_batch_fn fn, void *ud) {
  int64_t nb = (n + per - 1) / per;
  int nt = n >= MG_PAR_MIN / 4 ? mg_threads() : 1;  /* generation is compute-bound: split earlier */
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t k = 0; k < nb; k++) {
    random_batch b;
    random_batch_fill(g, k, &b);
    int64_t i0 = k * per;
    fn(g, k, &b, i0, (int)(n - i0 < per ? n - i0 : per), ud);
  }
}

#define ONE_WORD (4 * RANDOM_LANES)  /* elements per batch, one word each */
#define TWO_WORDS (2 * RANDOM_LANES) /* elements per batch, two words each */

static int64_t random_nbatches(int64_t n, int64_t per) { return (n + per - 1) / per; }

typedef struct random_args {
  void *out;
  double a, b;       /* low/high, mean/stddev, or the bernoulli cut */
  uint64_t lo, range;
  int trunc;
} random_args;

/* ---- uniform ----------------------------------------------------------------- */

static void random_uniform_f32(const random_gen *g, int64_t k, const random_batch *b, int64_t i0, int cnt,
                               void *ud) {
  (void)g, (void)k;
  const random_args *r = ud;
  float v[ONE_WORD], flo = (float)r->a, fhi = (float)r->b, below = nextafterf(fhi, -INFINITY);
  double lo = r->a, span = r->b - r->a;
  const uint32_t *w = b->w[0];  /* element e reads flat word e */
#pragma omp simd
  for (int e = 0; e < ONE_WORD; e++) {
    float x = (float)(lo + span * ((double)(w[e] >> 8) * 0x1p-24));
    x = x >= fhi ? below : x;  /* rounding must not reach high */
    v[e] = x < flo ? flo : x;
  }
  memcpy((float *)r->out + i0, v, (size_t)cnt * sizeof *v);
}

static void random_uniform_f64(const random_gen *g, int64_t k, const random_batch *b, int64_t i0, int cnt,
                               void *ud) {
  (void)g, (void)k;
  const random_args *r = ud;
  double v[TWO_WORDS], lo = r->a, hi = r->b, below = nextafter(hi, -INFINITY), span = hi - lo;
  for (int h = 0; h < 2; h++) {
#pragma omp simd
    for (int l = 0; l < RANDOM_LANES; l++) {
      double x = lo + span * random_u53(b->w[2 * h][l], b->w[2 * h + 1][l]);
      x = x >= hi ? below : x;
      v[h * RANDOM_LANES + l] = x < lo ? lo : x;
    }
  }
  memcpy((double *)r->out + i0, v, (size_t)cnt * sizeof *v);
}

mg_status k_uniform(const mg_call *c, mg_tensor *out) {
  int64_t n = mg_tensor_numel(out);
  int f32 = out->dtype == MG_FLOAT32, per = f32 ? ONE_WORD : TWO_WORDS;
  random_gen g = random_start(c, 4, random_nbatches(n, per));
  random_args r = {.out = mg_ptr(out), .a = A_F(c, 1), .b = A_F(c, 2)};
  random_run(&g, n, per, f32 ? random_uniform_f32 : random_uniform_f64, &r);
  return MG_OK;
}

/* ---- normal and truncated normal -------------------------------------------------- */

/* Element e of batch k (lane e % LANES) redrawn until |z| <= 2. */
static double random_truncate(const random_gen *g, int64_t k, int e, double z) {
  for (uint32_t a = 1; fabs(z) > 2.0 && a < RANDOM_MAX_ATTEMPTS; a++) {
    uint32_t w[4];
    double z0, z1;
    random_redraw(g, k, e % RANDOM_LANES, a, w);
    random_box_muller(w[0], w[1], w[2], w[3], &z0, &z1);
    z = e < RANDOM_LANES ? z0 : z1;
  }
  return fabs(z) > 2.0 ? 0 : z;
}

/* The batch's normals: z[l] and z[LANES + l] from lane l. */
static void random_normals(const random_gen *g, int64_t k, const random_batch *b, int cnt, int trunc, double *z) {
#pragma omp simd
  for (int l = 0; l < RANDOM_LANES; l++) {
    double u1 = 1.0 - random_u53(b->w[0][l], b->w[1][l]), u2 = random_u53(b->w[2][l], b->w[3][l]);
    double r = sqrt(-2.0 * random_log(u1));
    z[l] = r * random_sincos(u2, 0);
    z[RANDOM_LANES + l] = r * random_sincos(u2, 1);
  }
  for (int e = 0; trunc && e < cnt; e++)
    if (fabs(z[e]) > 2.0) z[e] = random_truncate(g, k, e, z[e]);
}

#define NORMAL_FN(NAME_, T)                                                                        \
  static void NAME_(const random_gen *g, int64_t k, const random_batch *b, int64_t i0, int cnt, void *ud) { \
    const random_args *r = ud;                                                                     \
    double z[TWO_WORDS];                                                                           \
    T *o = (T *)r->out + i0;                                                                       \
    random_normals(g, k, b, cnt, r->trunc, z);                                                     \
    for (int e = 0; e < cnt; e++) o[e] = (T)(r->a + r->b * z[e]);                                  \
  }
NORMAL_FN(random_normal_f32, float)
NORMAL_FN(random_normal_f64, double)

static mg_status random_normal(const mg_call *c, mg_tensor *out, int trunc) {
  int64_t n = mg_tensor_numel(out);
  random_gen g = random_start(c, 4, random_nbatches(n, TWO_WORDS));
  random_args r = {.out = mg_ptr(out), .a = A_F(c, 1), .b = A_F(c, 2), .trunc = trunc};
  random_run(&g, n, TWO_WORDS, out->dtype == MG_FLOAT32 ? random_normal_f32 : random_normal_f64, &r);
  return MG_OK;
}

mg_status k_normal(const mg_call *c, mg_tensor *out) { return random_normal(c, out, 0); }
mg_status k_truncated_normal(const mg_call *c, mg_tensor *out) { return random_normal(c, out, 1); }

/* ---- bernoulli ------------------------------------------------------------------------ */

#define BERNOULLI_FN(NAME_, T)                                                                     \
  static void NAME_(const random_gen *g, int64_t k, const random_batch *b, int64_t i0, int cnt, void *ud) { \
    (void)g, (void)k;                                                                              \
    const random_args *r = ud;                                                                     \
    T v[ONE_WORD];                                                                                 \
    double cut = r->a;                                                                             \
    const uint32_t *w = b->w[0];                                                                   \
    _Pragma("omp simd")                                                                            \
    for (int e = 0; e < ONE_WORD; e++) v[e] = (T)((double)w[e] < cut);                             \
    memcpy((T *)r->out + i0, v, (size_t)cnt * sizeof *v);                                          \
  }
BERNOULLI_FN(random_bernoulli_f32, float)
BERNOULLI_FN(random_bernoulli_f64, double)
BERNOULLI_FN(random_bernoulli_i32, int32_t)
BERNOULLI_FN(random_bernoulli_i64, int64_t)
BERNOULLI_FN(random_bernoulli_u8, uint8_t)

mg_status k_bernoulli(const mg_call *c, mg_tensor *out) {
  static const random_batch_fn fns[MG_NDTYPES] = {random_bernoulli_f32, random_bernoulli_f64, random_bernoulli_i32,
                                                  random_bernoulli_i64, random_bernoulli_u8,  random_bernoulli_u8};
  int64_t n = mg_tensor_numel(out);
  random_gen g = random_start(c, 3, random_nbatches(n, ONE_WORD));
  random_args r = {.out = mg_ptr(out), .a = A_F(c, 1) * 4294967296.0};  /* P(w < p * 2^32) = p */
  random_run(&g, n, ONE_WORD, fns[out->dtype], &r);
  return MG_OK;
}

/* ---- randint ------------------------------------------------------------------------------ */

/* Element e of batch k as a uniform integer in [0, range) (range 0 = all
 * 2^64 values): Lemire's multiply-shift, redrawing the few biased products. */
static uint64_t random_below(const random_gen *g, const random_batch *b, int64_t k, int e, uint64_t range) {
  int j = 2 * (e / RANDOM_LANES), l = e % RANDOM_LANES;
  uint64_t x = ((uint64_t)b->w[j][l] << 32) | b->w[j + 1][l];
  if (range == 0) return x;
  unsigned __int128 m = (unsigned __int128)x * range;
  uint64_t low = (uint64_t)m;
  if (low < range) {
    uint64_t bias = -range % range;  /* 2^64 mod range: products below it are biased */
    for (uint32_t a = 1; low < bias && a < RANDOM_MAX_ATTEMPTS; a++) {
      uint32_t w[4];
      random_redraw(g, k, l, a, w);
      x = ((uint64_t)w[j] << 32) | w[j + 1];
      m = (unsigned __int128)x * range;
      low = (uint64_t)m;
    }
  }
  return (uint64_t)(m >> 64);
}

#define RANDINT_FN(NAME_, T)                                                                       \
  static void NAME_(const random_gen *g, int64_t k, const random_batch *b, int64_t i0, int cnt, void *ud) { \
    const random_args *r = ud;                                                                     \
    T *o = (T *)r->out + i0;                                                                       \
    for (int e = 0; e < cnt; e++) o[e] = (T)(int64_t)(r->lo + random_below(g, b, k, e, r->range)); \
  }
RANDINT_FN(random_randint_i32, int32_t)
RANDINT_FN(random_randint_i64, int64_t)
RANDINT_FN(random_randint_u8, uint8_t)

mg_status k_randint(const mg_call *c, mg_tensor *out) {
  int64_t n = mg_tensor_numel(out);
  random_gen g = random_start(c, 4, random_nbatches(n, TWO_WORDS));
  random_args r = {.out = mg_ptr(out), .lo = (uint64_t)A_I(c, 1)};
  r.range = (uint64_t)A_I(c, 2) - r.lo + 1;  /* wraps to 0 for the full 64-bit range */
  random_batch_fn fn = out->dtype == MG_INT32 ? random_randint_i32 : out->dtype == MG_INT64 ? random_randint_i64
                                                                                             : random_randint_u8;
  random_run(&g, n, TWO_WORDS, fn, &r);
  return MG_OK;
}
