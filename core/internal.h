/*
 * internal.h — what the engine's own files share and the API hides: the
 * tensor and storage structs, the call record that infer functions and
 * kernels receive, the strided iterator, and small helpers.
 *
 * A tensor is a strided view (shape, strides and offset in elements) over a
 * refcounted storage. Small tensors keep their bytes inline in the storage
 * struct, and both structs come from per-thread free lists, so a 2x2 op costs
 * no malloc in steady state.
 */
#ifndef MG_INTERNAL_H
#define MG_INTERNAL_H

#include "mg.h"
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#define MG_INLINE_BYTES 64        /* storage bytes kept inside the struct */
#define MG_ALIGN 64               /* alignment of heap tensor buffers */
#define MG_PAR_MIN 32768          /* elements below which kernels stay on one thread */

typedef struct mg_storage {
  atomic_int refs;
  atomic_uint version;                    /* bumped by every in-place write (mg_storage_written) */
  void *data;
  size_t nbytes;
  void (*release)(void *ud, void *data);  /* borrowed host memory, or NULL */
  void *release_ud;
  bool owns;                              /* data is ours to free (heap) */
  mg_limits *acct;                        /* the memory account charged for data (limits.c), or NULL */
  _Alignas(MG_ALIGN) unsigned char inline_buf[MG_INLINE_BYTES];
} mg_storage;

enum {
  MG_TF_WEAK = 1,      /* a weakly typed Lua scalar */
  MG_TF_FREED = 2,     /* storage dropped by mg_tensor_free_storage */
  MG_TF_VARIABLE = 4,  /* a Variable: its storage may be replaced by assign */
  MG_TF_TRAINABLE = 8, /* a trainable Variable (watched automatically) */
  MG_TF_SYMBOLIC = 16  /* a value of a graph being traced: no storage */
};

struct mg_tensor {
  atomic_int refs;
  uint8_t dtype;
  uint8_t ndim;
  uint16_t flags;
  mg_storage *storage;     /* NULL once freed */
  int64_t offset;          /* in elements */
  int64_t shape[MG_MAX_DIMS];
  int64_t strides[MG_MAX_DIMS];
  mg_tensor *snapshot_of;  /* a Variable whose value this is (a tape snapshot, v:read()) */
  struct mg_graph *graph;  /* symbolic: the graph (held) and the value id in it */
  int32_t value;
  uint32_t version;        /* a Variable: bumped at every write of its value (mg_variable_version) */
};

/* Every write into an existing buffer (item and slice assignment, copy-into,
 * in-place updates) bumps its storage's version, so a tape that saved a
 * tensor for the backward pass can tell that its values changed since
 * (tape.c: "modified by an in-place operation"). */
static inline void mg_storage_written(mg_storage *s) {
  if (s) atomic_fetch_add_explicit(&s->version, 1, memory_order_relaxed);
}
static inline unsigned mg_storage_version(const mg_storage *s) {
  return s ? atomic_load_explicit(&((mg_storage *)s)->version, memory_order_relaxed) : 0;
}

/* The identity autodiff knows a tensor by: snapshots stand for their Variable. */
static inline mg_tensor *mg_identity(mg_tensor *t) { return t->snapshot_of ? t->snapshot_of : t; }

/* Per-call state handed to infer and kernel. `attrs` has defaults filled. */
typedef struct mg_call {
  mg_ctx *ctx;
  mg_op op;
  const mg_opinfo *info;
  mg_tensor *const *in;
  int nin;
  const mg_attrs *attrs;
} mg_call;

#define MG_CAST_SLOTS 4
/* What infer tells mg_apply: the output's dtype and shape, and the dtype each
 * input is cast to before the kernel runs (MG_NDTYPES = as it is). Inputs
 * past the first MG_CAST_SLOTS use cast_rest. */
typedef struct mg_meta {
  mg_dtype dtype;
  int ndim;
  int64_t shape[MG_MAX_DIMS];
  mg_dtype cast[MG_CAST_SLOTS];
  mg_dtype cast_rest;
} mg_meta;

typedef mg_status (*mg_infer_fn)(const mg_call *c, mg_meta *out);
/* Writes the op's result into `out`: allocated contiguous with the inferred
 * shape, or (MG_VIEW ops) a header with no storage yet that the kernel makes
 * a view of in[0] (mg_view_of) or allocates (mg_tensor_alloc_storage). */
typedef mg_status (*mg_kernel_fn)(const mg_call *c, mg_tensor *out);

mg_kernel_fn mg_op_kernel(mg_op op);
mg_infer_fn mg_op_infer(mg_op op);

/* What a gradient rule receives: the recorded op (inputs as the op saw
 * them, its output and attributes), the gradient of the output, and which
 * inputs need a gradient. It writes new references into gin[i] (NULL = no
 * gradient); dtype and broadcasting are fixed up by the tape afterwards. */
typedef struct mg_grad_call {
  mg_ctx *ctx;
  mg_op op;
  const mg_opinfo *info;
  int nin;
  mg_tensor *const *in;
  mg_tensor *out;
  const mg_attrs *attrs;
  mg_tensor *gout;
  const unsigned char *need;
  mg_tensor **gin;
} mg_grad_call;
typedef mg_status (*mg_grad_fn)(const mg_grad_call *g);
mg_grad_fn mg_op_grad(mg_op op);
mg_status grad_none(const mg_grad_call *g);

struct mg_ctx {
  int index_base;
  uint64_t seed;
  uint64_t counter;        /* Philox counter: advanced by every random op */
  mg_tape **tapes;         /* recording tapes, innermost last */
  int ntapes, cap_tapes;
  int paused;              /* > 0: nothing is recorded (stop_recording, internal calls) */
  struct mg_graph **traces; /* graphs being traced, innermost last */
  int ntraces, cap_traces;
  int running;             /* > 0 while mg_graph_run runs a graph (optimizer ops trust its READs) */
  const char *run_name;    /* the staged function mg_graph_run runs (its errors name it) */
  int next_probe;          /* probe sizes handed out in the current trace */
  const char *(*where)(void *ud);
  void *where_ud;
};

/* Tracing (graph.c): whether mg_apply must add a node for this call, and
 * the node-adding path itself (after infer filled m). */
int mg_trace_wants(const mg_ctx *ctx, const mg_opinfo *info, mg_tensor *const *in, int nin);
mg_status mg_trace_op(mg_ctx *ctx, mg_op op, mg_tensor *const *in, int nin, const mg_attrs *a,
                      const mg_meta *m, mg_tensor **out);
/* Variable = value while tracing: an ASSIGN node. */
mg_status mg_trace_assign(mg_ctx *ctx, mg_tensor *var, mg_tensor *value);
/* In-place updates of Variables (variable.c, for MG_STATE ops): *fresh is
 * NULL when the op may write into var's own buffer (src is var or the run's
 * READ of it, and nobody else holds the buffer), else a new buffer to write
 * into and install with mg_variable_swap_in (which takes the reference). */
mg_status mg_variable_update_target(const mg_ctx *ctx, mg_tensor *var, const mg_tensor *src, mg_tensor **fresh);
void mg_variable_swap_in(mg_tensor *var, mg_tensor *fresh);
/* The error for a symbolic tensor used where it does not belong. */
mg_status mg_symbolic_misuse(const mg_ctx *ctx, const mg_opinfo *info, const mg_tensor *t);

/* Called by mg_apply after a kernel ran: records the op on active tapes. */
mg_status mg_tape_record_op(mg_ctx *ctx, mg_op op, mg_tensor *const *in, int nin,
                            const mg_attrs *attrs, mg_tensor *out);

/* ---- attributes ------------------------------------------------------------ */
#define A_I(c, k)   ((c)->attrs->v[k].i[0])
#define A_F(c, k)   ((c)->attrs->v[k].f)
#define A_N(c, k)   ((c)->attrs->v[k].n)
#define A_LIST(c, k) ((c)->attrs->v[k].i)
#define A_SET(c, k) (((c)->attrs->set >> (k)) & 1u)
/* An axes attribute names every axis when it is absent; a given empty list
 * names none (NumPy's axis=()): sum(x, {axis={}}) is x, not a full sum. */
#define A_ALL_AXES(c, k) (!A_SET(c, k) && A_N(c, k) == 0)

/* ---- tensors ----------------------------------------------------------------- */
/* A header with shape set, contiguous strides, no storage. */
mg_tensor *mg_tensor_header(mg_dtype dt, int ndim, const int64_t *shape);
mg_status mg_tensor_alloc_storage(mg_tensor *t);
/* Makes `out` a view of `src`'s storage with out's shape and the given
 * strides/offset (in elements). */
void mg_view_of(mg_tensor *out, const mg_tensor *src, const int64_t *strides, int64_t offset);
void mg_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
int mg_shape_numel(int ndim, const int64_t *shape, int64_t *numel); /* 0 on overflow */
/* The largest logical size of a tensor (views included): far below INT64_MAX,
 * so byte offsets, strides times element sizes and aligned rounding never
 * overflow. */
#define MG_MAX_BYTES_LOG2 59
#define MG_MAX_BYTES ((int64_t)1 << MG_MAX_BYTES_LOG2)
/* The one overflow-checked element count and byte size of a shape (either
 * out pointer may be NULL). On failure the error names `what` (the op or
 * function), the dtype and the shape. */
mg_status mg_shape_size(const char *what, mg_dtype dt, int ndim, const int64_t *shape, int64_t *numel,
                        int64_t *nbytes);
static inline char *mg_ptr(const mg_tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)mg_dtype_size((mg_dtype)t->dtype);
}
/* Copies src's elements into dst (same shape or broadcastable; casts). */
mg_status mg_copy_into(mg_tensor *dst, const mg_tensor *src);
/* The elements of t in row-major order for a kernel that reads them flat: t's own buffer when it is
 * contiguous (*tmp = NULL), else a contiguous copy held in *tmp (release it after). Out of memory
 * is an error naming op. Defined outside core/kernels, so every ISA copy shares it. */
mg_status mg_contiguous_input(const char *op, const mg_tensor *t, const char **p, mg_tensor **tmp);

/* ---- the strided iterator ------------------------------------------------- */
/* Inner loop over n elements: ptrs[i] is operand i's first element, strides[i]
 * its step in bytes. Operand 0 is the output. */
typedef void (*mg_loop_fn)(char **ptrs, const int64_t *strides, int64_t n, void *ud);
#define MG_ITER_MAX 4
/* Calls fn over the whole `shape` for nops operands (broadcast to it),
 * collapsing dimensions and splitting the outer ones across threads when
 * the shape has at least MG_PAR_MIN elements. */
void mg_iter(int nops, const mg_tensor *const *ops, int ndim, const int64_t *shape,
             mg_loop_fn fn, void *ud);
/* Same with explicit byte strides per operand (ops[i] only supplies the base pointer). */
void mg_iter_strided(int nops, char *const *base, int64_t strides[][MG_MAX_DIMS], int ndim,
                     const int64_t *shape, mg_loop_fn fn, void *ud, int parallel);

/* ---- limits (limits.c) ---------------------------------------------------------- */
/* The limits current on this thread (mg_limits_enter), and those a running
 * kernel polls (set only while mg_kernel_run runs one: code outside kernels,
 * such as a slice assignment from Lua, never stops halfway). */
extern _Thread_local mg_limits *mg_tl_limits __attribute__((tls_model("initial-exec")));
extern _Thread_local mg_limits *mg_tl_kernel __attribute__((tls_model("initial-exec")));
/* Runs a kernel under the thread's limits: polls first, lets it poll between
 * its chunks, and turns a stop during it into an MG_ELIMIT error (the
 * output is then partial and must not be used). */
/* Whether mg_apply computes this call widened (a storage dtype meets an op
 * without MG_STORAGE): the executor then takes mg_apply's path, not a direct
 * kernel call. */
int mg_apply_widens(const mg_opinfo *info, const mg_meta *m, mg_tensor *const *in, int nin);
mg_status mg_kernel_run(mg_kernel_fn k, const mg_call *c, mg_tensor *out);
/* The same bracket around engine work that is not an op kernel (a fused
 * node): begin returns the outer kernel limits for end, which gives st or,
 * when a limit stopped the work, the MG_ELIMIT error. */
static inline mg_limits *mg_kernel_begin(void) {
  mg_limits *outer = mg_tl_kernel;
  mg_tl_kernel = mg_tl_limits;
  return outer;
}
static inline mg_status mg_kernel_end(mg_limits *outer, mg_status st) {
  mg_tl_kernel = outer;
  if (!st && mg_tl_limits && mg_limits_stopped(mg_tl_limits)) st = mg_limits_error(mg_tl_limits);
  return st;
}
/* Elements (or multiply-adds) of work between two polls of a long kernel:
 * about a millisecond on one core. */
#define MG_POLL_CHUNK ((int64_t)1 << 20)
/* Inside a kernel: whether to stop now (l is mg_tl_kernel read on the
 * kernel's own thread before any parallel region). */
static inline int mg_kernel_stop(mg_limits *l) { return l && mg_limits_poll(l) != MG_STOP_NONE; }
/* The same without reading the clock: whether another thread saw a stop. */
static inline int mg_kernel_stopped(const mg_limits *l) { return l && mg_limits_stopped(l) != MG_STOP_NONE; }
/* Charges n bytes to the thread's memory account before allocating them:
 * the account (with a reference the caller gives back with
 * mg_limits_unreserve), NULL when no limits are current, or
 * MG_LIMITS_REFUSED with the error set ("<what>: tensor memory limit ..."). */
#define MG_LIMITS_REFUSED ((mg_limits *)(uintptr_t)1)
mg_limits *mg_limits_reserve(size_t n, const char *what);
void mg_limits_unreserve(mg_limits *acct, size_t n);
/* A kernel workspace of n bytes in *out, MG_ALIGN-aligned, charged to the
 * memory account (MG_ELIMIT past its cap, MG_ENOMEM; *out is then NULL).
 * Freed with mg_work_free (NULL is fine). */
mg_status mg_work_alloc(size_t n, const char *what, void **out);
void mg_work_free(void *p);

/* ---- errors and shapes in messages ------------------------------------------- */
/* Formats a shape as "(2,3)" into buf (returns buf). */
char *mg_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap);
#define MG_SHAPE_BUF 200
/* Broadcasts two shapes; writes the error naming `opname` on failure. */
mg_status mg_broadcast_shapes(const char *opname, int na, const int64_t *a, int nb,
                              const int64_t *b, int *nout, int64_t *out);
/* Normalises an axis given from the context's index base against ndim. */
mg_status mg_norm_axis(const mg_call *c, const char *arg, int64_t axis, int ndim, int *out);
/* Promotion of inputs i and j with weak-scalar rules. */
mg_dtype mg_promote_inputs(mg_tensor *const *in, int n);
/* mg_check_number for the value of weak scalar t becoming a dt element; with
 * `truncate` (an explicit cast) a float's fraction is dropped first. */
mg_status mg_check_weak(const char *fname, const mg_tensor *t, mg_dtype dt, int truncate);

/* ---- threads and floating point ------------------------------------------------ */
void mg_fpu_ftz(void);     /* sets flush-to-zero / denormals-are-zero on this thread */
int mg_threads(void);

/* ---- which compiled copy of the kernels runs (isa.c) ---------------------------- */
void mg_isa_select(void);                            /* once, at start-up (config.c) */
mg_kernel_fn mg_isa_kernel(mg_op op, mg_kernel_fn base);  /* op's kernel in that copy */
const char *mg_isa_name(void);                       /* "baseline", "avx2" or "avx512" */
void mg_isa_available(char *buf, size_t cap);        /* the copies this CPU can run, "a,b" */

/* ---- random ----------------------------------------------------------------- */
/* Philox4x32-10: four 32-bit outputs for counter `ctr` under key `key`. */
void mg_philox(uint64_t key, uint64_t ctr, uint32_t out[4]);

/* ---- declarations of every infer and kernel named by ops.def ------------------ */
#define MG_OP(id, name, nin, flags, attrs, infer, kernel, grad, doc) \
  mg_status infer(const mg_call *c, mg_meta *out);                   \
  mg_status kernel(const mg_call *c, mg_tensor *out);                \
  mg_status grad(const mg_grad_call *g);
#include "ops.def"
#undef MG_OP

#endif
