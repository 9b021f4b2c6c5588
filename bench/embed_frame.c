/*
 * embed_frame.c — what a game pays for moongrad: start-up and one policy call
 * per frame, measured from C through the embedding API.
 *
 *   build/bench/embed_frame [--quick]
 *
 * 1. mg_runtime_new to the first result of a one-line script (target <= 5 ms):
 *    the first runtime of the process (engine set-up included) and then the
 *    median of fresh runtimes.
 * 2. A per-frame call of a policy network, an MLP 8-64-64-4 on a 1x8
 *    observation (target <= 20 us per call, zero heap allocations per call
 *    in steady state). The observation is a borrowed host buffer set once as a
 *    global, the function is looked up once (mg_lookup) and called with
 *    mg_invoke_ref, so the embedding layer itself adds no allocation; what the
 *    script's ops allocate is counted two ways, separately: Lua heap
 *    allocations through the runtime's allocator option (which calls glibc
 *    directly), and C heap allocations (the engine's tensor buffers and
 *    anything else) through malloc/calloc/realloc/aligned_alloc wrappers
 *    defined in this file (they forward to glibc's __libc_* functions; not
 *    built under ASan, which has its own).
 *    The eager call is measured; when mg.func (staging) is available the
 *    staged call is measured too, twice: through Lua (a function calling the
 *    staged policy, whose result comes back as a tensor box) and straight
 *    from C with mg_lookup_staged / mg_call_into, which writes the action
 *    into a host int64 and should allocate nothing.
 *
 * Figures are medians of timed runs; the machine's other load shows up in
 * them, so compare runs on a quiet machine.
 */
#include "moongrad.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- counting C heap allocations -------------------------------------------------- */
static long bench_mallocs;
static int bench_counting;

#if !defined(__SANITIZE_ADDRESS__)
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

void *malloc(size_t n) {
  if (bench_counting) __atomic_add_fetch(&bench_mallocs, 1, __ATOMIC_RELAXED);
  return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
  if (bench_counting) __atomic_add_fetch(&bench_mallocs, 1, __ATOMIC_RELAXED);
  return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
  if (bench_counting) __atomic_add_fetch(&bench_mallocs, 1, __ATOMIC_RELAXED);
  return __libc_realloc(p, n);
}
void *aligned_alloc(size_t al, size_t n) {
  if (bench_counting) __atomic_add_fetch(&bench_mallocs, 1, __ATOMIC_RELAXED);
  return __libc_memalign(al, n);
}
int posix_memalign(void **out, size_t al, size_t n) {
  if (bench_counting) __atomic_add_fetch(&bench_mallocs, 1, __ATOMIC_RELAXED);
  *out = __libc_memalign(al, n);
  return *out ? 0 : 12;
}
void free(void *p) { __libc_free(p); }
#define BENCH_MALLOC_COUNTED 1
#define bench_raw_realloc __libc_realloc   /* the Lua heap is counted on its own, not twice */
#define bench_raw_free __libc_free
#else
#define BENCH_MALLOC_COUNTED 0
#define bench_raw_realloc realloc
#define bench_raw_free free
#endif

/* ---- counting Lua heap allocations (the runtime's allocator option) ------------------ */
static long bench_lua_allocs;

static void *bench_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (nsize == 0) {
    bench_raw_free(ptr);
    return NULL;
  }
  if (bench_counting && nsize > (ptr ? osize : 0)) bench_lua_allocs++;
  return bench_raw_realloc(ptr, nsize);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return v[n / 2];
}

static int die(mg_runtime *rt, const char *what) {
  fprintf(stderr, "embed_frame: %s: %s\n", what, rt ? mg_runtime_errmsg(rt) : mg_last_error());
  return 1;
}

/* Seconds from mg_runtime_new to the first result of a one-line script. */
static double startup_once(mg_runtime **keep) {
  double t0 = now();
  mg_runtime *rt = mg_runtime_new(NULL);
  mg_value r;
  if (!rt || mg_eval(rt, "return mg.tensor{1, 2, 3}:sum():item()", &r, 1) || r.u.i != 6) return -1;
  double dt = now() - t0;
  if (keep) *keep = rt;
  else mg_runtime_free(rt);
  return dt;
}

static const char *const policy_lua =
  "local function layer(n_in, n_out)\n"
  "  return mg.random.normal({n_in, n_out}, 0, math.sqrt(2 / n_in)), mg.zeros{n_out}\n"
  "end\n"
  "local W1, b1 = layer(8, 64)\n"
  "local W2, b2 = layer(64, 64)\n"
  "local W3, b3 = layer(64, 4)\n"
  "function logits(x)\n"
  "  local h = mg.relu(mg.matmul(x, W1) + b1)\n"
  "  h = mg.relu(mg.matmul(h, W2) + b2)\n"
  "  return mg.matmul(h, W3) + b3\n"
  "end\n"
  "function act() return mg.argmax(logits(obs)):item() end\n"
  "if mg.func then   -- the whole policy in one graph, argmax included\n"
  "  policy = mg.func(function(x) return mg.argmax(logits(x)) end)\n"
  "  function act_staged() return policy(obs):item() end\n"
  "end\n";

/* Median microseconds per call of fn over `reps` runs of `n` calls, and the
 * allocations per call of the last run. */
static int frame_bench(mg_runtime *rt, mg_ref fn, int n, int reps, double *us, double *lua_allocs,
                       double *c_allocs) {
  double times[64];
  mg_value r;
  for (int i = 0; i < n; i++)   /* warm-up: pools, caches, GC pacing */
    if (mg_invoke_ref(rt, fn, NULL, 0, &r, 1)) return die(rt, "warm-up");
  for (int k = 0; k < reps; k++) {
    bench_lua_allocs = bench_mallocs = 0;
    bench_counting = 1;
    double t0 = now();
    for (int i = 0; i < n; i++)
      if (mg_invoke_ref(rt, fn, NULL, 0, &r, 1)) return die(rt, "call");
    times[k] = (now() - t0) / n * 1e6;
    bench_counting = 0;
  }
  *us = median(times, reps);
  *lua_allocs = (double)bench_lua_allocs / n;
  *c_allocs = (double)bench_mallocs / n;
  return 0;
}

/* As frame_bench, for mg_call_into: observation in, action out, both host tensors. */
static int into_bench(mg_runtime *rt, mg_staged *fn, mg_tensor *obs, mg_tensor *act, int n, int reps, double *us,
                      double *lua_allocs, double *c_allocs) {
  double times[64];
  for (int i = 0; i < n; i++)
    if (mg_call_into(rt, fn, &obs, 1, &act, 1)) return die(rt, "warm-up");
  for (int k = 0; k < reps; k++) {
    bench_lua_allocs = bench_mallocs = 0;
    bench_counting = 1;
    double t0 = now();
    for (int i = 0; i < n; i++)
      if (mg_call_into(rt, fn, &obs, 1, &act, 1)) return die(rt, "call");
    times[k] = (now() - t0) / n * 1e6;
    bench_counting = 0;
  }
  *us = median(times, reps);
  *lua_allocs = (double)bench_lua_allocs / n;
  *c_allocs = (double)bench_mallocs / n;
  return 0;
}

int main(int argc, char **argv) {
  int quick = (argc > 1 && strcmp(argv[1], "--quick") == 0) || (getenv("MG_QUICK") && *getenv("MG_QUICK") == '1');
  int nstart = quick ? 3 : 21, ncalls = quick ? 2000 : 20000, reps = quick ? 3 : 9;

  /* 1. start-up */
  double first = startup_once(NULL), times[64];
  if (first < 0) return die(NULL, "start-up");
  for (int i = 0; i < nstart; i++)
    if ((times[i] = startup_once(NULL)) < 0) return die(NULL, "start-up");
  printf("embed_frame: mg_runtime_new -> first result of a one-line script: first in process %.2f ms, "
         "then median %.2f ms (target <= 5 ms)\n", first * 1e3, median(times, nstart) * 1e3);

  /* 2. per-frame policy call */
  mg_runtime_options o = {0};
  o.alloc = bench_lua_alloc;
  o.seed = 1;
  mg_runtime *rt = mg_runtime_new(&o);
  if (!rt) return die(NULL, "mg_runtime_new");
  float obs[8] = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f, 0.7f, -0.8f};
  int64_t shape[2] = {1, 8};
  mg_tensor *obs_t;
  if (mg_tensor_borrow(MG_FLOAT32, 2, shape, obs, NULL, NULL, &obs_t)) return die(NULL, "borrow");
  mg_value v = mg_vtensor(obs_t);
  if (mg_set_global(rt, "obs", &v)) return die(rt, "set obs");
  if (mg_run_string(rt, policy_lua, NULL)) return die(rt, "policy");   /* NULL: AutoGraph can read the source */
  mg_ref act, act_staged = 0, empty;
  if (mg_lookup(rt, "act", &act)) return die(rt, "lookup");
  if (mg_run_string(rt, "function empty() return 1 end", NULL) || mg_lookup(rt, "empty", &empty))
    return die(rt, "empty");
  mg_value has_staged;
  if (mg_get_global(rt, "act_staged", &has_staged) == MG_OK && has_staged.type != MG_VNIL &&
      mg_lookup(rt, "act_staged", &act_staged))
    return die(rt, "lookup staged");

  double us, la, ca;
  if (frame_bench(rt, empty, ncalls, reps, &us, &la, &ca)) return 1;
  printf("embed_frame: empty Lua function through mg_invoke_ref: %.2f us per call, %.1f Lua + %.1f C heap "
         "allocations per call%s\n", us, la, ca, BENCH_MALLOC_COUNTED ? "" : " (C heap not counted under ASan)");
  if (frame_bench(rt, act, ncalls, reps, &us, &la, &ca)) return 1;
  printf("embed_frame: MLP 8-64-64-4 policy, eager: %.2f us per call (target <= 20 us), %.1f Lua + %.1f C heap "
         "allocations per call (target 0)\n", us, la, ca);
  if (act_staged) {
    if (frame_bench(rt, act_staged, ncalls, reps, &us, &la, &ca)) return 1;
    printf("embed_frame: MLP 8-64-64-4 policy, staged (mg.func): %.2f us per call, %.1f Lua + %.1f C heap "
           "allocations per call\n", us, la, ca);
  } else {
    printf("embed_frame: staged policy: not measured (mg.func is not available in this build)\n");
  }
  if (act_staged) {  /* the staged graph straight from C into a host tensor: mg_call_into */
    int64_t action = -1;
    mg_tensor *act_t;
    mg_staged *policy;
    if (mg_tensor_borrow(MG_INT64, 0, NULL, &action, NULL, NULL, &act_t)) return die(NULL, "borrow");
    if (mg_lookup_staged(rt, "policy", &obs_t, 1, &policy)) return die(rt, "mg_lookup_staged");
    if (into_bench(rt, policy, obs_t, act_t, ncalls, reps, &us, &la, &ca)) return 1;
    printf("embed_frame: MLP 8-64-64-4 policy, staged, mg_call_into a host tensor: %.2f us per call, %.1f Lua + "
           "%.1f C heap allocations per call (target 0; action %lld)\n", us, la, ca, (long long)action);
    mg_staged_free(rt, policy);
    mg_tensor_release(act_t);
  }
  mg_tensor_release(obs_t);
  mg_runtime_free(rt);
  mg_thread_cache_drain();
  return 0;
}
