/*
 * random.c — the counter-based generator and the random ops.
 *
 * The generator is Philox4x32-10 (Salmon et al., "Parallel random numbers:
 * as easy as 1, 2, 3", SC'11): a keyed bijection of a 128-bit counter, so
 * any block of four 32-bit words can be computed on its own. Element i of a
 * result reads block `counter + i / per_block`, which makes every op
 * trivially parallel and its values independent of the thread count.
 *
 * Key and counter: the op's `seed` attribute, when >= 0, is the key and the
 * counter starts at 0 (the same seed gives the same tensor every call, like a
 * stateless op). Otherwise the key is the context's seed and the counter is
 * the context's, advanced by the blocks the op used, so consecutive calls
 * differ and mg_ctx_seed replays the sequence. Rejection sampling
 * (truncated_normal, randint) redraws from the same block position with the
 * third counter word set to the attempt number, so redraws never collide
 * with other elements or later calls.
 *
 * Uniform float32 and bernoulli use one 32-bit word per element (4 per
 * block); float64 uniforms, normals (Box–Muller over two 53-bit uniforms)
 * and randint (Lemire's multiply-shift with rejection, unbiased) use two.
 */
#include "internal.h"
#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u  /* golden ratio */
#define PHILOX_W1 0xBB67AE85u  /* sqrt(3) - 1 */
#define RANDOM_MAX_ATTEMPTS 64 /* rejection: P(64 misses) < 1e-80 */

/* Philox4x32 with all 128 counter bits (the KAT test calls this directly). */
void mg_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
void mg_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    if (r) {  /* the key schedule: a Weyl sequence */
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
    uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
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

/* Picks key and counter for an op using `nblocks` blocks (see the top). */
static random_gen random_start(const mg_call *c, int kseed, int64_t nblocks) {
  int64_t seed = A_I(c, kseed);
  uint64_t key = 0x9e3779b97f4a7c15ull, ctr = 0;
  if (seed >= 0) {
    key = (uint64_t)seed;
  } else if (c->ctx) {
    key = c->ctx->seed;
    ctr = c->ctx->counter;
    c->ctx->counter += (uint64_t)nblocks;
  }
  return (random_gen){{(uint32_t)key, (uint32_t)(key >> 32)}, ctr};
}

static void random_block(const random_gen *g, int64_t b, uint32_t attempt, uint32_t w[4]) {
  uint64_t ctr = g->ctr + (uint64_t)b;
  uint32_t c[4] = {(uint32_t)ctr, (uint32_t)(ctr >> 32), attempt, 0};
  mg_philox4x32(c, g->key, w);
}

static double random_u53(uint32_t hi, uint32_t lo) {
  return (double)((((uint64_t)hi << 32) | lo) >> 11) * 0x1p-53;  /* [0, 1) */
}

/* Two independent standard normals from one block (Box–Muller). */
static void random_normal_pair(const uint32_t w[4], double z[2]) {
  double u1 = 1.0 - random_u53(w[0], w[1]), u2 = random_u53(w[2], w[3]);  /* u1 in (0, 1] */
  double r = sqrt(-2.0 * log(u1)), t = 6.283185307179586 * u2;
  z[0] = r * cos(t);
  z[1] = r * sin(t);
}

static int random_threads(int64_t n) { return n >= MG_PAR_MIN ? mg_threads() : 1; }

/* ---- uniform ----------------------------------------------------------------- */

static void random_uniform_f32(const random_gen *g, float *o, int64_t n, double lo, double hi) {
  float flo = (float)lo, fhi = (float)hi, below = nextafterf(fhi, -INFINITY);
  double span = hi - lo;
  int nt = random_threads(n);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t b = 0; b < (n + 3) / 4; b++) {
    uint32_t w[4];
    random_block(g, b, 0, w);
    for (int64_t j = 0, i = b * 4; j < 4 && i < n; j++, i++) {
      float v = (float)(lo + span * ((double)(w[j] >> 8) * 0x1p-24));
      if (v >= fhi) v = below;  /* rounding must not reach high */
      o[i] = v < flo ? flo : v;
    }
  }
}

static void random_uniform_f64(const random_gen *g, double *o, int64_t n, double lo, double hi) {
  double below = nextafter(hi, -INFINITY), span = hi - lo;
  int nt = random_threads(n);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t b = 0; b < (n + 1) / 2; b++) {
    uint32_t w[4];
    random_block(g, b, 0, w);
    for (int64_t j = 0, i = b * 2; j < 2 && i < n; j++, i++) {
      double v = lo + span * random_u53(w[2 * j], w[2 * j + 1]);
      o[i] = v >= hi ? below : v < lo ? lo : v;
    }
  }
}

mg_status k_uniform(const mg_call *c, mg_tensor *out) {
  int64_t n = mg_tensor_numel(out);
  int f32 = out->dtype == MG_FLOAT32;
  random_gen g = random_start(c, 4, f32 ? (n + 3) / 4 : (n + 1) / 2);
  if (f32) random_uniform_f32(&g, (float *)mg_ptr(out), n, A_F(c, 1), A_F(c, 2));
  else random_uniform_f64(&g, (double *)mg_ptr(out), n, A_F(c, 1), A_F(c, 2));
  return MG_OK;
}

/* ---- normal and truncated normal -------------------------------------------------- */

/* Element i is z[i % 2] of block i / 2; truncated, it redraws with the
 * attempt number until |z| <= 2. Stamped per output type. */
#define NORMAL_FILL(T)                                                                   \
  do {                                                                                   \
    T *o = (T *)mg_ptr(out);                                                             \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if (nt > 1)")            \
    for (int64_t b = 0; b < nb; b++) {                                                   \
      uint32_t w[4];                                                                     \
      double z[2], r[2];                                                                 \
      random_block(&g, b, 0, w);                                                         \
      random_normal_pair(w, z);                                                          \
      for (int j = 0; j < 2 && b * 2 + j < n; j++) {                                     \
        uint32_t a = 0;                                                                  \
        while (trunc && fabs(z[j]) > 2.0 && ++a < RANDOM_MAX_ATTEMPTS) {                 \
          random_block(&g, b, a, w);                                                     \
          random_normal_pair(w, r);                                                      \
          z[j] = r[j];                                                                   \
        }                                                                                \
        if (trunc && fabs(z[j]) > 2.0) z[j] = 0;                                         \
        o[b * 2 + j] = (T)(mean + stddev * z[j]);                                        \
      }                                                                                  \
    }                                                                                    \
  } while (0)

static mg_status random_normal(const mg_call *c, mg_tensor *out, int trunc) {
  int64_t n = mg_tensor_numel(out), nb = (n + 1) / 2;
  double mean = A_F(c, 1), stddev = A_F(c, 2);
  random_gen g = random_start(c, 4, nb);
  int nt = random_threads(n);
  if (out->dtype == MG_FLOAT32) NORMAL_FILL(float);
  else NORMAL_FILL(double);
  return MG_OK;
}

mg_status k_normal(const mg_call *c, mg_tensor *out) { return random_normal(c, out, 0); }
mg_status k_truncated_normal(const mg_call *c, mg_tensor *out) { return random_normal(c, out, 1); }

/* ---- bernoulli ------------------------------------------------------------------------ */

#define BERNOULLI_FILL(T)                                                                \
  do {                                                                                   \
    T *o = (T *)mg_ptr(out);                                                             \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if (nt > 1)")            \
    for (int64_t b = 0; b < nb; b++) {                                                   \
      uint32_t w[4];                                                                     \
      random_block(&g, b, 0, w);                                                         \
      for (int64_t j = 0, i = b * 4; j < 4 && i < n; j++, i++) o[i] = (T)((double)w[j] < cut); \
    }                                                                                    \
  } while (0)

mg_status k_bernoulli(const mg_call *c, mg_tensor *out) {
  int64_t n = mg_tensor_numel(out), nb = (n + 3) / 4;
  double cut = A_F(c, 1) * 4294967296.0;  /* P(w < p * 2^32) = p for a uniform 32-bit w */
  random_gen g = random_start(c, 3, nb);
  int nt = random_threads(n);
  switch ((mg_dtype)out->dtype) {
  case MG_FLOAT32: BERNOULLI_FILL(float); break;
  case MG_FLOAT64: BERNOULLI_FILL(double); break;
  case MG_INT32: BERNOULLI_FILL(int32_t); break;
  case MG_INT64: BERNOULLI_FILL(int64_t); break;
  default: BERNOULLI_FILL(uint8_t); break;  /* uint8 and bool */
  }
  return MG_OK;
}

/* ---- randint ------------------------------------------------------------------------------ */

/* A uniform integer in [0, range) (range 0 = all 2^64 values) for element j
 * of block b: Lemire's multiply-shift, redrawing the few biased products. */
static uint64_t random_below(const random_gen *g, int64_t b, int j, uint64_t range, const uint32_t first[4]) {
  uint32_t w[4];
  memcpy(w, first, sizeof w);
  uint64_t x = ((uint64_t)w[2 * j] << 32) | w[2 * j + 1];
  if (range == 0) return x;
  unsigned __int128 m = (unsigned __int128)x * range;
  uint64_t low = (uint64_t)m;
  if (low < range) {
    uint64_t bias = -range % range;  /* 2^64 mod range: products below it are biased */
    for (uint32_t a = 1; low < bias && a < RANDOM_MAX_ATTEMPTS; a++) {
      random_block(g, b, a, w);
      x = ((uint64_t)w[2 * j] << 32) | w[2 * j + 1];
      m = (unsigned __int128)x * range;
      low = (uint64_t)m;
    }
  }
  return (uint64_t)(m >> 64);
}

#define RANDINT_FILL(T)                                                                  \
  do {                                                                                   \
    T *o = (T *)mg_ptr(out);                                                             \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if (nt > 1)")            \
    for (int64_t b = 0; b < nb; b++) {                                                   \
      uint32_t w[4];                                                                     \
      random_block(&g, b, 0, w);                                                         \
      for (int j = 0; j < 2 && b * 2 + j < n; j++)                                       \
        o[b * 2 + j] = (T)(int64_t)(lo + random_below(&g, b, j, range, w));              \
    }                                                                                    \
  } while (0)

mg_status k_randint(const mg_call *c, mg_tensor *out) {
  int64_t n = mg_tensor_numel(out), nb = (n + 1) / 2;
  uint64_t lo = (uint64_t)A_I(c, 1), range = (uint64_t)A_I(c, 2) - lo + 1;  /* wraps to 0 for the full range */
  random_gen g = random_start(c, 4, nb);
  int nt = random_threads(n);
  switch ((mg_dtype)out->dtype) {
  case MG_INT32: RANDINT_FILL(int32_t); break;
  case MG_INT64: RANDINT_FILL(int64_t); break;
  default: RANDINT_FILL(uint8_t); break;
  }
  return MG_OK;
}
