/*
 * mg.h — the public API of the moongrad engine (libmoongrad).
 *
 * This header is the specification: if a function is not declared here it is
 * not API. The engine is plain C11 with opaque handles, so it can be called
 * from the Lua 5.4 binding, from LuaJIT's FFI and from C++ alike. It never
 * includes lua.h, never calls abort() or exit(), and no longjmp crosses it.
 *
 * Errors: every fallible call returns an mg_status (MG_OK == 0). The message
 * of the last failure on the calling thread is kept in a thread-local buffer,
 * read with mg_last_error(). Messages name the op, the argument, the shapes
 * and dtypes: "matmul: inner dimensions differ: (2,3) @ (4,5)".
 *
 * Ownership: every function that returns a new mg_tensor* hands the caller
 * one reference; release it with mg_tensor_release(). Borrowed pointers are
 * called out where they occur.
 */
#ifndef MG_H
#define MG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* MG_API marks what libmoongrad exports. The libraries are built with
 * -fvisibility=hidden (and their static archives with every other symbol made
 * local), so a host that defines its own map_get or k_add links and runs with
 * either; a function is API exactly when a public header declares it MG_API
 * (tests/symbols checks the libraries against the headers). */
#ifndef MG_API
#if defined(__GNUC__) || defined(__clang__)
#define MG_API __attribute__((visibility("default")))
#else
#define MG_API
#endif
#endif

#define MG_VERSION "0.1.0"
#define MG_MAX_DIMS 8

typedef enum mg_status {
  MG_OK = 0,
  MG_EARG,    /* a bad argument or attribute value */
  MG_ESHAPE,  /* shapes that do not fit together */
  MG_EDTYPE,  /* a dtype the op does not accept */
  MG_EINDEX,  /* an index out of range */
  MG_ENOMEM,  /* an allocation failed or would be absurdly large */
  MG_ESTATE,  /* a use of a freed tensor, or a call at the wrong time */
  MG_EIO,     /* a file could not be read or written */
  MG_ESCRIPT, /* embedding (moongrad.h): a script raised an error */
  MG_ELIMIT   /* embedding: a runtime limit (memory, instructions, time) was hit */
} mg_status;

typedef enum mg_dtype {
  MG_FLOAT32 = 0,
  MG_FLOAT64,
  MG_INT32,
  MG_INT64,
  MG_UINT8,
  MG_BOOL,
  /* storage dtypes (2 and 1 bytes): kernels without a native loop for them
   * compute in mg_dtype_compute(dt) (float32, int32) and round once on store */
  MG_FLOAT16,
  MG_BFLOAT16,
  MG_INT8,
  MG_INT16,
  MG_NDTYPES
} mg_dtype;

typedef struct mg_tensor mg_tensor;
typedef struct mg_ctx mg_ctx;

/* ---- errors --------------------------------------------------------------- */

/* The message of the last failed call on this thread ("" if none). Borrowed. */
MG_API const char *mg_last_error(void);
/* Sets the thread's message (printf-style) and returns `st`. */
MG_API mg_status mg_seterror(mg_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
MG_API const char *mg_status_name(mg_status st);

/* ---- dtypes --------------------------------------------------------------- */

MG_API const char *mg_dtype_name(mg_dtype dt);            /* "float32", ... */
MG_API int mg_dtype_from_name(const char *name, mg_dtype *out); /* 1 if known */
MG_API size_t mg_dtype_size(mg_dtype dt);
MG_API int mg_dtype_is_float(mg_dtype dt);
MG_API int mg_dtype_is_int(mg_dtype dt);                  /* int8/int16/int32/int64/uint8 */
/* float16, bfloat16, int8, int16: the dtypes stored narrower than they are
 * computed in; mg_dtype_compute gives the dtype kernels see for them
 * (float32, int32) and is the identity for the others. */
MG_API int mg_dtype_is_storage(mg_dtype dt);
MG_API mg_dtype mg_dtype_compute(mg_dtype dt);
/* One float16/bfloat16 element (dt) from a number, rounded to nearest even,
 * and back (exact); bindings that write elements themselves use them. */
MG_API uint16_t mg_half_from_f64(mg_dtype dt, double v);
MG_API double mg_half_to_f64(mg_dtype dt, uint16_t h);
/* The promotion of two strong dtypes (bool < ints < floats; JAX/NumPy's
 * lattice: int8 < int16 < int32 < int64, uint8 with a signed int at least
 * int16, float16/bfloat16 < float32 < float64, float16 with bfloat16 float32). */
MG_API mg_dtype mg_promote(mg_dtype a, mg_dtype b);
/* Whether a number given by the user (a Lua number: the integer i when is_int,
 * else the float f) can become an element of dtype dt exactly: MG_OK, or
 * MG_EARG with a message "<fname>: the Lua number 300 is out of bounds for
 * uint8 (0..255)" (arg, when not NULL, replaces "the Lua number"). For an
 * integer dtype the value must lie in its range and a float must also be
 * finite and have no fraction (NumPy 2 raises OverflowError for a Python
 * integer out of bounds, TF for a float with a fraction); every number fits
 * float32, float64 (large ones round, as in NumPy) and bool (nonzero is true). */
MG_API mg_status mg_check_number(const char *fname, const char *arg, mg_dtype dt, int is_int, int64_t i, double f);

/* ---- context -------------------------------------------------------------- */

/* A context carries per-runtime state: the random generator, the index base
 * (0 for C, 1 for Lua: axes and index tensors are counted from it), and later
 * tapes and graph builders. One context per thread at a time. NULL options
 * to mg_ctx_new mean defaults. The caller owns the context. */
MG_API mg_ctx *mg_ctx_new(void);
MG_API void mg_ctx_free(mg_ctx *ctx);
MG_API void mg_ctx_set_index_base(mg_ctx *ctx, int base);   /* 0 or 1 */
MG_API int mg_ctx_index_base(const mg_ctx *ctx);
MG_API void mg_ctx_seed(mg_ctx *ctx, uint64_t seed);        /* reseeds the generator */
/* The generator's whole state (seed and Philox counter), to save with a
 * checkpoint and put back so a resumed run draws what the original would. */
MG_API void mg_ctx_rng_state(const mg_ctx *ctx, uint64_t *seed, uint64_t *counter);
MG_API void mg_ctx_set_rng_state(mg_ctx *ctx, uint64_t seed, uint64_t counter);

/* Process-wide set-up, done once (idempotent, thread-safe): selects the BLIS
 * kernel family from CPUID, sets flush-to-zero on the kernel threads. */
MG_API void mg_init(void);
/* Threads used by kernels and BLIS: 1 to mg_max_threads(), or 0 for one per
 * processor. Out of range is MG_EARG and changes nothing. The start-up value
 * is MG_NUM_THREADS from the environment (clamped to that range), else one
 * per processor. */
MG_API mg_status mg_set_num_threads(int64_t n);
MG_API int mg_get_num_threads(void);
/* The processors this process may run on (its CPU affinity): the most
 * threads mg_set_num_threads accepts. */
MG_API int mg_max_threads(void);
/* Writes a one-line-per-fact description of the configuration into buf:
 * "blis_arch=skx\nthreads=2\nftz=1\n...". Returns the length needed. */
MG_API size_t mg_config_info(char *buf, size_t cap);

/* ---- tensors -------------------------------------------------------------- */

/* A new contiguous, uninitialised tensor. */
MG_API mg_status mg_tensor_empty(mg_dtype dt, int ndim, const int64_t *shape, mg_tensor **out);
/* A new contiguous tensor holding a copy of `data` (row-major, `dt` elements). */
MG_API mg_status mg_tensor_from_data(mg_dtype dt, int ndim, const int64_t *shape,
                              const void *data, mg_tensor **out);
/* A tensor over host memory the caller keeps owning: no copy is made. When the
 * last reference goes, release(ud, data) is called (release may be NULL). */
MG_API mg_status mg_tensor_borrow(mg_dtype dt, int ndim, const int64_t *shape, void *data,
                           void (*release)(void *ud, void *data), void *ud,
                           mg_tensor **out);
/* A 0-d tensor from a Lua-style number. `weak` marks it a weakly typed scalar
 * for promotion: it adopts the dtype of the tensor it meets. */
MG_API mg_status mg_scalar_f64(double v, int weak, mg_tensor **out);
MG_API mg_status mg_scalar_i64(int64_t v, int weak, mg_tensor **out);

MG_API void mg_tensor_retain(mg_tensor *t);
MG_API void mg_tensor_release(mg_tensor *t);   /* NULL is a no-op */
/* Drops the tensor's storage now (t:free()); later uses are MG_ESTATE errors. */
MG_API void mg_tensor_free_storage(mg_tensor *t);

MG_API mg_dtype mg_tensor_dtype(const mg_tensor *t);
MG_API int mg_tensor_ndim(const mg_tensor *t);
MG_API const int64_t *mg_tensor_shape(const mg_tensor *t);     /* borrowed */
MG_API const int64_t *mg_tensor_strides(const mg_tensor *t);   /* in elements, borrowed */
MG_API int64_t mg_tensor_numel(const mg_tensor *t);
MG_API size_t mg_tensor_nbytes(const mg_tensor *t);            /* of its elements */
MG_API int mg_tensor_is_contiguous(const mg_tensor *t);
MG_API int mg_tensor_is_weak(const mg_tensor *t);
MG_API int mg_tensor_is_freed(const mg_tensor *t);
/* Address of the first element (NULL if freed). Strides say how to walk it. */
MG_API void *mg_tensor_data(const mg_tensor *t);
/* An identity for the storage behind t (views share it; NULL if freed). */
MG_API const void *mg_tensor_storage_id(const mg_tensor *t);
/* Copies the elements, row-major, into dst (cap bytes). */
MG_API mg_status mg_tensor_copy_to(const mg_tensor *t, void *dst, size_t cap);
/* Element at a 0-based flat row-major index, converted to double/int64. */
MG_API double mg_tensor_get_f64(const mg_tensor *t, int64_t flat);
MG_API int64_t mg_tensor_get_i64(const mg_tensor *t, int64_t flat);
/* Copies src (broadcast, cast) into dst's elements in place. Every in-place
 * write bumps the buffer's version: a tape that saved the old values for a
 * gradient then refuses to compute it ("modified by an in-place operation"). */
MG_API mg_status mg_tensor_assign(mg_tensor *dst, const mg_tensor *src);
/* t[index] = value along the first axis (index in the context's base,
 * negative from the end). A plain tensor is written in place. A Variable is a
 * value: when anything else holds its buffer (a tape snapshot, a view) it
 * gets a fresh copy first, and its version moves; while tracing, the write is
 * a functional update of the Variable (an assign node). A symbolic tensor
 * that is not a Variable cannot be written in place: MG_ESTATE. */
MG_API mg_status mg_tensor_set_index(mg_ctx *ctx, mg_tensor *t, int64_t index, const mg_tensor *value);
/* The tensor as text, NumPy-like, summarised with "..." when large.
 * Returns a malloc'd string the caller frees with mg_free (NULL on OOM). */
MG_API char *mg_tensor_format(const mg_tensor *t, int max_width);
MG_API void mg_free(void *p);

/* Frees this thread's cache of recycled tensor structs (mg_ctx_free does it). */
MG_API void mg_thread_cache_drain(void);
/* Total bytes of tensor storage currently allocated by the engine. */
MG_API int64_t mg_storage_bytes_live(void);

/* ---- the op table --------------------------------------------------------- */

typedef enum mg_op {
#define MG_OP(id, name, nin, flags, attrs, infer, kernel, grad, doc) MG_OP_##id,
#include "ops.def"
#undef MG_OP
  MG_OP_COUNT
} mg_op;

/* Op flags. */
#define MG_EW      0x01u  /* elementwise */
#define MG_BCAST   0x02u  /* inputs broadcast against each other */
#define MG_NOGRAD  0x04u  /* output has no gradient (int/bool results) */
#define MG_VIEW    0x08u  /* output may alias the input's storage */
#define MG_CREATE  0x10u  /* no inputs: builds a tensor from attributes */
#define MG_RANDOM  0x20u  /* draws from the context's generator */
#define MG_VARIADIC 0x40u /* takes any number (>= 1) of inputs */
#define MG_STATE   0x80u  /* updates its Variable inputs in place (optimizer steps): never dropped, merged or reordered */
#define MG_ACCUM   0x100u /* adds into input 0 (same shape and dtype as the result): the executor may give it
                             input 0's own buffer as the output when nothing else holds or reads it (index_add) */
#define MG_STORAGE 0x200u /* the kernel handles float16/bfloat16/int8/int16 itself; every other op (views aside)
                             computes them widened to float32/int32 and rounds once on store (apply.c) */

/* Attribute kinds, as written in an op's schema string. */
typedef enum mg_attr_kind {
  MG_A_INT,    /* int      one integer */
  MG_A_FLOAT,  /* float    one number */
  MG_A_BOOL,   /* bool */
  MG_A_DTYPE,  /* dtype */
  MG_A_AXIS,   /* axis     one axis, counted from the context's index base */
  MG_A_AXES,   /* axes     a list of axes (unset = all) */
  MG_A_SHAPE,  /* shape    a list of sizes */
  MG_A_INTS,   /* ints     a list of integers */
  MG_A_ENUM    /* enum(a|b|c)  one of the names; stored as its 0-based index */
} mg_attr_kind;

#define MG_MAX_ATTRS 8
#define MG_MAX_LIST 16

/* Attribute values of one call. Slot i belongs to the i-th attribute of the
 * op's schema; bit i of `set` says the caller gave it (else the schema's
 * default applies: mg_attrs_defaults fills them in). */
typedef struct mg_attrs {
  unsigned set;
  struct {
    int n;                       /* list length (lists), 1 otherwise */
    int64_t i[MG_MAX_LIST];      /* int, bool, dtype, axis, enum, lists */
    double f;                    /* float */
  } v[MG_MAX_ATTRS];
} mg_attrs;

typedef struct mg_attr_desc {
  char name[24];
  mg_attr_kind kind;
  int has_default;
  double def_f;                  /* default for scalars */
  int64_t def_i;
  char enums[8][16];             /* enum names */
  int nenums;
} mg_attr_desc;

typedef struct mg_opinfo {
  const char *name;
  int nin;                       /* inputs; -1 for variadic */
  unsigned flags;
  int nattrs;
  const mg_attr_desc *attrs;
  const char *doc;               /* one paragraph for help() */
  int has_grad;
} mg_opinfo;

/* Describes op `op` (borrowed, static). NULL if out of range. */
MG_API const mg_opinfo *mg_op_info(mg_op op);
/* Looks an op up by name; returns MG_OP_COUNT if unknown. */
MG_API mg_op mg_op_lookup(const char *name);
/* Attribute slot of `name` in op's schema, or -1. */
MG_API int mg_op_attr_index(mg_op op, const char *name);
/* Fills unset attributes with the schema defaults. */
MG_API void mg_attrs_defaults(mg_op op, mg_attrs *attrs);

/* The one entry point: checks arity and dtypes, infers the output (this does
 * all validation and writes the error message), allocates it and runs the
 * kernel. `attrs` may be NULL (all defaults). On success *out holds a new
 * reference. */
MG_API mg_status mg_apply(mg_ctx *ctx, mg_op op, mg_tensor *const *inputs, int nin,
                   const mg_attrs *attrs, mg_tensor **out);

/* ---- autodiff: variables and the gradient tape -------------------------------- */

/* A Variable is a tensor whose value can be replaced (assign). Ops read its
 * current value; a tape that records an op keeps a snapshot of the value it
 * read, so later assigns never corrupt a gradient. Assigning writes in place
 * when nobody else holds the old value, else swaps in a fresh buffer
 * (copy-on-write). `init` is copied; the caller owns *out. */
MG_API mg_status mg_variable_new(mg_ctx *ctx, const mg_tensor *init, int trainable, mg_tensor **out);
MG_API int mg_tensor_is_variable(const mg_tensor *t);
MG_API int mg_variable_trainable(const mg_tensor *t);
/* A number that changes whenever the Variable's value is written (assign,
 * an optimizer's in-place update): the count of all Variable writes so far
 * (mg_variable_writes) when it was last written. A Variable was written
 * after a reading w of mg_variable_writes() when (uint32_t)(version - w)
 * is in [1, 2^31). */
MG_API uint32_t mg_variable_version(const mg_tensor *var);
MG_API uint32_t mg_variable_writes(void);
/* var = value (same shape; value is cast to var's dtype). */
MG_API mg_status mg_variable_assign(mg_ctx *ctx, mg_tensor *var, const mg_tensor *value);
/* A plain tensor sharing the variable's current value. Caller owns *out. */
MG_API mg_status mg_variable_read(mg_tensor *var, mg_tensor **out);

typedef struct mg_tape mg_tape;

/* A new, stopped tape. persistent: gradient() may be called more than once
 * (else the records are released by the first call). watch_accessed_variables:
 * trainable variables used while recording are watched automatically. The
 * caller owns the tape (mg_tape_free stops it first). */
MG_API mg_tape *mg_tape_new(mg_ctx *ctx, int persistent, int watch_accessed_variables);
MG_API void mg_tape_free(mg_tape *tape);
/* Starts/stops recording: ops run on `ctx` while it records are kept. */
MG_API mg_status mg_tape_start(mg_tape *tape);
MG_API void mg_tape_stop(mg_tape *tape);
MG_API int mg_tape_recording(const mg_tape *tape);
/* Changes persistence (jacobians make several passes); returns the old value. */
MG_API int mg_tape_set_persistent(mg_tape *tape, int persistent);
/* Watches t (a tensor or a variable): ops that use it are recorded. */
MG_API mg_status mg_tape_watch(mg_tape *tape, mg_tensor *t);
/* Pauses all tapes of ctx (stop_recording); calls nest. */
MG_API void mg_ctx_pause_tapes(mg_ctx *ctx, int pause);
/* Gradients of the sum of `targets` (each weighted by output_grads[i] when
 * given; NULL = ones, so a non-scalar target is summed as TF does) with
 * respect to `sources`. grads[i] gets a new reference, or NULL when source i
 * is not connected to the targets (zero-filled instead when
 * unconnected_zero). Gradient ops are recorded on other active tapes, which
 * is how nested tapes give higher-order gradients. */
MG_API mg_status mg_tape_gradient(mg_tape *tape, int ntargets, mg_tensor *const *targets,
                           mg_tensor *const *output_grads, int nsources, mg_tensor *const *sources,
                           int unconnected_zero, mg_tensor **grads);

/* A user-supplied backward for custom gradients: given the gradient of the
 * output, write new references to the inputs' gradients (NULL = none).
 * Return MG_OK or an error with mg_seterror. */
typedef mg_status (*mg_backward_fn)(void *ud, mg_tensor *grad_output, int nin, mg_tensor **grad_inputs);
/* Records `output = f(inputs)` with a custom backward on every active tape
 * that tracks an input. free_ud(ud) runs when the record is dropped (also
 * when no tape took it). */
MG_API mg_status mg_tape_record_custom(mg_ctx *ctx, int nin, mg_tensor *const *inputs, mg_tensor *output,
                                mg_backward_fn fn, void *ud, void (*free_ud)(void *));
/* A backward for a node with several outputs (staged cond/while): given the
 * gradient of each output (NULL = none reached it) and which inputs need one,
 * write new references to the inputs' gradients (NULL = none). */
typedef mg_status (*mg_backward_group_fn)(void *ud, int nout, mg_tensor *const *grad_outputs, int nin,
                                          const unsigned char *need, mg_tensor **grad_inputs);
/* Records `outputs = f(inputs)` as one step with a custom backward on every
 * active tape that tracks an input (as mg_tape_record_custom). */
MG_API mg_status mg_tape_record_group(mg_ctx *ctx, int nin, mg_tensor *const *inputs, int nout,
                               mg_tensor *const *outputs, mg_backward_group_fn fn, void *ud,
                               void (*free_ud)(void *));
/* 1 when a tape recording at the current trace depth tracks one of ts (it
 * would record an op taking them), else 0. */
MG_API int mg_tapes_track_any(mg_ctx *ctx, int n, mg_tensor *const *ts);
/* 1 when some tape records on ctx (not paused): a cheap test before
 * mg_tapes_track_any on a hot path. */
MG_API int mg_tapes_active(const mg_ctx *ctx);

/* ---- staging: tracing into graphs and running them ---------------------------- */

/* A graph is an SSA program of op nodes plus state (variable read/assign),
 * control flow (cond/while owning subgraphs) and host-call nodes. It is
 * built by tracing: between mg_trace_begin and mg_trace_end, mg_apply adds a
 * node instead of computing whenever an input is symbolic (a placeholder or a
 * node's output) or a Variable, and for random and creation ops; ops on plain
 * tensors still run and their results enter the graph as constants.
 * Graphs are refcounted (symbolic tensors hold their graph). */
typedef struct mg_graph mg_graph;

/* Starts tracing a new graph on ctx (nested calls make subgraphs of the
 * current one, for cond/while bodies). *out is a new reference. */
MG_API mg_status mg_trace_begin(mg_ctx *ctx, const char *name, mg_graph **out);
/* Ends the innermost trace, which must be g, with these outputs (symbolic
 * tensors of g, captured outer values or plain tensors, which become
 * constants). NULL outputs are not allowed. After this, g's symbolic tensors
 * are dead: using one is an error naming where it was made. */
MG_API mg_status mg_trace_end(mg_ctx *ctx, mg_graph *g, int nout, mg_tensor *const *outputs);
/* Drops the innermost trace without finishing it (error recovery). */
MG_API void mg_trace_abort(mg_ctx *ctx);
/* Reopens g, a finished top-level graph, as the trace (no other trace may be
 * active): its symbolic tensors are usable again and new nodes append, until
 * mg_trace_end. A TF1-style graph (mg.Graph's as_default) is built this way;
 * its tensors used outside it are an error that says so. */
MG_API mg_status mg_trace_resume(mg_ctx *ctx, mg_graph *g);
/* The value id of symbolic tensor t in g, or -1 when t is not one of g's. */
MG_API int mg_tensor_graph_value(const mg_tensor *t, const mg_graph *g);
MG_API int mg_tracing(const mg_ctx *ctx);
/* The name of the outermost function being traced on ctx (owned by the
 * trace), or NULL when none is. */
MG_API const char *mg_trace_name(const mg_ctx *ctx);
/* Nonzero when d is the size that stands for an unknown (-1) size while
 * tracing (a "probe" size: symbolic tensors' shapes hold these). */
MG_API int mg_size_is_unknown(int64_t d);
/* A symbolic input of the graph being traced; -1 in shape = unknown size. */
MG_API mg_status mg_trace_placeholder(mg_ctx *ctx, mg_dtype dt, int ndim, const int64_t *shape, mg_tensor **out);
MG_API int mg_tensor_is_symbolic(const mg_tensor *t);
/* An optional hook that names the current source position (for messages
 * about symbolic tensors that escape their trace). */
MG_API void mg_ctx_set_where_hook(mg_ctx *ctx, const char *(*where)(void *ud), void *ud);

MG_API void mg_graph_retain(mg_graph *g);
MG_API void mg_graph_release(mg_graph *g);
MG_API int mg_graph_ninputs(const mg_graph *g);
MG_API int mg_graph_noutputs(const mg_graph *g);
MG_API int mg_graph_nnodes(const mg_graph *g);
/* The dtype and shape (-1 = unknown) of input/output i. */
MG_API void mg_graph_input_meta(const mg_graph *g, int i, mg_dtype *dt, int *ndim, int64_t *shape);
MG_API void mg_graph_output_meta(const mg_graph *g, int i, mg_dtype *dt, int *ndim, int64_t *shape);

/* Control flow while tracing (eagerly, the caller just runs Lua). pred is a
 * one-element tensor; then_g/else_g were traced (with no placeholders) and
 * have the same number of outputs with matching dtypes and shapes. */
MG_API mg_status mg_trace_cond(mg_ctx *ctx, mg_tensor *pred, mg_graph *then_g, mg_graph *else_g,
                        int nout, mg_tensor **outs);
/* cond_g maps the loop variables (its placeholders) to one boolean element;
 * body_g maps them to new values of the same dtypes (and shapes, where the
 * body's placeholders give a size, -1 allowing any). max_iterations < 0: no limit. */
MG_API mg_status mg_trace_while(mg_ctx *ctx, mg_graph *cond_g, mg_graph *body_g, int nvars,
                         mg_tensor *const *init, int64_t max_iterations, mg_tensor **outs);
/* mg_trace_while that also keeps, for the gradient, the values each iteration
 * started from: outs has 2*nvars+1 entries, the nvars results, then each
 * variable's per-iteration values stacked on a new first axis (its size is
 * the trip count, unknown when tracing), then the trip count (int64 scalar). */
MG_API mg_status mg_trace_while_save(mg_ctx *ctx, mg_graph *cond_g, mg_graph *body_g, int nvars,
                              mg_tensor *const *init, int64_t max_iterations, mg_tensor **outs);
/* The outer tensors a finished subgraph uses (captured symbolic tensors and
 * the Variables it, or a subgraph of it, reads), each once: up to cap
 * borrowed pointers written to out; returns how many were found (called
 * with cap 0 to size out, an upper bound: repeats are not yet dropped). */
MG_API int mg_graph_externals(const mg_graph *g, int cap, mg_tensor **out);
/* What g (or a subgraph) does besides computing, which re-running it for a
 * gradient would repeat ("assigns a Variable", ...), or NULL for nothing. */
MG_API const char *mg_graph_effect(const mg_graph *g);
/* A host function called when the graph runs (eagerly: at once). It gets the
 * input values and must write nout new tensors. Each result is checked, every
 * time the function runs (eagerly and in every graph path), against what was
 * declared: dtype out_dtypes[k], rank out_ndim[k] (NULL: all 0-d) and sizes
 * out_shapes[k], where -1 matches any size; a weakly typed scalar result (a
 * Lua number) takes the declared dtype if it fits it. A mismatch is an error
 * naming `label` (copied; e.g. "the Lua function defined at f.lua:3"; NULL
 * for "the host function") and the declared and returned dtype and shape. */
typedef mg_status (*mg_host_fn)(void *ud, int nin, mg_tensor *const *in, int nout, mg_tensor **out);
MG_API mg_status mg_call_host(mg_ctx *ctx, const char *label, mg_host_fn fn, void *ud, void (*free_ud)(void *), int nin,
                       mg_tensor *const *in, int nout, const mg_dtype *out_dtypes,
                       const int *out_ndim, const int64_t (*out_shapes)[MG_MAX_DIMS], mg_tensor **outs);
/* v:read() while tracing: a node reading the variable's value at that point. */
MG_API mg_status mg_trace_read_variable(mg_ctx *ctx, mg_tensor *var, mg_tensor **out);

/* Runs g on inputs (matching its placeholders' dtypes and sizes), writing
 * noutputs new references. Runs wholly in C (host-call nodes aside). */
MG_API mg_status mg_graph_run(mg_ctx *ctx, mg_graph *g, int nin, mg_tensor *const *inputs, int nout,
                       mg_tensor **outputs);

/* As mg_graph_run, but writes the results into the caller's tensors
 * (outputs[k] must have output k's dtype and shape, and be a plain tensor,
 * not a Variable); nothing is written unless every output fits. A static
 * graph that ran once allocates nothing here (its buffers are reused), so a
 * host can call it every frame with no heap traffic. */
MG_API mg_status mg_graph_run_into(mg_ctx *ctx, mg_graph *g, int nin, mg_tensor *const *inputs, int nout,
                            mg_tensor *const *outputs);

/* ---- graph files: a concrete function outside the process (core/graphfile.c) ----
 * mg_graph_export writes a finished graph as a portable, data-only file: a
 * safetensors file whose tensors are the constants and the Variables' values
 * (frozen as constants: the file is a pure function of its inputs) and whose
 * metadata holds the graph as JSON (key "moongrad.graph", format version 1:
 * ops by name, attributes, cond/while subgraphs, input and output names) and
 * nmeta more key/value strings of the caller's. Nothing executable is
 * written: a graph that calls Lua (mg.lua_function), assigns a Variable or
 * steps an optimizer is an error naming it. The write is atomic. in_names /
 * out_names may be NULL (then "input_1", ..., "output_1", ...). ctx gives the
 * index base the graph's axes were traced with.
 * mg_graph_load reads one back with the C core alone (no Lua): it validates
 * everything (ops known by name, arity, attribute names, types and ranges,
 * value references, dtypes and shapes re-inferred by the op table, at most
 * 16 nested subgraphs, 2^20 nodes and 1 GiB of values with static sizes) and
 * refuses a hostile file with an error naming where it is wrong
 * ("load: f.mgg: graph.nodes[3]: unknown op 'frob'"), never crashing. The
 * graph is then optimised (MG_PASS_ALL) and runs with mg_graph_run /
 * mg_graph_run_into (after the first run, a static graph allocates nothing),
 * always under the index base it was exported with. *out is a new reference:
 * mg_graph_free (= mg_graph_release). Loading while a trace is active is an error. */
MG_API mg_status mg_graph_export(mg_ctx *ctx, const mg_graph *g, const char *path, const char *const *in_names,
                                 const char *const *out_names, int nmeta, const char *const *keys,
                                 const char *const *vals);
MG_API mg_status mg_graph_load(mg_ctx *ctx, const char *path, mg_graph **out);
/* The same from len bytes in memory (`what` names it in messages; NULL: "<buffer>"). */
MG_API mg_status mg_graph_load_buffer(mg_ctx *ctx, const uint8_t *buf, size_t len, const char *what,
                                      mg_graph **out);
MG_API void mg_graph_free(mg_graph *g);
/* A loaded graph's input/output names (borrowed; NULL out of range or for a
 * graph not loaded from a file), the index of a name (-1: none), and its
 * metadata strings (the caller's, not the graph itself): key i, or the value
 * of key (NULL: none). */
MG_API const char *mg_graph_input_name(const mg_graph *g, int i);
MG_API const char *mg_graph_output_name(const mg_graph *g, int i);
MG_API int mg_graph_input_index(const mg_graph *g, const char *name);
MG_API int mg_graph_output_index(const mg_graph *g, const char *name);
MG_API int mg_graph_nmetadata(const mg_graph *g);
MG_API const char *mg_graph_metadata_key(const mg_graph *g, int i);
MG_API const char *mg_graph_metadata(const mg_graph *g, const char *key);

/* Optimisation passes, one bit each (bit i is pass i of mg_pass_name). */
#define MG_PASS_CONSTFOLD 0x01u  /* ops on constants computed once (creation ops with static sizes too) */
#define MG_PASS_CSE       0x02u  /* repeated ops on the same inputs computed once; equal constants merged */
#define MG_PASS_DCE       0x04u  /* nodes whose results are never used removed (state nodes never) */
#define MG_PASS_ALGEBRA   0x08u  /* x*1, x+0, x-0, x/1, neg(neg x), transpose(transpose x), reshape chains, same-dtype casts */
#define MG_PASS_FUSE      0x10u  /* chains of float elementwise ops run as one loop (a "fused" node) */
#define MG_PASS_ALL       0x1fu
#define MG_NPASSES 5
/* Runs the optimisation passes on g and its subgraphs (passes: MG_PASS_*
 * bits; the cleanup passes repeat while they change something, fusion runs
 * last). The graph keeps its inputs, outputs and results, and its state
 * nodes (variable reads and assigns, host calls) and random ops stay, in
 * order. g must be finished (mg_trace_end). Returns MG_OK or an error. */
MG_API mg_status mg_graph_optimize(mg_ctx *ctx, mg_graph *g, unsigned passes);
/* The same, writing into counts[i] (when counts is not NULL; MG_NPASSES
 * entries) how many changes pass i made. */
MG_API mg_status mg_graph_optimize_counts(mg_ctx *ctx, mg_graph *g, unsigned passes, int *counts);
/* Cuts a traced forward-and-backward graph g (inputs: nfwd_in forward inputs
 * then the upstream gradients; outputs: nfwd_out forward results then the
 * gradients) into *fwd (the forward inputs -> the results, then saved
 * intermediates) and *bwd (the saved values, then the upstream gradients ->
 * the gradients), as TensorFlow does for a concrete function under a tape.
 * The backward's first *nsrc inputs come from (*src)[k]: an index into the
 * list (forward inputs, outputs of *fwd); free *src with mg_free. Graphs
 * with effects (assigns, host calls) are refused. */
MG_API mg_status mg_graph_split(const mg_graph *g, int nfwd_in, int nfwd_out, mg_graph **fwd, mg_graph **bwd,
                         int *nsrc, int **src);
/* A copy of g (finished, not yet optimised) with the same inputs and only
 * outputs which[0 .. n-1] (0-based), without the nodes they do not need:
 * a backward graph for fewer sources than it was made for. */
MG_API mg_status mg_graph_select_outputs(const mg_graph *g, int n, const int *which, mg_graph **out);
/* A copy of finished graph g whose inputs are the values in[0 .. nin-1] (value
 * ids, mg_tensor_graph_value: placeholders, or any single-output node's value,
 * which is then fed instead of computed) and whose outputs are out[0 .. nout-1],
 * with only the nodes they need plus nodes keep[0 .. nkeep-1] (node indices,
 * e.g. assigns) and what those need: a TF1 Session's run of some fetches. A
 * placeholder needed but not among in[] is an error; *missing (when not NULL)
 * gets its position among g's inputs (0-based), else -1. */
MG_API mg_status mg_graph_prune(const mg_graph *g, int nin, const int *in, int nout, const int *out, int nkeep,
                                const int *keep, mg_graph **res, int *missing);
/* The name of pass i ("constfold", "cse", "dce", "algebra", "fuse"); NULL out of range. */
MG_API const char *mg_pass_name(int i);

/* Text forms (malloc'd; free with mg_free): one node per line, and Graphviz DOT. */
MG_API char *mg_graph_pretty(const mg_graph *g);
MG_API char *mg_graph_to_dot(const mg_graph *g, const char *name);
/* Node i as data: its kind ("op", "input", "const", "read", "assign", "cond",
 * "while", "call"), op name (or the kind), input and output value ids. */
typedef struct mg_node_info {
  const char *kind;
  const char *op;
  int nin;
  const int *in;
  int nout;
  int out0;
} mg_node_info;
MG_API int mg_graph_node(const mg_graph *g, int i, mg_node_info *info);

/* ---- limits of a call (the embedding's budgets, Ctrl-C; core/limits.c) -------------- */

/* An mg_limits object bounds the engine work done on a thread while it is
 * current there (mg_limits_enter): a deadline and an instruction allowance
 * (mg_limits_start), an interrupt flag any thread may set, and a memory
 * account with a cap. The engine polls it before each kernel, at every
 * iteration of a graph's while loop (charging the loop body's node count as
 * instructions) and between the chunks of long kernels; once a limit is
 * reached every later check fails with MG_ELIMIT ("time budget of 1 s
 * exceeded", "instruction budget of N exceeded", "interrupted") until the
 * next mg_limits_start. A kernel stopped halfway is an error, never a
 * partial result. Refcounted: buffers charged to it keep it alive. */
typedef struct mg_limits mg_limits;
typedef enum mg_stop { MG_STOP_NONE = 0, MG_STOP_INSTRUCTIONS, MG_STOP_TIME, MG_STOP_INTERRUPT } mg_stop;
/* A new object (no limits, one reference); NULL on out of memory. */
MG_API mg_limits *mg_limits_new(void);
MG_API void mg_limits_retain(mg_limits *l);
MG_API void mg_limits_release(mg_limits *l);
/* Begins a call: clears a stop and the interrupt flag, zeroes the instructions
 * used, and sets the allowance and the deadline (time_limit seconds from now;
 * 0 = none for either). */
MG_API void mg_limits_start(mg_limits *l, uint64_t instruction_limit, double time_limit);
/* Asks the work in progress to stop (any thread; safe in a signal handler). */
MG_API void mg_limits_interrupt(mg_limits *l);
/* Checks the interrupt flag and the deadline; the stop reason (sticky). */
MG_API mg_stop mg_limits_poll(mg_limits *l);
MG_API mg_stop mg_limits_stopped(const mg_limits *l);
/* Records a stop found outside the engine (the Lua hook's instruction count). */
MG_API void mg_limits_set_stop(mg_limits *l, mg_stop why);
/* Adds instructions to those used, then polls: MG_ELIMIT with the message when stopped. */
MG_API mg_status mg_limits_charge(mg_limits *l, uint64_t instructions);
MG_API uint64_t mg_limits_used(const mg_limits *l);
/* The message of the stop reason, into buf; and the same as the thread's error (MG_ELIMIT). */
MG_API const char *mg_limits_message(const mg_limits *l, char *buf, size_t cap);
MG_API mg_status mg_limits_error(const mg_limits *l);
/* The memory cap in bytes (0 = none) over every heap buffer the engine makes
 * while l is current (tensor storage, graph buffers, kernel workspaces),
 * checked before each allocation. Over it, reclaim(ud) (may be NULL) is
 * called once to free garbage, then the allocation fails with MG_ELIMIT.
 * Only buffers made while a cap is set are counted. */
MG_API void mg_limits_set_memory(mg_limits *l, size_t cap, int (*reclaim)(void *ud), void *ud);
/* How many allocations the cap refused since mg_limits_start. */
MG_API int mg_limits_refused(const mg_limits *l);
/* Bytes charged to l and not yet freed (and the most ever, in *peak). */
MG_API size_t mg_limits_memory(const mg_limits *l, size_t *peak);
/* Makes l current on this thread (NULL: none); returns the previous one to restore. */
MG_API mg_limits *mg_limits_enter(mg_limits *l);
MG_API mg_limits *mg_limits_current(void);
/* Seconds on the monotonic clock (the deadline's clock). */
MG_API double mg_monotonic(void);

/* ---- file-access policy (the embedding sandbox; core/path_policy.c) ---------------- */

/* Every engine function that opens, lists, creates, removes or renames a path
 * (below) first calls this thread's policy hook, if one is set, with its own
 * name ("save", "read_file", "mkdir", ...), the path as given and flags; a
 * status other than MG_OK (with the message set) makes it fail before
 * touching the file system. mg_path_exists/isdir answer 0 for a refused path.
 * MG_PATH_NOFOLLOW: the call acts on the name itself (remove, remove_tree,
 * rename), not on what a link there points to. */
#define MG_PATH_NOFOLLOW 1
typedef mg_status (*mg_path_policy_fn)(void *ud, const char *fname, const char *path, int flags);
/* Sets this thread's hook (NULL: none, the default); the previous one is
 * stored in *prev_fn and *prev_ud when they are not NULL, to restore it. */
MG_API void mg_set_path_policy(mg_path_policy_fn fn, void *ud, mg_path_policy_fn *prev_fn, void **prev_ud);
/* Asks the hook about path (MG_OK without a hook, or for NULL or ""). */
MG_API mg_status mg_path_check(const char *fname, const char *path, int flags);
/* The sandbox rule: MG_OK if path, resolved (relative to the working
 * directory; links and ".." resolved by realpath; a path not there yet through
 * its longest existing prefix, whose missing rest may not hold ".." or pass a
 * dangling link), lies in dir (an absolute, resolved path). With
 * MG_PATH_NOFOLLOW only the parent is resolved and dir itself is refused.
 * Otherwise "<fname>: '<path>' is outside the sandbox's allowed directory '<dir>'". */
MG_API mg_status mg_path_within(const char *dir, const char *fname, const char *path, int flags);

/* ---- files: atomic writes and safetensors -------------------------------------- */

/* Writes len bytes to path atomically: a temp file beside it (".<name>.tmp.<pid>.<n>"),
 * fsync, rename over path, fsync the directory. On any error the temp file is
 * removed and an existing file at path is left as it was. Temp files of writers
 * that were killed are removed by the next write to the same path. */
MG_API mg_status mg_write_file_atomic(const char *path, const void *bytes, size_t len);
/* Reads the whole file into *out (malloc'd; free with mg_free), its size in *len. */
MG_API mg_status mg_read_file(const char *path, uint8_t **out, size_t *len);
/* The same for a gzip file (one or more members), decompressed in process
 * with zlib; MG_EIO for a file that is not gzip or is cut short. */
MG_API mg_status mg_read_file_gunzip(const char *path, uint8_t **out, size_t *len);
/* Whether file descriptor fd is a terminal (isatty). */
MG_API int mg_isatty(int fd);

/* Paths and directories (core/fs.c), for mg.io: no shell involved. exists and
 * isdir follow symbolic links (0 for a dangling one). mg_mkdir accepts an
 * existing directory; parents != 0 creates the missing parents too.
 * mg_listdir gives the entries but "." and "..", sorted bytewise, as *count
 * NUL-terminated names back to back in *out (*len bytes; free with mg_free).
 * mg_remove removes a file or an empty directory; mg_remove_tree a whole tree,
 * never following a link (a link is removed, not its target), and refuses "",
 * "/" and paths ending in "." or "..". mg_rename is rename(2) (atomic within a
 * file system), then fsyncs the directories involved. */
MG_API int mg_path_exists(const char *path);
MG_API int mg_path_isdir(const char *path);
MG_API mg_status mg_mkdir(const char *path, int parents);
MG_API mg_status mg_listdir(const char *path, char **out, size_t *len, int *count);
MG_API mg_status mg_remove(const char *path);
MG_API mg_status mg_remove_tree(const char *path);
MG_API mg_status mg_rename(const char *from, const char *to);
/* This process's id, and whether process `pid` still runs (1), is gone (0),
 * or cannot be told (-1: it exists but belongs to another user, or pid <= 0).
 * Savers name their temporaries with their pid so that a later save can tell
 * a dead writer's leftovers from a running one's. */
MG_API int64_t mg_process_id(void);
MG_API int mg_process_alive(int64_t pid);

/* JSON parsing (core/json.c, over the engine's cJSON), for the bindings:
 * mg_json_parse parses len bytes (nothing but blanks may follow the value)
 * into a tree that the caller frees with mg_json_free(root). Nodes are
 * borrowed from it: mg_json_type is one of MG_JSON_*; number and string read
 * a scalar ("" for a node that is not a string); child is the first element
 * of an array or member of an object (NULL if none), next its sibling, key a
 * member's name. Parse errors are MG_EARG naming the byte. */
typedef struct mg_json mg_json;
enum { MG_JSON_NULL, MG_JSON_FALSE, MG_JSON_TRUE, MG_JSON_NUMBER, MG_JSON_STRING, MG_JSON_ARRAY, MG_JSON_OBJECT };
MG_API mg_status mg_json_parse(const char *text, size_t len, mg_json **out);
MG_API void mg_json_free(mg_json *root);
MG_API int mg_json_type(const mg_json *n);
MG_API double mg_json_number(const mg_json *n);
MG_API const char *mg_json_string(const mg_json *n);
MG_API const mg_json *mg_json_child(const mg_json *n);
MG_API const mg_json *mg_json_next(const mg_json *n);
MG_API const char *mg_json_key(const mg_json *n);

/* The parsed contents of a safetensors file: names, tensors and metadata. It
 * owns everything it holds (nothing points into the parsed buffer). */
typedef struct mg_tensorfile mg_tensorfile;

/* Parses a safetensors image in memory, validating everything (header length,
 * JSON, dtypes, shapes, offsets, overlaps, duplicate names, metadata); never
 * reads outside buf[0..len). `what` names the file in error messages (NULL:
 * "<buffer>"). F16, BF16, I8 and I16 load as float16, bfloat16, int8 and
 * int16; dtypes the engine lacks (U16, F8_*, ...) are an error naming the tensor. On
 * success the caller owns *out (mg_tensorfile_free). */
MG_API mg_status mg_safetensors_parse(const uint8_t *buf, size_t len, const char *what, mg_tensorfile **out);
/* Reads the file at path once and parses it (messages start "load: <path>: "). */
MG_API mg_status mg_safetensors_load(const char *path, mg_tensorfile **out);
MG_API void mg_tensorfile_free(mg_tensorfile *f);   /* NULL is a no-op */
/* Tensors in file order (by data offset; zero-size ones in header order).
 * Names and dtypes are borrowed; so is the tensor (mg_tensor_retain to keep
 * it past mg_tensorfile_free). Out of range i gives NULL. */
MG_API int mg_tensorfile_count(const mg_tensorfile *f);
MG_API const char *mg_tensorfile_name(const mg_tensorfile *f, int i);
MG_API const char *mg_tensorfile_dtype(const mg_tensorfile *f, int i);  /* as in the file: "F16" */
MG_API mg_tensor *mg_tensorfile_tensor(const mg_tensorfile *f, int i);
/* The "__metadata__" map, in header order (borrowed strings). */
MG_API int mg_tensorfile_nmeta(const mg_tensorfile *f);
MG_API const char *mg_tensorfile_meta_key(const mg_tensorfile *f, int i);
MG_API const char *mg_tensorfile_meta_value(const mg_tensorfile *f, int i);
/* Writes n named tensors (any layout: views are written contiguous) and nmeta
 * metadata strings to path atomically, as Python's safetensors does: wider
 * dtypes first, then by name; compact JSON padded with spaces to 8 bytes.
 * Names must be distinct UTF-8 and not "__metadata__". Messages start "save: ". */
MG_API mg_status mg_safetensors_save(const char *path, int n, const char *const *names, mg_tensor *const *tensors,
                              int nmeta, const char *const *keys, const char *const *vals);

/* ---- prefetch: a background thread for mg.data's pure-tensor pipelines ----
 * A pipeline over the rows of source tensors: stages applied in order from
 * the source up (shuffle, take, skip, repeat; at most one batch, with only
 * take/skip/repeat after it), run by a worker thread that copies the rows of
 * each element into a ring of `capacity` elements. The elements and the
 * shuffle order are exactly those of stdlib/moongrad/data's Lua iterators. */
#define MG_PF_MAX_SOURCES 16
#define MG_PF_MAX_SHUFFLES 8
typedef enum mg_pf_kind { MG_PF_SHUFFLE, MG_PF_TAKE, MG_PF_SKIP, MG_PF_REPEAT, MG_PF_BATCH } mg_pf_kind;
typedef struct mg_pf_stage {
  int kind;       /* an mg_pf_kind */
  int64_t n;      /* shuffle buffer / take, skip, repeat count (-1: all, forever) / batch size */
  int64_t seed;   /* shuffle: the seed (0 .. 2^53-1) */
  int64_t epoch;  /* shuffle: the iteration counter to start from */
  int flag;       /* shuffle: reshuffle_each_iteration; batch: drop_remainder */
} mg_pf_stage;
typedef struct mg_prefetch mg_prefetch;
/* Starts the worker. Sources (contiguous, one row count, at least one axis)
 * are retained until mg_prefetch_free. *out is owned by the caller. */
MG_API mg_status mg_prefetch_new(int nsrc, mg_tensor *const *sources, int nstages, const mg_pf_stage *stages,
                          int capacity, mg_prefetch **out);
/* Waits for the next element: *got = 1 and one new tensor per source in outs
 * (row shape, or (rows, row shape...) when batched; owned by the caller), or
 * *got = 0 at the end. A worker failure (out of memory) is returned as an error. */
MG_API mg_status mg_prefetch_next(mg_prefetch *p, mg_tensor **outs, int *got);
/* The shuffle stages' iteration counters (bottom-up) as of the last element
 * handed out (or the end); returns how many there are (epochs holds MG_PF_MAX_SHUFFLES). */
MG_API int mg_prefetch_epochs(const mg_prefetch *p, int64_t *epochs);
/* Stops and joins the worker and frees everything (NULL: nothing). */
MG_API void mg_prefetch_free(mg_prefetch *p);

#ifdef __cplusplus
}
#endif
#endif
