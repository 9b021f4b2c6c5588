/*
 * moongrad.h — embedding moongrad in a host C or C++ program.
 *
 * A runtime is one Lua 5.4 state with the engine and its Lua library loaded
 * (the library is compiled into libmoongrad_embed: no .lua files are needed
 * on disk). A host creates runtimes, runs code in them, calls Lua functions
 * with numbers, strings, booleans and tensors, and registers C functions the
 * scripts can call. The tensor API of the engine (mg.h, included here) is
 * the way tensors are made from host buffers and copied back.
 *
 *   mg_runtime *rt = mg_runtime_new(NULL);
 *   if (!rt) { fprintf(stderr, "%s\n", mg_last_error()); exit(1); }
 *   if (mg_run_string(rt, "function double(x) return x * 2 end"))
 *     fprintf(stderr, "%s\n", mg_runtime_errmsg(rt));
 *   mg_value arg = mg_vtensor(x), res;
 *   if (mg_invoke(rt, "double", &arg, 1, &res, 1) == MG_OK) { ... mg_value_clear(&res); }
 *   mg_runtime_free(rt);
 *
 * Build: cc host.c $(pkg-config --cflags --libs moongrad)
 *
 * Errors. Every fallible call returns an mg_status (MG_OK == 0); nothing
 * longjmps or throws into the host. Lua errors come back as MG_ESCRIPT with
 * the message and the Lua traceback in mg_runtime_errmsg(rt) (a copy,
 * possibly truncated, is also in the thread's mg_last_error()). A runtime
 * limit (memory limit, instruction or time budget) gives MG_ELIMIT; a
 * failed allocation with no limit involved gives MG_ENOMEM. After any error
 * the runtime stays usable.
 *
 * Ownership, SQLite-style: each function below says what it hands out.
 *  - mg_runtime: created by mg_runtime_new, owned by the host, freed by
 *    mg_runtime_free (which releases everything the runtime holds).
 *  - mg_tensor: refcounted. Whoever receives a tensor from a function that
 *    says "new reference" releases it once with mg_tensor_release();
 *    tensors the host passes in are borrowed for the duration of the call
 *    (the runtime takes its own reference if a script keeps them).
 *  - strings in results: borrowed, valid until the next call into the same
 *    runtime or mg_runtime_free, whichever comes first. Copy to keep.
 *  - mg_staged: owned by the runtime (mg_lookup_staged), dropped by
 *    mg_staged_free or mg_runtime_free.
 *  - mg_value_clear(v) releases a result value's tensor reference (and does
 *    nothing for other types), so "clear every result" is always correct.
 *
 * Threads. A runtime is used by one thread at a time (any thread, but not
 * two at once); different runtimes are independent and may run in parallel
 * threads. Tensors may move between runtimes and threads freely: a tensor
 * result of one runtime passed as an argument to another is not copied
 * (refcounts are atomic). A thread that used the engine should call
 * mg_thread_cache_drain() before it exits (it frees the thread's cache of
 * recycled tensor structs).
 *
 * Floating point: mg_runtime_new sets flush-to-zero and denormals-are-zero
 * in the calling thread's MXCSR, as the engine does on every thread that
 * runs kernels (denormals slow float kernels ~15x). A host that needs IEEE
 * denormals on that thread saves and restores the MXCSR around the call.
 */
#ifndef MOONGRAD_H
#define MOONGRAD_H

#include "mg.h"
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mg_runtime mg_runtime;
struct lua_State;

/* ---- creating a runtime --------------------------------------------------------- */

/* The Lua allocator's signature (lua_Alloc): realloc when nsize > 0, free
 * when nsize == 0; osize is the old size (when ptr is NULL it encodes the
 * kind of object, as in Lua). Must not fail when nsize <= osize. */
typedef void *(*mg_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);

/* Where print() output goes (one call per print, text without the final newline). */
typedef void (*mg_print_fn)(void *ud, const char *text, size_t len);

/* Options of a runtime. Zero-initialise, then set what you need: every zero
 * field means "the default". The struct is copied; strings are copied. */
typedef struct mg_runtime_options {
  /* Allocator for the Lua heap and the runtime's own structures (NULL =
   * realloc/free). Tensor storage is allocated by the engine, not here. */
  mg_alloc_fn alloc;
  void *alloc_ud;
  /* Hard cap on the Lua heap in bytes (0 = none): an allocation past it
   * fails, the script gets Lua's "not enough memory" error (a pcall inside
   * the script may catch it), and the call returns MG_ELIMIT. */
  size_t memory_limit;
  /* Cap in bytes (0 = none) on the engine memory this runtime's calls
   * allocate: tensor storage, the buffers of staged graphs and kernel
   * workspaces, counted until freed, whoever frees them. Checked before each
   * allocation (after a full collection, when over): an allocation past it
   * fails, the script gets an error ("tensor memory limit of N bytes
   * exceeded ...") and, unless it catches it, the call returns MG_ELIMIT.
   * Tensors the host makes (or a callback makes) are not counted; tensors of
   * at most 64 bytes live in their headers and are bounded by memory_limit. */
  size_t tensor_memory_limit;
  /* Budget of each call from the host (mg_run_*, mg_invoke*, mg_call_into,
   * and the finalizers mg_runtime_free runs): Lua VM instructions (counted in
   * steps of 1,000; each iteration of a staged while loop counts the nodes of
   * its body) and wall-clock seconds; 0 = unlimited. A script past its
   * budget gets an error it cannot catch for long (the budget stays spent
   * until the host's call returns), and the call returns MG_ELIMIT. Staged
   * graphs are stopped too: the engine checks at every while-loop iteration,
   * before each kernel and between the chunks of long kernels (a BLIS block
   * of a large matmul, about 5 ms, is the longest stretch it cannot stop;
   * measured overshoots are in doc/embedding.md). */
  uint64_t instruction_limit;
  double time_limit;
  /* Sandbox for untrusted scripts (the threat model is in doc/embedding.md):
   * only the base (without dofile/loadfile; load takes text chunks only),
   * string, table, math, utf8 and coroutine libraries (the script's own
   * copies), os.clock/time/date/difftime, debug.traceback and a
   * debug.getinfo that gives no stack function, and require of the
   * built-in library; no io, no C modules, no os.exit, no __gc on tables,
   * and the engine's metatables are hidden. The built-in library runs in a
   * private environment of its own that no script can reach or change.
   * Lua modules may be required (as text) from
   * `allowed_dir` when it is set. moongrad's own file functions (mg.save,
   * mg.load, mg.io.*, model saving, checkpoints, CSV, plot_model, data
   * sets) accept only paths that resolve (links and ".." followed) inside
   * `allowed_dir`, and none without it; no program is run (io.popen,
   * os.execute). `allowed_dir` must exist (mg_runtime_new fails otherwise).
   * See mg_set_path_policy in mg.h: host callbacks run without the rule. */
  int sandbox;
  const char *allowed_dir;
  /* Extra package.path entries ("dir/?.lua;dir/?/init.lua"), searched
   * before the defaults (not used in a sandbox: use allowed_dir). */
  const char *module_path;
  /* print() goes here (NULL = stdout). */
  mg_print_fn print;
  void *print_ud;
  /* Let os.exit end the process (outside the sandbox only). By default
   * os.exit raises an error instead: a script must not take the host down. */
  int allow_exit;
  /* Do not load the moongrad library at start-up (`mg` is then loaded by
   * the first `require "moongrad"`; the global mg is not set). */
  int no_stdlib;
  /* Seed of the runtime's random generator (0 = the engine's default). */
  uint64_t seed;
} mg_runtime_options;

/* A new runtime with the engine and its library loaded, the global `mg` set
 * (unless no_stdlib) and the moongrad library's modules available to
 * require. options may be NULL (all defaults). Returns NULL on failure with
 * the reason in mg_last_error(). The host owns the runtime. */
MG_API mg_runtime *mg_runtime_new(const mg_runtime_options *options);
/* Closes the Lua state (running finalisers) and frees the runtime. Tensors
 * the host still holds stay valid. NULL is a no-op. */
MG_API void mg_runtime_free(mg_runtime *rt);
/* The last error of this runtime: message and Lua traceback. Borrowed, valid
 * until the next call into rt; "" when the last call succeeded. */
MG_API const char *mg_runtime_errmsg(const mg_runtime *rt);
/* Bytes of Lua heap in use, and the most ever in use. */
MG_API size_t mg_runtime_memory(const mg_runtime *rt, size_t *peak);
/* With tensor_memory_limit set: bytes of engine memory (tensor storage,
 * graph buffers, kernel workspaces) charged to rt and not yet freed, and
 * the most ever (peak may be NULL); 0 without a limit. */
MG_API size_t mg_runtime_tensor_memory(const mg_runtime *rt, size_t *peak);
/* The Lua state, for hosts that want the full Lua C API (borrowed; do not
 * close it). Calls made directly on it get none of this API's protection. */
MG_API struct lua_State *mg_runtime_lua(mg_runtime *rt);
/* Changes the per-call budget (same meaning as the options); it applies
 * from the next call. */
MG_API void mg_runtime_set_budget(mg_runtime *rt, uint64_t instruction_limit, double time_limit);
/* Stops the host call running in rt as if its budget were spent: the script
 * gets the error "interrupted" (which it cannot catch for long), a staged
 * graph stops at its next loop iteration or kernel chunk, and the call
 * returns MG_ELIMIT. Safe from any thread and from a signal handler; the
 * runtime stays usable. Does nothing when no call is running (a call that
 * starts afterwards is not affected). */
MG_API void mg_runtime_interrupt(mg_runtime *rt);

/* ---- values crossing the boundary ------------------------------------------------ */

typedef enum mg_value_type {
  MG_VNIL = 0,
  MG_VBOOLEAN,
  MG_VINTEGER,   /* a Lua integer */
  MG_VNUMBER,    /* a Lua float */
  MG_VSTRING,
  MG_VTENSOR,
  MG_VOTHER      /* a result that is none of these (a table, a function...): type name in .s */
} mg_value_type;

typedef struct mg_value {
  mg_value_type type;
  union {
    int b;            /* MG_VBOOLEAN */
    int64_t i;        /* MG_VINTEGER */
    double n;         /* MG_VNUMBER */
    struct {
      const char *s;  /* MG_VSTRING (not necessarily NUL-free; NUL-terminated) */
      size_t len;
    } str;
    mg_tensor *t;     /* MG_VTENSOR */
  } u;
} mg_value;

static inline mg_value mg_vnil(void) { mg_value v; v.type = MG_VNIL; v.u.i = 0; return v; }
static inline mg_value mg_vboolean(int b) { mg_value v; v.type = MG_VBOOLEAN; v.u.b = b != 0; return v; }
static inline mg_value mg_vinteger(int64_t i) { mg_value v; v.type = MG_VINTEGER; v.u.i = i; return v; }
static inline mg_value mg_vnumber(double n) { mg_value v; v.type = MG_VNUMBER; v.u.n = n; return v; }
/* A NUL-terminated string (borrowed for the call). */
static inline mg_value mg_vstring(const char *s) {
  mg_value v; v.type = MG_VSTRING; v.u.str.s = s; v.u.str.len = (size_t)-1; return v;
}
static inline mg_value mg_vlstring(const char *s, size_t len) {
  mg_value v; v.type = MG_VSTRING; v.u.str.s = s; v.u.str.len = len; return v;
}
/* A tensor argument (borrowed for the call: no reference is taken from you). */
static inline mg_value mg_vtensor(mg_tensor *t) { mg_value v; v.type = MG_VTENSOR; v.u.t = t; return v; }

/* Releases the tensor reference a result holds and makes it nil. */
MG_API void mg_value_clear(mg_value *v);
/* The value as a double (integers, numbers and booleans convert; else 0 and *ok = 0). ok may be NULL. */
MG_API double mg_value_number(const mg_value *v, int *ok);

/* ---- running code --------------------------------------------------------------- */

/* Runs a chunk of Lua source. chunkname names it in errors ("=name" or
 * "@file" as in Lua). NULL names it by its text, as load(s) does: then
 * AutoGraph (mg.func) can re-read the source of functions defined in it,
 * which a "=name" chunk hides. */
MG_API mg_status mg_run_string(mg_runtime *rt, const char *code, const char *chunkname);
/* Runs a chunk and returns its first nresults results (missing ones are nil).
 * Results follow the ownership rules above. */
MG_API mg_status mg_eval(mg_runtime *rt, const char *code, mg_value *results, int nresults);
/* Runs a Lua source file (text only). */
MG_API mg_status mg_run_file(mg_runtime *rt, const char *path);

/* Calls the function `name` with args[0..nargs-1] and stores its first
 * nresults results in results[] (missing ones are nil). name is a global
 * ("step"), a field path ("agent.policy.act": the first part is a global or,
 * failing that, a loaded module), or a method call ("agent:act", which
 * passes agent as the first argument). Arguments are borrowed; tensor
 * results are new references, string results are borrowed (see above). On
 * failure every result is nil. */
MG_API mg_status mg_invoke(mg_runtime *rt, const char *name, const mg_value *args, int nargs,
                  mg_value *results, int nresults);

/* A function looked up once (mg_lookup), for calls every frame: the lookup
 * cost goes away. Handles are > 0; 0 is never a valid handle. */
typedef int mg_ref;
/* Resolves `name` as mg_invoke does and keeps the function (for "a:m", the
 * object too) in *out. Owned by the runtime; drop it with mg_unref or let
 * mg_runtime_free do it. */
MG_API mg_status mg_lookup(mg_runtime *rt, const char *name, mg_ref *out);
MG_API mg_status mg_invoke_ref(mg_runtime *rt, mg_ref fn, const mg_value *args, int nargs,
                      mg_value *results, int nresults);
MG_API void mg_unref(mg_runtime *rt, mg_ref ref);

/* Sets the global (or dotted field path: the tables on the way must exist)
 * `name` to *value (a tensor gets a new reference held by the runtime). */
MG_API mg_status mg_set_global(mg_runtime *rt, const char *name, const mg_value *value);
/* Reads a global or field path into *out (ownership as for results). */
MG_API mg_status mg_get_global(mg_runtime *rt, const char *name, mg_value *out);

/* ---- staged functions called every frame with no allocation --------------------- */

/* A staged function (mg.func) resolved once to its concrete function for
 * given input shapes, then run straight from C into tensors the host holds:
 * no Lua value is made per call, and a graph with known sizes reuses its
 * buffers, so a steady-state call allocates nothing (neither Lua nor C
 * heap). The staged function must take only tensors and return one tensor
 * or several (not tables).
 *
 *   mg_staged *policy;
 *   mg_lookup_staged(rt, "policy", &obs, 1, &policy);    // traces if needed
 *   mg_call_into(rt, policy, &obs, 1, &logits, 1);       // every frame
 *
 * Owned by the runtime: valid until mg_staged_free or mg_runtime_free. */
typedef struct mg_staged mg_staged;

/* Resolves `name` (as mg_invoke) to a staged function and gets its concrete
 * function for inputs shaped like example[0..nexample-1] (tracing it if no
 * trace fits; the tensors' values are not used otherwise). *out is the
 * handle, NULL on failure. */
MG_API mg_status mg_lookup_staged(mg_runtime *rt, const char *name, mg_tensor *const *example, int nexample,
                           mg_staged **out);
/* Runs fn on inputs (borrowed; each must have the dtype and shape the
 * handle was looked up for, -1 sizes of an input_signature allowing any) and
 * copies its results into outputs[0..nout-1]: plain tensors the host owns,
 * each with exactly the dtype and shape of that result (see
 * mg_staged_output), contiguous or not; an output may be one of the inputs.
 * A mismatch is an MG_EARG error naming the function, the input or output,
 * and both dtypes and shapes; nothing is written unless the run succeeds.
 * When a Lua value the trace read (a guard, see doc/staging.md) has
 * changed, the function is traced again first (that call allocates). */
MG_API mg_status mg_call_into(mg_runtime *rt, mg_staged *fn, mg_tensor *const *inputs, int nin,
                       mg_tensor *const *outputs, int nout);
/* The number of results, and the dtype and shape of result k (0-based; -1
 * sizes are unknown until a call). */
MG_API int mg_staged_noutputs(const mg_staged *fn);
MG_API mg_status mg_staged_output(const mg_staged *fn, int k, mg_dtype *dtype, int *ndim, int64_t *shape);
/* Drops the handle (NULL is a no-op). Using it afterwards is an error. */
MG_API void mg_staged_free(mg_runtime *rt, mg_staged *fn);

/* ---- host functions callable from Lua -------------------------------------------- */

#define MG_CALLBACK_MAX_ARGS 16
#define MG_CALLBACK_MAX_RESULTS 8

/* A C function scripts can call. args are borrowed for the call (tensors and
 * strings stay valid until it returns; retain a tensor to keep it). Write up
 * to MG_CALLBACK_MAX_RESULTS results and their count in *nresults (it starts at
 * 0); tensors written there are handed over to the runtime, whether the
 * function succeeds or fails; strings are copied just after fn returns, so
 * they must outlive the call (static, or owned by ud). Return MG_OK, or an error status with the
 * message set by mg_seterror(): the script then gets a Lua error "name:
 * message". The function may call back into the same runtime (mg_invoke...).
 * It must not longjmp or throw (moongrad.hpp catches C++ exceptions). */
typedef mg_status (*mg_callback)(mg_runtime *rt, void *ud, const mg_value *args, int nargs,
                                mg_value *results, int *nresults);
/* Makes fn callable from Lua as `name` (a global or a field path; missing
 * tables on the way are created). ud is passed back to fn; the runtime
 * never frees it. */
MG_API mg_status mg_register(mg_runtime *rt, const char *name, mg_callback fn, void *ud);

#ifdef __cplusplus
}
#endif
#endif
