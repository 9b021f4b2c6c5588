/*
 * prefetch.c — a background thread that gathers batches for mg.data.
 *
 * A pure-tensor pipeline (from_tensor_slices followed by shuffle, take,
 * skip, repeat and at most one batch) needs no Lua to run: every element is
 * a list of row indices into the source tensors. mg_prefetch_new compiles it
 * into a chain of stages that mirror stdlib/moongrad/data's Lua iterators
 * one for one (same pulls, same reopen points, the same L'Ecuyer generator
 * for the shuffle buffer), so both paths yield the same elements. A pthread
 * runs the chain and copies the rows of each element into fresh malloc'd
 * buffers, filling a bounded ring; the consumer (the Lua thread) waits for a
 * slot and wraps its buffers as tensors with mg_tensor_borrow, so tensor
 * headers come from the consumer's own pools and the worker never touches
 * engine state (its errors are kept in the handle, reported by _next). Each
 * slot carries the shuffle stages' iteration counters as they were after
 * the element was made, so the Lua side can keep its counters in step.
 */
#include "internal.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define RNG_M1 2147483563LL
#define RNG_M2 2147483399LL

typedef struct pf_stage {
  mg_pf_stage def;
  int64_t count, done;      /* take: elements given; repeat: passes finished */
  int got, finished, skipped;
  int64_t *buf, nbuf, cap;  /* shuffle buffer of row indices */
  int updone;
  int64_t rng[2];
  int shuffle_slot;         /* index into the epoch arrays, or -1 */
} pf_stage;

typedef struct pf_slot {
  int64_t count;
  void *bufs[MG_PF_MAX_SOURCES];
  int64_t epochs[MG_PF_MAX_SHUFFLES];
} pf_slot;

struct mg_prefetch {
  int nsrc, nstages, nshuffle, batched;
  mg_tensor *src[MG_PF_MAX_SOURCES];
  size_t row_bytes[MG_PF_MAX_SOURCES];
  int64_t nrows, src_pos, max_rows;
  pf_stage *st;
  int64_t *rows;                    /* the worker's scratch index list */
  int64_t epochs[MG_PF_MAX_SHUFFLES];  /* as of the last element handed out */
  pf_slot *ring;
  int cap, head, count;
  int finished, failed, started;
  atomic_int stop;                  /* set by mg_prefetch_free; long loops poll it */
  int64_t final_epochs[MG_PF_MAX_SHUFFLES];
  char err[256];
  pthread_mutex_t mu;
  pthread_cond_t not_full, not_empty;
  pthread_t thread;
};

/* ---- the generator (data/rng.lua has the same three functions) ---- */

static int64_t rng_next(int64_t *g) {
  g[0] = 40014 * g[0] % RNG_M1;
  g[1] = 40692 * g[1] % RNG_M2;
  int64_t z = g[0] - g[1];
  return z < 1 ? z + RNG_M1 - 1 : z;
}

static void rng_init(int64_t *g, int64_t seed, int64_t stream) {
  g[0] = seed % (RNG_M1 - 1) + 1;
  g[1] = (seed / (RNG_M1 - 1) + stream * 1000003) % (RNG_M2 - 1) + 1;
  for (int i = 0; i < 8; i++) rng_next(g);
}

/* ---- the stages: open = make a fresh iterator (Lua's node:_iter()) ---- */

static void open_at(mg_prefetch *p, int i) {
  if (i < 0) {
    p->src_pos = 0;
    return;
  }
  pf_stage *s = &p->st[i];
  s->count = s->done = 0;
  s->got = s->finished = s->skipped = 0;
  if (s->def.kind == MG_PF_SHUFFLE) {
    int64_t k = s->def.epoch;
    if (s->def.flag) s->def.epoch++;  /* reshuffle_each_iteration */
    rng_init(s->rng, s->def.seed, k);
    s->nbuf = 0;
    s->updone = 0;
  }
  open_at(p, i - 1);
}

/* The next element of stage i into rows (*n indices): 1, 0 at the end, -1 on error. */
static int next_at(mg_prefetch *p, int i, int64_t *rows, int64_t *n) {
  if (i < 0) {
    if (p->src_pos >= p->nrows) return 0;
    rows[0] = p->src_pos++;
    *n = 1;
    return 1;
  }
  pf_stage *s = &p->st[i];
  int r;
  int64_t c, lim = s->def.n;
  switch (s->def.kind) {
  case MG_PF_SHUFFLE:
    while (!s->updone && s->nbuf < lim) {
      if (s->nbuf == s->cap) {  /* grow: a buffer bigger than the data is never filled */
        int64_t ncap = s->cap ? s->cap * 2 : 1024;
        int64_t *nb = realloc(s->buf, (size_t)ncap * sizeof *nb);
        if (!nb) {
          snprintf(p->err, sizeof p->err, "prefetch: out of memory growing a shuffle buffer to %lld rows",
                   (long long)ncap);
          return -1;
        }
        s->buf = nb;
        s->cap = ncap;
      }
      if ((r = next_at(p, i - 1, &s->buf[s->nbuf], &c)) < 0) return -1;
      if (r) s->nbuf++;
      else s->updone = 1;
    }
    if (s->nbuf == 0) return 0;
    {
      int64_t j = (rng_next(s->rng) - 1) % s->nbuf;
      rows[0] = s->buf[j];
      s->buf[j] = s->buf[--s->nbuf];
    }
    *n = 1;
    return 1;
  case MG_PF_TAKE:
    if (lim != -1 && s->count >= lim) return 0;
    if ((r = next_at(p, i - 1, rows, n)) > 0) s->count++;
    return r;
  case MG_PF_SKIP:
    if (!s->skipped) {
      s->skipped = 1;
      for (int64_t k = 0; lim == -1 || k < lim; k++) {
        if (atomic_load_explicit(&p->stop, memory_order_relaxed)) return 0;  /* skip(-1) of an endless input */
        if ((r = next_at(p, i - 1, rows, &c)) <= 0) return r;
      }
    }
    return next_at(p, i - 1, rows, n);
  case MG_PF_REPEAT:
    for (;;) {
      if (s->finished || (lim >= 0 && s->done >= lim)) return 0;
      if ((r = next_at(p, i - 1, rows, n)) != 0) {
        if (r > 0) s->got = 1;
        return r;
      }
      s->done++;
      if (!s->got || (lim >= 0 && s->done >= lim)) {
        s->finished = 1;
        return 0;
      }
      s->got = 0;
      open_at(p, i - 1);
    }
  default: /* MG_PF_BATCH */
  {
    int64_t k = 0;
    while (k < lim) {
      if ((r = next_at(p, i - 1, rows + k, &c)) < 0) return -1;
      if (!r) break;
      k++;
    }
    if (k == 0 || (s->def.flag && k < lim)) return 0;
    *n = k;
    return 1;
  }
  }
}

/* ---- the worker ---- */

static void snapshot(const mg_prefetch *p, int64_t *epochs) {
  for (int i = 0; i < p->nstages; i++)
    if (p->st[i].shuffle_slot >= 0) epochs[p->st[i].shuffle_slot] = p->st[i].def.epoch;
}

static void free_slot(mg_prefetch *p, pf_slot *s) {
  for (int k = 0; k < p->nsrc; k++) {
    free(s->bufs[k]);
    s->bufs[k] = NULL;
  }
}

/* Gathers the rows of one element into new buffers: 0, or -1 on OOM. */
static int gather(mg_prefetch *p, int64_t n, pf_slot *slot) {
  slot->count = n;
  for (int k = 0; k < p->nsrc; k++) {
    size_t rb = p->row_bytes[k], nb = (size_t)n * rb;
    char *dst = aligned_alloc(MG_ALIGN, (nb + MG_ALIGN - 1) / MG_ALIGN * MG_ALIGN + MG_ALIGN);
    if (!dst) {
      free_slot(p, slot);
      snprintf(p->err, sizeof p->err, "prefetch: out of memory allocating a batch of %zu bytes", nb);
      return -1;
    }
    const char *base = mg_tensor_data(p->src[k]);
    for (int64_t r = 0; r < n; r++) memcpy(dst + (size_t)r * rb, base + (size_t)p->rows[r] * rb, rb);
    slot->bufs[k] = dst;
  }
  snapshot(p, slot->epochs);
  return 0;
}

static void *worker(void *arg) {
  mg_prefetch *p = arg;
  int top = p->nstages - 1;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (p->count == p->cap && !atomic_load(&p->stop)) pthread_cond_wait(&p->not_full, &p->mu);
    int stop = atomic_load(&p->stop);
    pthread_mutex_unlock(&p->mu);
    if (stop) break;
    int64_t n = 0;
    pf_slot slot = {0};
    int r = next_at(p, top, p->rows, &n);
    if (r > 0 && gather(p, n, &slot) < 0) r = -1;
    pthread_mutex_lock(&p->mu);
    if (r > 0) {
      p->ring[(p->head + p->count) % p->cap] = slot;
      p->count++;
    } else {
      p->finished = 1;
      p->failed = r < 0;
      snapshot(p, p->final_epochs);
    }
    pthread_cond_signal(&p->not_empty);
    pthread_mutex_unlock(&p->mu);
    if (r <= 0) break;
  }
  return NULL;
}

/* ---- the API ---- */

static mg_status check_plan(int nsrc, mg_tensor *const *sources, int nstages, const mg_pf_stage *stages,
                            int capacity) {
  if (nsrc < 1 || nsrc > MG_PF_MAX_SOURCES)
    return mg_seterror(MG_EARG, "prefetch: 1 to %d source tensors, got %d", MG_PF_MAX_SOURCES, nsrc);
  if (capacity < 1) return mg_seterror(MG_EARG, "prefetch: the buffer size must be at least 1, got %d", capacity);
  for (int k = 0; k < nsrc; k++) {
    const mg_tensor *t = sources[k];
    if (!t || !t->storage) return mg_seterror(MG_ESTATE, "prefetch: source %d is freed or missing", k + 1);
    if (t->ndim < 1) return mg_seterror(MG_ESHAPE, "prefetch: source %d is a scalar", k + 1);
    if (!mg_tensor_is_contiguous(t)) return mg_seterror(MG_EARG, "prefetch: source %d is not contiguous", k + 1);
    if (t->shape[0] != sources[0]->shape[0])
      return mg_seterror(MG_ESHAPE, "prefetch: source %d has %lld rows, source 1 has %lld", k + 1,
                         (long long)t->shape[0], (long long)sources[0]->shape[0]);
  }
  int batched = 0, nshuffle = 0;
  for (int i = 0; i < nstages; i++) {
    const mg_pf_stage *s = &stages[i];
    switch (s->kind) {
    case MG_PF_SHUFFLE:
      if (batched) return mg_seterror(MG_EARG, "prefetch: stage %d: a shuffle after the batch", i + 1);
      if (s->n < 1 || s->seed < 0 || s->epoch < 0)
        return mg_seterror(MG_EARG, "prefetch: stage %d: bad shuffle (buffer %lld, seed %lld)", i + 1,
                           (long long)s->n, (long long)s->seed);
      if (++nshuffle > MG_PF_MAX_SHUFFLES)
        return mg_seterror(MG_EARG, "prefetch: at most %d shuffle stages", MG_PF_MAX_SHUFFLES);
      break;
    case MG_PF_TAKE: case MG_PF_SKIP: case MG_PF_REPEAT:
      if (s->n < -1) return mg_seterror(MG_EARG, "prefetch: stage %d: count %lld", i + 1, (long long)s->n);
      break;
    case MG_PF_BATCH:
      if (batched++) return mg_seterror(MG_EARG, "prefetch: stage %d: a second batch", i + 1);
      if (s->n < 1) return mg_seterror(MG_EARG, "prefetch: stage %d: batch size %lld", i + 1, (long long)s->n);
      break;
    default: return mg_seterror(MG_EARG, "prefetch: stage %d: unknown kind %d", i + 1, (int)s->kind);
    }
  }
  return MG_OK;
}

mg_status mg_prefetch_new(int nsrc, mg_tensor *const *sources, int nstages, const mg_pf_stage *stages,
                          int capacity, mg_prefetch **out) {
  mg_status st = check_plan(nsrc, sources, nstages, stages, capacity);
  if (st) return st;
  mg_prefetch *p = calloc(1, sizeof *p);
  if (p) atomic_init(&p->stop, 0);
  if (!p) return mg_seterror(MG_ENOMEM, "prefetch: out of memory");
  p->nsrc = nsrc;
  p->nstages = nstages;
  p->cap = capacity;
  p->nrows = sources[0]->shape[0];
  p->max_rows = 1;
  p->st = calloc((size_t)(nstages ? nstages : 1), sizeof *p->st);
  p->ring = calloc((size_t)capacity, sizeof *p->ring);
  for (int i = 0; p->st && i < nstages; i++) {
    p->st[i].def = stages[i];
    p->st[i].shuffle_slot = stages[i].kind == MG_PF_SHUFFLE ? p->nshuffle++ : -1;
    if (stages[i].kind == MG_PF_BATCH) {
      p->batched = 1;
      p->max_rows = stages[i].n;
    }
  }
  p->rows = malloc((size_t)p->max_rows * sizeof *p->rows);
  for (int k = 0; k < nsrc; k++) {
    mg_tensor_retain(sources[k]);
    p->src[k] = sources[k];
    p->row_bytes[k] = mg_tensor_nbytes(sources[k]) / (size_t)(p->nrows ? p->nrows : 1);
    if (!p->nrows) {  /* no rows: the row size still comes from the shape */
      p->row_bytes[k] = mg_dtype_size((mg_dtype)sources[k]->dtype);
      for (int d = 1; d < sources[k]->ndim; d++) p->row_bytes[k] *= (size_t)sources[k]->shape[d];
    }
  }
  if (!p->st || !p->ring || !p->rows) {
    mg_prefetch_free(p);
    return mg_seterror(MG_ENOMEM, "prefetch: out of memory");
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->not_full, NULL);
  pthread_cond_init(&p->not_empty, NULL);
  open_at(p, nstages - 1);  /* here, not in the worker: the counters are right at once */
  snapshot(p, p->epochs);
  if (pthread_create(&p->thread, NULL, worker, p)) {
    mg_prefetch_free(p);
    return mg_seterror(MG_ENOMEM, "prefetch: cannot start a thread");
  }
  p->started = 1;
  *out = p;
  return MG_OK;
}

static void release_buffer(void *ud, void *data) {
  (void)ud;
  free(data);
}

mg_status mg_prefetch_next(mg_prefetch *p, mg_tensor **outs, int *got) {
  *got = 0;
  pthread_mutex_lock(&p->mu);
  while (p->count == 0 && !p->finished) pthread_cond_wait(&p->not_empty, &p->mu);
  if (p->count == 0) {
    int failed = p->failed;
    memcpy(p->epochs, p->final_epochs, sizeof p->epochs);
    pthread_mutex_unlock(&p->mu);
    return failed ? mg_seterror(MG_ENOMEM, "%s", p->err) : MG_OK;
  }
  pf_slot slot = p->ring[p->head];
  p->head = (p->head + 1) % p->cap;
  p->count--;
  pthread_cond_signal(&p->not_full);
  pthread_mutex_unlock(&p->mu);
  memcpy(p->epochs, slot.epochs, sizeof p->epochs);
  for (int k = 0; k < p->nsrc; k++) {
    const mg_tensor *s = p->src[k];
    int64_t shape[MG_MAX_DIMS];
    int nd = s->ndim - 1;
    memcpy(shape + p->batched, s->shape + 1, (size_t)nd * sizeof *shape);
    if (p->batched) shape[0] = slot.count, nd++;
    mg_status st = mg_tensor_borrow((mg_dtype)s->dtype, nd, shape, slot.bufs[k], release_buffer, NULL, &outs[k]);
    if (st) {
      for (int j = 0; j < k; j++) mg_tensor_release(outs[j]);
      for (int j = k; j < p->nsrc; j++) free(slot.bufs[j]);
      return st;
    }
  }
  *got = 1;
  return MG_OK;
}

int mg_prefetch_epochs(const mg_prefetch *p, int64_t *epochs) {
  memcpy(epochs, p->epochs, sizeof p->epochs);
  return p->nshuffle;
}

void mg_prefetch_free(mg_prefetch *p) {
  if (!p) return;
  if (p->started) {
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->not_full);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
  }
  if (p->ring)
    for (int i = 0; i < p->count; i++) free_slot(p, &p->ring[(p->head + i) % p->cap]);
  if (p->started) {
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->not_full);
    pthread_cond_destroy(&p->not_empty);
  }
  for (int i = 0; p->st && i < p->nstages; i++) free(p->st[i].buf);
  for (int k = 0; k < p->nsrc; k++) mg_tensor_release(p->src[k]);
  free(p->st);
  free(p->ring);
  free(p->rows);
  free(p);
}
