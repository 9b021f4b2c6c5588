/*
 * sort.c — sort, argsort, top_k_indices and searchsorted.
 *
 * Sorting is one stable LSD radix sort of (key, position) pairs, for every
 * dtype: each element becomes a 64-bit unsigned key whose order is the
 * element order (floats: the sign bit flipped, negatives inverted; -0 is
 * made +0 so it ties with 0, every NaN one positive NaN above +inf, as
 * NumPy sorts NaN last; signed integers: the sign bit flipped). DESCENDING
 * inverts the keys, so equal elements keep their order in both directions
 * (a stable sort, and top_k's lower index first among ties, as TF). The
 * digits are 8 bits; one pass counts all eight digit histograms and a digit
 * that is the same for every key is skipped. Elements of 4 bytes or fewer
 * sort as 32-bit keys with 32-bit positions (half the memory traffic; rows
 * of WIDE elements or more in three passes of 11-bit digits). Rows shorter than SMALL use insertion sort. top_k of a few
 * (k * 64 <= the row) selects with a k-entry heap instead of sorting the row (a long
 * row with fewer rows than threads: one heap per chunk, merged). A row is
 * gathered from its (possibly strided, non-last) axis into the workspace,
 * rows are independent and split across threads above MG_PAR_MIN elements.
 * sort writes the values read back at the sorted positions, so NaN payloads
 * and -0 come out as they went in; float32 and int32 rows sort their keys alone
 * (sort_values32: half the traffic, no gather), which map back bit for bit.
 *
 * searchsorted is a binary search per value with the same order (NaN last).
 */
#include "internal.h"
#include <omp.h>
#include <stdint.h>
#include <string.h>

#define SMALL 32
#define WIDE 16384  /* rows from this long sort 32-bit keys in 11-bit digits (their counts fill L1 otherwise) */

static inline uint64_t key_f32(float v) {
  uint32_t b;
  if (v != v) v = __builtin_nanf("");
  if (v == 0) v = 0.0f;
  memcpy(&b, &v, 4);
  return (b & 0x80000000u) ? (uint64_t)(~b) : (uint64_t)(b | 0x80000000u);
}
static inline uint64_t key_f64(double v) {
  uint64_t b;
  if (v != v) v = __builtin_nan("");
  if (v == 0) v = 0.0;
  memcpy(&b, &v, 8);
  return (b & 0x8000000000000000ull) ? ~b : (b | 0x8000000000000000ull);
}

/* Keys of n elements of dtype dt, stride st (in elements) apart. */
static void make_keys(mg_dtype dt, const char *x, int64_t st, int64_t n, uint64_t *k, int desc) {
  uint64_t flip = desc ? ~(uint64_t)0 : 0;
  switch (dt) {
    case MG_FLOAT32: for (int64_t i = 0; i < n; i++) k[i] = key_f32(((const float *)x)[i * st]) ^ flip; break;
    case MG_FLOAT64: for (int64_t i = 0; i < n; i++) k[i] = key_f64(((const double *)x)[i * st]) ^ flip; break;
    case MG_INT32:
      for (int64_t i = 0; i < n; i++) k[i] = ((uint64_t)(uint32_t)((const int32_t *)x)[i * st] ^ 0x80000000u) ^ flip;
      break;
    case MG_INT64:
      for (int64_t i = 0; i < n; i++) k[i] = ((uint64_t)((const int64_t *)x)[i * st] ^ 0x8000000000000000ull) ^ flip;
      break;
    default: for (int64_t i = 0; i < n; i++) k[i] = (uint64_t)((const uint8_t *)x)[i * st] ^ flip; break;
  }
}

/* Sorts keys k with their positions ix (0..n-1 on return sorted alongside); k2/ix2 are
 * scratch of n. Returns the position array holding the result. Stamped for 64-bit keys
 * and positions and for 32-bit ones (float32, int32, uint8, bool rows shorter than 2^32:
 * half the memory traffic per pass; long rows in 11-bit digits: three passes). */
#define RADIX_FN(NAME, KT, IT, NDIG, BITS)                                                   \
  static IT *NAME(KT *k, KT *k2, IT *ix, IT *ix2, int64_t n) {                          \
    for (int64_t i = 0; i < n; i++) ix[i] = (IT)i;                                      \
    if (n < SMALL) {                                                                    \
      for (int64_t i = 1; i < n; i++) {                                                 \
        KT kv = k[i];                                                                   \
        IT iv = ix[i];                                                                  \
        int64_t j = i - 1;                                                              \
        while (j >= 0 && k[j] > kv) {                                                   \
          k[j + 1] = k[j];                                                              \
          ix[j + 1] = ix[j];                                                            \
          j--;                                                                          \
        }                                                                               \
        k[j + 1] = kv;                                                                  \
        ix[j + 1] = iv;                                                                 \
      }                                                                                 \
      return ix;                                                                        \
    }                                                                                   \
    int64_t cnt[NDIG][1 << BITS]; /* on the stack: static TLS is too small in a dlopened module */ \
    memset(cnt, 0, sizeof cnt);                                                         \
    for (int64_t i = 0; i < n; i++) {                                                   \
      KT v = k[i];                                                                      \
      for (int d = 0; d < NDIG; d++) cnt[d][(v >> (BITS * d)) & ((1 << BITS) - 1)]++;   \
    }                                                                                   \
    for (int d = 0; d < NDIG; d++) {                                                    \
      int64_t *c = cnt[d];                                                              \
      if (c[(k[0] >> (BITS * d)) & ((1 << BITS) - 1)] == n) continue; /* one digit everywhere */ \
      int64_t sum = 0;                                                                  \
      for (int b = 0; b < (1 << BITS); b++) {                                           \
        int64_t t = c[b];                                                               \
        c[b] = sum;                                                                     \
        sum += t;                                                                       \
      }                                                                                 \
      for (int64_t i = 0; i < n; i++) {                                                 \
        int64_t at = c[(k[i] >> (BITS * d)) & ((1 << BITS) - 1)]++;                     \
        k2[at] = k[i];                                                                  \
        ix2[at] = ix[i];                                                                \
      }                                                                                 \
      KT *tk = k;                                                                       \
      k = k2;                                                                           \
      k2 = tk;                                                                          \
      IT *ti = ix;                                                                      \
      ix = ix2;                                                                         \
      ix2 = ti;                                                                         \
    }                                                                                   \
    return ix;                                                                          \
  }
RADIX_FN(radix64, uint64_t, int64_t, 8, 8)
RADIX_FN(radix32, uint32_t, uint32_t, 4, 8)
RADIX_FN(radix32w, uint32_t, uint32_t, 3, 11)  /* long rows: 3 digits of 11 bits (the top one 10) */

/* Keys alone, no positions: sort's values of 4-byte elements, whose key maps back to
 * the element bit for bit (keys_to_values32), so half the bytes move per pass and
 * nothing is gathered at the end. Counts are 32-bit (rows shorter than 2^32). */
#define RADIX_KEYS_FN(NAME, NDIG, BITS)                                                     \
  static uint32_t *NAME(uint32_t *k, uint32_t *k2, int64_t n) {                          \
    if (n < SMALL) {                                                                    \
      for (int64_t i = 1; i < n; i++) {                                                 \
        uint32_t kv = k[i];                                                             \
        int64_t j = i - 1;                                                              \
        while (j >= 0 && k[j] > kv) {                                                   \
          k[j + 1] = k[j];                                                              \
          j--;                                                                          \
        }                                                                               \
        k[j + 1] = kv;                                                                  \
      }                                                                                 \
      return k;                                                                         \
    }                                                                                   \
    enum { NB = 1 << BITS, MASK = NB - 1 };                                             \
    uint32_t cnt[NDIG][NB];                                                             \
    memset(cnt, 0, sizeof cnt);                                                         \
    for (int64_t i = 0; i < n; i++) {                                                   \
      uint32_t v = k[i];                                                                \
      for (int d = 0; d < NDIG; d++) cnt[d][(v >> (BITS * d)) & MASK]++;                \
    }                                                                                   \
    for (int d = 0; d < NDIG; d++) {                                                    \
      uint32_t *c = cnt[d];                                                             \
      if (c[(k[0] >> (BITS * d)) & MASK] == (uint32_t)n) continue; /* one digit everywhere */ \
      uint32_t sum = 0;                                                                 \
      for (int q = 0; q < NB; q++) {                                                    \
        uint32_t t = c[q];                                                              \
        c[q] = sum;                                                                     \
        sum += t;                                                                       \
      }                                                                                 \
      for (int64_t i = 0; i < n; i++) {                                                 \
        uint32_t v = k[i];                                                              \
        k2[c[(v >> (BITS * d)) & MASK]++] = v;                                          \
      }                                                                                 \
      uint32_t *t = k;                                                                  \
      k = k2;                                                                           \
      k2 = t;                                                                           \
    }                                                                                   \
    return k;                                                                           \
  }
RADIX_KEYS_FN(radix_keys32, 4, 8)
RADIX_KEYS_FN(radix_keys32w, 3, 11)

/* sort's values of a float32 or int32 row through keys alone: the key of a float keeps
 * its bits (no -0 or NaN canonicalising; -0 sorts just below +0, which it equals, so any
 * order of the two is a correct sort), and maps back exactly. A NaN with its sign bit set
 * would sort first, not last: such a row returns 0 and takes the general path. */
static int sort_values32(mg_dtype dt, const uint32_t *x, int64_t st, int64_t n, uint32_t *k, uint32_t *k2,
                         uint32_t *y, int64_t yst, int desc) {
  uint32_t flip = desc ? 0xffffffffu : 0;
  if (dt == MG_FLOAT32) {
    uint32_t negnan = 0;
    for (int64_t i = 0; i < n; i++) {
      uint32_t b = x[i * st];
      negnan |= (uint32_t)(b > 0xff800000u);
      k[i] = ((b & 0x80000000u) ? ~b : (b | 0x80000000u)) ^ flip;
    }
    if (negnan) return 0;
  } else {
    for (int64_t i = 0; i < n; i++) k[i] = (x[i * st] ^ 0x80000000u) ^ flip;
  }
  const uint32_t *r = (n >= WIDE ? radix_keys32w : radix_keys32)(k, k2, n);
  if (dt == MG_FLOAT32) {
    for (int64_t i = 0; i < n; i++) {
      uint32_t v = r[i] ^ flip;
      y[i * yst] = (v & 0x80000000u) ? (v & 0x7fffffffu) : ~v;
    }
  } else {
    for (int64_t i = 0; i < n; i++) y[i * yst] = (r[i] ^ flip) ^ 0x80000000u;
  }
  return 1;
}

/* The k smallest (key, position) pairs of a row of n elements, in order, into hp[0..k)
 * (k <= n): a max-heap of k (key, position) entries (hk, hp), for top_k with k much
 * smaller than the row. Keys are made a block at a time into blk (SEL_BLOCK entries, or
 * n if fewer), so the row is read once and nothing of its size is written; most elements
 * fail the one comparison with the heap's largest. A later position never beats an
 * equal key, so ties keep the lower position. */
#define SEL_BLOCK 2048
static void heap_select(mg_dtype dt, const char *x, int64_t st, int64_t n, int64_t k, int desc, uint64_t *hk,
                        int64_t *hp, uint64_t *blk) {
#define HLESS(a, b) (hk[a] < hk[b] || (hk[a] == hk[b] && hp[a] < hp[b]))
#define HSWAP(a, b)                \
  do {                             \
    uint64_t tk_ = hk[a];          \
    int64_t tp_ = hp[a];           \
    hk[a] = hk[b], hp[a] = hp[b];  \
    hk[b] = tk_, hp[b] = tp_;      \
  } while (0)
#define HSIFT_DOWN(lim)                                        \
  for (int64_t c = 0;;) {                                      \
    int64_t l = 2 * c + 1, r = l + 1, big = c;                 \
    if (l < (lim) && HLESS(big, l)) big = l;                   \
    if (r < (lim) && HLESS(big, r)) big = r;                   \
    if (big == c) break;                                       \
    HSWAP(big, c);                                             \
    c = big;                                                   \
  }
  int64_t m = 0, es = (int64_t)mg_dtype_size(dt);
  for (int64_t b0 = 0; b0 < n; b0 += SEL_BLOCK) {
    int64_t bn = n - b0 < SEL_BLOCK ? n - b0 : SEL_BLOCK;
    make_keys(dt, x + b0 * st * es, st, bn, blk, desc);
    for (int64_t t = 0; t < bn; t++) {
      uint64_t kv = blk[t];
      if (m < k) {  /* push, sift up */
        int64_t c = m++;
        hk[c] = kv, hp[c] = b0 + t;
        while (c > 0 && HLESS((c - 1) / 2, c)) {
          HSWAP((c - 1) / 2, c);
          c = (c - 1) / 2;
        }
      } else if (kv < hk[0]) {  /* replace the largest, sift down */
        hk[0] = kv, hp[0] = b0 + t;
        HSIFT_DOWN(k)
      }
    }
  }
  for (int64_t e = k - 1; e > 0; e--) {  /* heap sort: the largest to the end */
    HSWAP(0, e);
    HSIFT_DOWN(e)
  }
#undef HSIFT_DOWN
#undef HSWAP
#undef HLESS
}

typedef struct sortplan {
  mg_dtype dt;
  int64_t outer, L, inner, k;  /* k: positions written per row (L, or top_k's k) */
  int desc, base, values;       /* values: write the sorted elements, not positions */
  const char *x;
  char *y;
  char *work;                   /* per thread: 2 key and 2 position arrays of L */
} sortplan;

static void sort_row(const sortplan *p, int64_t r, int tid) {
  int64_t o = r / p->inner, j = r % p->inner, L = p->L, es = (int64_t)mg_dtype_size(p->dt);
  uint64_t *k = (uint64_t *)(p->work + (size_t)tid * (size_t)L * 32), *k2 = k + L;
  int64_t *ix = (int64_t *)(k2 + L), *ix2 = ix + L;
  const char *xr = p->x + (o * L * p->inner + j) * es;
  if (p->values && (p->dt == MG_FLOAT32 || p->dt == MG_INT32) && L <= (int64_t)UINT32_MAX &&
      sort_values32(p->dt, (const uint32_t *)xr, p->inner, L, (uint32_t *)k, (uint32_t *)k + L,
                    (uint32_t *)(p->y + (o * L * p->inner + j) * es), p->inner, p->desc))
    return;
  if (!p->values && p->k * 64 <= L) {  /* a few of many: select, do not sort */
    heap_select(p->dt, xr, p->inner, L, p->k, p->desc, k, ix, k2);
    int64_t *yr = (int64_t *)p->y + o * p->k * p->inner + j;
    for (int64_t i = 0; i < p->k; i++) yr[i * p->inner] = ix[i] + p->base;
    return;
  }
  make_keys(p->dt, xr, p->inner, L, k, p->desc);
  if (es <= 4 && L <= (int64_t)UINT32_MAX) {  /* 32-bit keys and positions */
    uint32_t *k32 = (uint32_t *)k2, *k32b = k32 + L, *i32 = (uint32_t *)ix, *i32b = i32 + L;
    for (int64_t i = 0; i < L; i++) k32[i] = (uint32_t)k[i];
    uint32_t *res = (L >= WIDE ? radix32w : radix32)(k32, k32b, i32, i32b, L);
    if (p->values) {
      char *yr = p->y + (o * L * p->inner + j) * es;
      int64_t in = p->inner;
      if (es == 4) {
        const uint32_t *xv = (const uint32_t *)xr;
        uint32_t *yv = (uint32_t *)yr;
        for (int64_t i = 0; i < L; i++) yv[i * in] = xv[(int64_t)res[i] * in];
      } else {
        for (int64_t i = 0; i < L; i++) yr[i * in] = xr[(int64_t)res[i] * in];
      }
    } else {
      int64_t *yr = (int64_t *)p->y + o * p->k * p->inner + j;
      for (int64_t i = 0; i < p->k; i++) yr[i * p->inner] = (int64_t)res[i] + p->base;
    }
    return;
  }
  int64_t *res = radix64(k, k2, ix, ix2, L);
  if (p->values) {
    char *yr = p->y + (o * L * p->inner + j) * es;
    for (int64_t i = 0; i < L; i++) memcpy(yr + i * p->inner * es, xr + res[i] * p->inner * es, (size_t)es);
  } else {
    int64_t *yr = (int64_t *)p->y + o * p->k * p->inner + j;
    for (int64_t i = 0; i < p->k; i++) yr[i * p->inner] = res[i] + p->base;
  }
}

/* top_k of a few from rows too few to give every thread one (a single long row): each
 * thread selects the k best of one contiguous chunk of the row (positions offset by the
 * chunk's start), then one merge of the sorted per-chunk lists by (key, position) gives
 * the k best of the row, ties still to the lower position. */
#define SPLIT_MIN (1 << 16)
static mg_status select_split(const sortplan *p, int64_t rows, int nth, const char *name) {
  int64_t L = p->L, k = p->k, es = (int64_t)mg_dtype_size(p->dt);
  size_t per = (size_t)k * 16 + SEL_BLOCK * 8;
  void *work;
  mg_status st = mg_work_alloc((size_t)nth * per + (size_t)nth * sizeof(int64_t), name, &work);
  if (st) return st;
  int64_t *head = (int64_t *)((char *)work + (size_t)nth * per);
  for (int64_t r = 0; r < rows; r++) {
    int64_t o = r / p->inner, j = r % p->inner;
    const char *xr = p->x + (o * L * p->inner + j) * es;
#pragma omp parallel num_threads(nth)
    {
      int t = omp_get_thread_num();
      int64_t c0 = L * t / nth, c1 = L * (t + 1) / nth;
      uint64_t *hk = (uint64_t *)((char *)work + (size_t)t * per), *blk = hk + 2 * k;
      int64_t *hp = (int64_t *)(hk + k);
      int64_t kk = c1 - c0 < k ? c1 - c0 : k;
      heap_select(p->dt, xr + c0 * p->inner * es, p->inner, c1 - c0, kk, p->desc, hk, hp, blk);
      for (int64_t i = 0; i < kk; i++) hp[i] += c0;
      for (int64_t i = kk; i < k; i++) hk[i] = UINT64_MAX, hp[i] = INT64_MAX;  /* short chunk: never chosen */
      head[t] = 0;
    }
    int64_t *yr = (int64_t *)p->y + o * k * p->inner + j;
    for (int64_t i = 0; i < k; i++) {
      int best = -1;
      uint64_t bk = 0;
      int64_t bp = 0;
      for (int t = 0; t < nth; t++) {
        if (head[t] >= k) continue;
        uint64_t *hk = (uint64_t *)((char *)work + (size_t)t * per);
        int64_t *hp = (int64_t *)(hk + k);
        uint64_t kv = hk[head[t]];
        int64_t pv = hp[head[t]];
        if (best < 0 || kv < bk || (kv == bk && pv < bp)) best = t, bk = kv, bp = pv;
      }
      head[best]++;
      yr[i * p->inner] = bp + p->base;
    }
  }
  mg_work_free(work);
  return MG_OK;
}

static mg_status sort_run(const mg_call *c, mg_tensor *out, int a, int desc, int64_t k, int values) {
  const mg_tensor *x = c->in[0];
  mg_tensor *tmp = NULL;
  mg_status st;
  int64_t n = mg_tensor_numel(x);
  sortplan p = {(mg_dtype)x->dtype, 1, x->ndim ? x->shape[a] : 1, 1, k, desc, c->ctx ? c->ctx->index_base : 0,
                values, NULL, mg_ptr(out), NULL};
  for (int d = 0; d < a; d++) p.outer *= x->shape[d];
  for (int d = a + 1; d < x->ndim; d++) p.inner *= x->shape[d];
  if (n == 0 || p.k == 0) return MG_OK;
  if ((st = mg_contiguous_input(c->info->name, x, &p.x, &tmp))) return st;
  int64_t rows = p.outer * p.inner;
  int nth = mg_threads();
  if (!values && p.k * 64 <= p.L && p.L >= SPLIT_MIN && nth > 1 && rows < nth) {
    st = select_split(&p, rows, nth, c->info->name);
    mg_tensor_release(tmp);
    return st;
  }
  int nt = n >= MG_PAR_MIN && rows > 1 ? nth : 1;
  if (nt > rows) nt = (int)rows;
  void *work;
  if ((st = mg_work_alloc((size_t)nt * (size_t)p.L * 32, c->info->name, &work))) {
    mg_tensor_release(tmp);
    return st;
  }
  p.work = work;
  mg_limits *lim = n >= MG_POLL_CHUNK ? mg_tl_kernel : NULL;
  int64_t every = p.L >= MG_POLL_CHUNK ? 1 : MG_POLL_CHUNK / (p.L + 1) + 1;
  if (nt > 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < rows; r++)
      if (!(r % every ? mg_kernel_stopped(lim) : mg_kernel_stop(lim))) sort_row(&p, r, omp_get_thread_num());
  } else {
    for (int64_t r = 0; r < rows && !(r % every ? mg_kernel_stopped(lim) : mg_kernel_stop(lim)); r++)
      sort_row(&p, r, 0);
  }
  mg_work_free(work);
  mg_tensor_release(tmp);
  return MG_OK;
}

static int sort_axis(const mg_call *c) {
  int a = 0;
  mg_norm_axis(c, "axis", A_I(c, 0), c->in[0]->ndim ? c->in[0]->ndim : 1, &a);
  return a;
}

mg_status k_sort(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  int a = sort_axis(c);
  return sort_run(c, out, a, A_I(c, 1) == 1, x->ndim ? x->shape[a] : 1, 1);
}
mg_status k_argsort(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  int a = sort_axis(c);
  return sort_run(c, out, a, A_I(c, 1) == 1, x->ndim ? x->shape[a] : 1, 0);
}
mg_status k_top_k_indices(const mg_call *c, mg_tensor *out) {
  return sort_run(c, out, c->in[0]->ndim - 1, 1, A_I(c, 0), 0);
}

/* ---- searchsorted ------------------------------------------------------------------ */

/* a < b with NaN above everything (NumPy's sort order). */
#define LESS(a, b) ((a) < (b) || ((b) != (b) && (a) == (a)))
#define SEARCH_FN(NAME, T)                                                                    \
  static int64_t NAME(const T *s, int64_t m, T v, int right) {                                \
    int64_t lo = 0, hi = m;                                                                   \
    while (lo < hi) {                                                                         \
      int64_t mid = lo + (hi - lo) / 2;                                                       \
      int go_right = right ? !LESS(v, s[mid]) : LESS(s[mid], v);                               \
      if (go_right) lo = mid + 1;                                                             \
      else hi = mid;                                                                          \
    }                                                                                         \
    return lo;                                                                                \
  }
SEARCH_FN(search_f32, float)
SEARCH_FN(search_f64, double)
SEARCH_FN(search_i32, int32_t)
SEARCH_FN(search_i64, int64_t)
SEARCH_FN(search_u8, uint8_t)

static int64_t search_one(mg_dtype dt, const char *s, int64_t m, const char *v, int64_t i, int right) {
  switch (dt) {
    case MG_FLOAT32: return search_f32((const float *)s, m, ((const float *)v)[i], right);
    case MG_FLOAT64: return search_f64((const double *)s, m, ((const double *)v)[i], right);
    case MG_INT32: return search_i32((const int32_t *)s, m, ((const int32_t *)v)[i], right);
    case MG_INT64: return search_i64((const int64_t *)s, m, ((const int64_t *)v)[i], right);
    default: return search_u8((const uint8_t *)s, m, ((const uint8_t *)v)[i], right);
  }
}

mg_status k_searchsorted(const mg_call *c, mg_tensor *out) {
  const mg_tensor *s = c->in[0], *v = c->in[1];
  mg_tensor *ts = NULL, *tv = NULL;
  mg_status st = MG_OK;
  const char *sp = mg_ptr(s), *vp = mg_ptr(v);
  int64_t n = mg_tensor_numel(v);
  if (n == 0) return MG_OK;
  const mg_tensor *src[2] = {s, v};
  mg_tensor **tmp[2] = {&ts, &tv};
  const char **ptr[2] = {&sp, &vp};
  for (int i = 0; i < 2 && !st; i++) {
    if (mg_tensor_is_contiguous(src[i])) continue;
    *tmp[i] = mg_tensor_header((mg_dtype)src[i]->dtype, src[i]->ndim, src[i]->shape);
    if (!*tmp[i]) st = mg_seterror(MG_ENOMEM, "searchsorted: out of memory");
    else if (!(st = mg_tensor_alloc_storage(*tmp[i])) && !(st = mg_copy_into(*tmp[i], src[i])))
      *ptr[i] = mg_ptr(*tmp[i]);
  }
  if (!st) {
    mg_dtype dt = (mg_dtype)s->dtype;
    int64_t m = s->shape[s->ndim - 1], nv = v->ndim ? v->shape[v->ndim - 1] : 1, es = (int64_t)mg_dtype_size(dt);
    int shared = s->ndim == 1, right = A_I(c, 0) == 1, base = c->ctx ? c->ctx->index_base : 0;
    int64_t *y = (int64_t *)mg_ptr(out);
    int nt = n >= MG_PAR_MIN / 8 ? mg_threads() : 1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; i++) {
      const char *row = shared ? sp : sp + (i / nv) * m * es;
      y[i] = search_one(dt, row, m, vp, i, right) + base;
    }
  }
  mg_tensor_release(ts);
  mg_tensor_release(tv);
  return st;
}
