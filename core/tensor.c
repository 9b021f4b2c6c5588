/*
 * tensor.c — tensor headers, refcounted storage, and the per-thread pools.
 *
 * Storage structs carry MG_INLINE_BYTES of inline data, so a tensor of up to
 * 16 floats needs no buffer allocation at all. Both structs are recycled
 * through small per-thread free lists (bounded, so a burst does not pin
 * memory), which keeps the eager small-op path free of malloc. Refcounts are
 * atomic because a tensor may be handed from one runtime (thread) to another.
 */
#include "internal.h"
#include "half.h"
#include <stdlib.h>

#define POOL_MAX 8192

typedef struct pool {
  void *items[POOL_MAX];
  int n;
} pool;

typedef struct pools {
  pool tensors, storages;
} pools;

/* A pointer, so the TLS block stays tiny (initial-exec works in dlopen'ed
 * modules and skips __tls_get_addr on the hot path). */
static _Thread_local pools *thread_pools __attribute__((tls_model("initial-exec")));

#define TENSOR_POOL (my_pools() ? &thread_pools->tensors : NULL)
#define STORAGE_POOL (my_pools() ? &thread_pools->storages : NULL)

static pools *my_pools(void) {
  if (!thread_pools) thread_pools = calloc(1, sizeof *thread_pools);
  return thread_pools;
}
static atomic_llong bytes_live;

static void *pool_get(pool *p, size_t size) {
  if (p && p->n > 0) return p->items[--p->n];
  return aligned_alloc(MG_ALIGN, (size + MG_ALIGN - 1) / MG_ALIGN * MG_ALIGN);
}

static void pool_put(pool *p, void *item) {
  if (p && p->n < POOL_MAX) p->items[p->n++] = item;
  else free(item);
}

void mg_thread_cache_drain(void) {
  pools *p = thread_pools;
  if (!p) return;
  while (p->tensors.n) free(p->tensors.items[--p->tensors.n]);
  while (p->storages.n) free(p->storages.items[--p->storages.n]);
  free(p);
  thread_pools = NULL;
}

int64_t mg_storage_bytes_live(void) { return (int64_t)atomic_load(&bytes_live); }

int mg_shape_numel(int ndim, const int64_t *shape, int64_t *numel) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0 || __builtin_mul_overflow(n, shape[i], &n)) return 0;
  *numel = n;
  return 1;
}

/* Drops one reference; 1 when it was the last. A count of 1 means we hold the
 * only reference, so no other thread can race us and the atomic RMW (the
 * costly part of a small op's bookkeeping) is skipped. */
static inline int drop_ref(atomic_int *refs) {
  if (atomic_load_explicit(refs, memory_order_acquire) == 1) return 1;
  return atomic_fetch_sub_explicit(refs, 1, memory_order_acq_rel) == 1;
}

void mg_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    strides[i] = s;
    /* A product past int64 only happens beside a zero size (mg_shape_size
     * refuses the rest): the tensor is empty and its strides are never used. */
    if (__builtin_mul_overflow(s, shape[i] > 0 ? shape[i] : 1, &s)) s = INT64_MAX;
  }
}

mg_tensor *mg_tensor_header(mg_dtype dt, int ndim, const int64_t *shape) {
  mg_tensor *t = pool_get(TENSOR_POOL, sizeof(mg_tensor));
  if (!t) return NULL;
  atomic_init(&t->refs, 1);  /* plain stores: nobody else sees t yet */
  t->dtype = (uint8_t)dt;
  t->ndim = (uint8_t)ndim;
  t->flags = 0;
  t->storage = NULL;
  t->offset = 0;
  t->snapshot_of = NULL;
  t->graph = NULL;
  t->value = -1;
  t->version = 0;  /* a Variable's write count (pooled headers keep old bytes) */
  if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof(int64_t));
  mg_contiguous_strides(ndim, t->shape, t->strides);
  return t;
}

/* NULL with *limited set when the thread's memory account refused it
 * (limits.c: checked before the buffer is allocated). */
static mg_storage *storage_new(size_t nbytes, int *limited) {
  mg_storage *s = pool_get(STORAGE_POOL, sizeof(mg_storage));
  if (!s) return NULL;
  atomic_init(&s->refs, 1);
  atomic_init(&s->version, 0);
  s->nbytes = nbytes;
  s->release = NULL;
  s->release_ud = NULL;
  s->acct = NULL;
  if (nbytes <= MG_INLINE_BYTES) {  /* inline bytes are not counted in bytes_live */
    s->data = s->inline_buf;
    s->owns = false;
    return s;
  } else {
    mg_limits *acct = mg_limits_reserve(nbytes, NULL);
    if (acct == MG_LIMITS_REFUSED) {
      pool_put(STORAGE_POOL, s);
      *limited = 1;
      return NULL;
    }
    s->data = aligned_alloc(MG_ALIGN, (nbytes + MG_ALIGN - 1) / MG_ALIGN * MG_ALIGN);
    if (!s->data) {
      mg_limits_unreserve(acct, nbytes);
      pool_put(STORAGE_POOL, s);
      return NULL;
    }
    s->acct = acct;
    s->owns = true;
  }
  atomic_fetch_add(&bytes_live, (long long)nbytes);
  return s;
}

static void storage_release(mg_storage *s) {
  if (!s || !drop_ref(&s->refs)) return;
  if (s->data != s->inline_buf) atomic_fetch_sub(&bytes_live, (long long)s->nbytes);
  if (s->acct) mg_limits_unreserve(s->acct, s->nbytes);
  if (s->release) s->release(s->release_ud, s->data);
  else if (s->owns) free(s->data);
  pool_put(STORAGE_POOL, s);
}

mg_status mg_tensor_alloc_storage(mg_tensor *t) {
  int64_t nb;
  char sb[MG_SHAPE_BUF];
  mg_status st = mg_shape_size("allocate", (mg_dtype)t->dtype, t->ndim, t->shape, NULL, &nb);
  if (st) return st;
  int limited = 0;
  t->storage = storage_new((size_t)nb, &limited);
  if (limited) return MG_ELIMIT;   /* the message says which limit */
  if (!t->storage)
    return mg_seterror(MG_ENOMEM, "out of memory allocating %lld bytes for a %s tensor of shape %s",
                       (long long)nb, mg_dtype_name((mg_dtype)t->dtype),
                       mg_shape_str(t->ndim, t->shape, sb, sizeof sb));
  if (t->offset) {  /* a header reused as something else: make it contiguous again */
    t->offset = 0;
    mg_contiguous_strides(t->ndim, t->shape, t->strides);
  }
  return MG_OK;
}

void mg_view_of(mg_tensor *out, const mg_tensor *src, const int64_t *strides, int64_t offset) {
  out->storage = src->storage;
  atomic_fetch_add(&src->storage->refs, 1);
  if (out->ndim) memcpy(out->strides, strides, out->ndim * sizeof(int64_t));
  out->offset = offset;
}

static mg_status check_dims(int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > MG_MAX_DIMS)
    return mg_seterror(MG_ESHAPE, "a tensor has at most %d dimensions, got %d", MG_MAX_DIMS, ndim);
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0)
      return mg_seterror(MG_ESHAPE, "size %lld of dimension %d is negative", (long long)shape[i], i);
  return MG_OK;
}

mg_status mg_tensor_empty(mg_dtype dt, int ndim, const int64_t *shape, mg_tensor **out) {
  mg_status st;
  if ((unsigned)dt >= MG_NDTYPES) return mg_seterror(MG_EDTYPE, "unknown dtype %d", (int)dt);
  if ((st = check_dims(ndim, shape))) return st;
  if ((st = mg_shape_size("tensor", dt, ndim, shape, NULL, NULL))) return st;
  mg_tensor *t = mg_tensor_header(dt, ndim, shape);
  if (!t) return mg_seterror(MG_ENOMEM, "out of memory allocating a tensor header");
  if ((st = mg_tensor_alloc_storage(t))) {
    mg_tensor_release(t);
    return st;
  }
  *out = t;
  return MG_OK;
}

mg_status mg_tensor_from_data(mg_dtype dt, int ndim, const int64_t *shape, const void *data,
                              mg_tensor **out) {
  mg_status st = mg_tensor_empty(dt, ndim, shape, out);
  if (st == MG_OK && (*out)->storage->nbytes) memcpy((*out)->storage->data, data, (*out)->storage->nbytes);
  return st;
}

mg_status mg_tensor_borrow(mg_dtype dt, int ndim, const int64_t *shape, void *data,
                           void (*release)(void *, void *), void *ud, mg_tensor **out) {
  mg_status st;
  int64_t n;
  if ((unsigned)dt >= MG_NDTYPES) return mg_seterror(MG_EDTYPE, "unknown dtype %d", (int)dt);
  if ((st = check_dims(ndim, shape))) return st;
  if ((st = mg_shape_size("borrow", dt, ndim, shape, &n, NULL))) return st;
  if (!data && n) return mg_seterror(MG_EARG, "borrow: data is NULL");
  mg_tensor *t = mg_tensor_header(dt, ndim, shape);
  mg_storage *s = pool_get(STORAGE_POOL, sizeof(mg_storage));
  if (!t || !s) {
    free(s);
    mg_tensor_release(t);
    return mg_seterror(MG_ENOMEM, "out of memory allocating a tensor header");
  }
  atomic_init(&s->refs, 1);
  atomic_init(&s->version, 0);
  s->data = data;
  s->nbytes = (size_t)n * mg_dtype_size(dt);
  s->release = release;
  s->release_ud = ud;
  s->owns = false;
  s->acct = NULL;   /* the host's memory: not the engine's to count */
  atomic_fetch_add(&bytes_live, (long long)s->nbytes);
  if (!release) s->release = NULL;
  t->storage = s;
  *out = t;
  return MG_OK;
}

mg_status mg_scalar_f64(double v, int weak, mg_tensor **out) {
  mg_status st = mg_tensor_empty(MG_FLOAT64, 0, NULL, out);
  if (st) return st;
  *(double *)(*out)->storage->data = v;
  if (weak) (*out)->flags |= MG_TF_WEAK;
  return MG_OK;
}

mg_status mg_scalar_i64(int64_t v, int weak, mg_tensor **out) {
  mg_status st = mg_tensor_empty(MG_INT64, 0, NULL, out);
  if (st) return st;
  *(int64_t *)(*out)->storage->data = v;
  if (weak) (*out)->flags |= MG_TF_WEAK;
  return MG_OK;
}

void mg_tensor_retain(mg_tensor *t) {
  if (t) atomic_fetch_add(&t->refs, 1);
}

void mg_tensor_release(mg_tensor *t) {
  if (!t || !drop_ref(&t->refs)) return;
  storage_release(t->storage);
  if (t->snapshot_of) mg_tensor_release(t->snapshot_of);
  if (t->graph) mg_graph_release(t->graph);
  pool_put(TENSOR_POOL, t);
}

void mg_tensor_free_storage(mg_tensor *t) {
  if (!t || !t->storage) return;
  storage_release(t->storage);
  t->storage = NULL;
  t->flags |= MG_TF_FREED;
}

void mg_free(void *p) { free(p); }

mg_dtype mg_tensor_dtype(const mg_tensor *t) { return (mg_dtype)t->dtype; }
int mg_tensor_ndim(const mg_tensor *t) { return t->ndim; }
const int64_t *mg_tensor_shape(const mg_tensor *t) { return t->shape; }
const int64_t *mg_tensor_strides(const mg_tensor *t) { return t->strides; }
int mg_tensor_is_weak(const mg_tensor *t) { return (t->flags & MG_TF_WEAK) != 0; }
int mg_tensor_is_freed(const mg_tensor *t) { return (t->flags & MG_TF_FREED) != 0; }

/* No overflow: every tensor's shape passed mg_shape_size when it was made. */
int64_t mg_tensor_numel(const mg_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

size_t mg_tensor_nbytes(const mg_tensor *t) {
  return (size_t)mg_tensor_numel(t) * mg_dtype_size((mg_dtype)t->dtype);
}

int mg_tensor_is_contiguous(const mg_tensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->strides[i] != s) return 0;
    s *= t->shape[i];
  }
  return 1;
}

void *mg_tensor_data(const mg_tensor *t) { return t->storage ? mg_ptr(t) : NULL; }
const void *mg_tensor_storage_id(const mg_tensor *t) { return t->storage; }

/* Byte offset of the flat row-major element `flat` in a strided tensor. */
static int64_t flat_offset(const mg_tensor *t, int64_t flat) {
  int64_t off = 0;
  for (int i = t->ndim - 1; i >= 0; i--) {
    off += (flat % t->shape[i]) * t->strides[i];
    flat /= t->shape[i];
  }
  return off * (int64_t)mg_dtype_size((mg_dtype)t->dtype);
}

#define READ_AS(T, t, p)                                   \
  switch ((mg_dtype)(t)->dtype) {                          \
  case MG_FLOAT32: return (T) * (const float *)(p);        \
  case MG_FLOAT64: return (T) * (const double *)(p);       \
  case MG_INT32: return (T) * (const int32_t *)(p);        \
  case MG_INT64: return (T) * (const int64_t *)(p);        \
  case MG_UINT8: return (T) * (const uint8_t *)(p);        \
  case MG_BOOL: return (T) * (const uint8_t *)(p);         \
  case MG_INT8: return (T) * (const int8_t *)(p);          \
  case MG_INT16: return (T) * (const int16_t *)(p);        \
  case MG_FLOAT16: return (T)mg_f16_to_f32(*(const uint16_t *)(p));   \
  case MG_BFLOAT16: return (T)mg_bf16_to_f32(*(const uint16_t *)(p)); \
  default: return 0;                                       \
  }

double mg_tensor_get_f64(const mg_tensor *t, int64_t flat) {
  if (!t->storage) return 0;
  const char *p = mg_ptr(t) + flat_offset(t, flat);
  READ_AS(double, t, p)
}

int64_t mg_tensor_get_i64(const mg_tensor *t, int64_t flat) {
  if (!t->storage) return 0;
  const char *p = mg_ptr(t) + flat_offset(t, flat);
  if (mg_dtype_is_float((mg_dtype)t->dtype)) {
    double d = mg_tensor_get_f64(t, flat);
    return d != d ? 0 : d >= 9.2233720368547758e18 ? INT64_MAX : d <= -9.2233720368547758e18 ? INT64_MIN : (int64_t)d;
  }
  READ_AS(int64_t, t, p)
}

mg_status mg_tensor_copy_to(const mg_tensor *t, void *dst, size_t cap) {
  if (!t->storage) return mg_seterror(MG_ESTATE, "copy_to: the tensor was freed");
  size_t nb = mg_tensor_nbytes(t);
  if (cap < nb)
    return mg_seterror(MG_EARG, "copy_to: destination holds %zu bytes, the tensor needs %zu", cap, nb);
  mg_tensor *view;
  mg_status st = mg_tensor_borrow((mg_dtype)t->dtype, t->ndim, t->shape, dst, NULL, NULL, &view);
  if (st) return st;
  st = mg_copy_into(view, t);
  mg_tensor_release(view);
  return st;
}

mg_status mg_tensor_assign(mg_tensor *dst, const mg_tensor *src) {
  char a[MG_SHAPE_BUF], b[MG_SHAPE_BUF];
  if (!dst->storage || !src->storage) return mg_seterror(MG_ESTATE, "assign: a tensor was freed");
  int n;
  int64_t shape[MG_MAX_DIMS];
  if (mg_broadcast_shapes("assign", dst->ndim, dst->shape, src->ndim, src->shape, &n, shape))
    return MG_ESHAPE;
  if (n != dst->ndim || memcmp(shape, dst->shape, (size_t)n * sizeof(int64_t)))
    return mg_seterror(MG_ESHAPE, "assign: a value of shape %s does not fit a target of shape %s",
                       mg_shape_str(src->ndim, src->shape, a, sizeof a),
                       mg_shape_str(dst->ndim, dst->shape, b, sizeof b));
  mg_status st = mg_check_weak("assign", src, (mg_dtype)dst->dtype, 0);  /* t[1] = 300 into uint8 */
  return st ? st : mg_copy_into(dst, src);
}

mg_status mg_contiguous_input(const char *op, const mg_tensor *t, const char **p, mg_tensor **tmp) {
  *tmp = NULL;
  if (mg_tensor_is_contiguous(t)) {
    *p = mg_ptr(t);
    return MG_OK;
  }
  mg_tensor *c = NULL;
  mg_status st = mg_tensor_empty((mg_dtype)t->dtype, t->ndim, t->shape, &c);
  if (!st) st = mg_copy_into(c, t);
  if (st) {
    mg_tensor_release(c);
    return st == MG_ENOMEM ? mg_seterror(MG_ENOMEM, "%s: out of memory", op) : st;
  }
  *tmp = c;
  *p = mg_ptr(c);
  return MG_OK;
}
