/*
 * graph_frame.c — one policy call per frame from a graph file (mg_graph_load +
 * mg_graph_run_into, no Lua) beside the same staged function called through
 * the embedding (mg_lookup_staged + mg_call_into).
 *
 *   build/bench/graph_frame [--quick]
 *
 * The policy is bench/embed_frame.c's: an MLP 8-64-64-4 with the argmax in
 * the graph, on a 1x8 observation in a borrowed host buffer, the action
 * written into a host int64. A Lua runtime defines it as an mg.func and
 * mg.export writes it to a temporary file; then
 *   1. mg_call_into on the runtime's concrete function, and
 *   2. mg_graph_run_into on the graph loaded from the file with a context of
 *      its own (what a host without Lua does),
 * are timed (median microseconds per call of repeated runs) with the C heap
 * allocations per call counted (malloc/calloc/realloc wrappers, not under
 * ASan), and must pick the same actions. No target is asserted here.
 */
#include "moongrad.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long bench_mallocs;
static int bench_counting;
#if !defined(__SANITIZE_ADDRESS__)
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
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
#endif

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int die(mg_runtime *rt, const char *what) {
  fprintf(stderr, "graph_frame: %s: %s\n", what, rt ? mg_runtime_errmsg(rt) : mg_last_error());
  return 1;
}

static const char *const policy_lua =
  "local function layer(n_in, n_out)\n"
  "  return mg.random.normal({n_in, n_out}, 0, math.sqrt(2 / n_in)), mg.zeros{n_out}\n"
  "end\n"
  "local W1, b1 = layer(8, 64)\n"
  "local W2, b2 = layer(64, 64)\n"
  "local W3, b3 = layer(64, 4)\n"
  "policy = mg.func(function(x)\n"
  "  local h = mg.relu(mg.matmul(x, W1) + b1)\n"
  "  h = mg.relu(mg.matmul(h, W2) + b2)\n"
  "  return mg.argmax(mg.matmul(h, W3) + b3)\n"
  "end)\n"
  "mg.export(policy, graph_path, {signature = {mg.TensorSpec{shape = {1, 8}, dtype = 'float32', name = 'obs'}}})\n";

float obs[8];
int64_t action;

/* One frame: a new observation, a call. which 0: mg_call_into; 1: mg_graph_run_into. */
typedef struct bench {
  mg_runtime *rt;
  mg_staged *staged;
  mg_ctx *ctx;
  mg_graph *g;
  mg_tensor *obs_t, *act_t;
} bench;

static int frame(bench *b, int which, int i) {
  for (int k = 0; k < 8; k++) obs[k] = (float)((i * 7 + k * 3) % 17) / 8.0f - 1.0f;
  if (which == 0) return mg_call_into(b->rt, b->staged, &b->obs_t, 1, &b->act_t, 1) ? die(b->rt, "mg_call_into") : 0;
  return mg_graph_run_into(b->ctx, b->g, 1, &b->obs_t, 1, &b->act_t) ? die(NULL, "mg_graph_run_into") : 0;
}

static int measure(bench *b, int which, int n, int reps, double *us, double *allocs, long *sum) {
  double times[64];
  for (int i = 0; i < n; i++)
    if (frame(b, which, i)) return 1;
  *sum = 0;
  for (int k = 0; k < reps; k++) {
    bench_mallocs = 0;
    bench_counting = 1;
    double t0 = now();
    for (int i = 0; i < n; i++) {
      if (frame(b, which, i)) return 1;
      if (k == 0) *sum += action * (i % 13 + 1);
    }
    times[k] = (now() - t0) / n * 1e6;
    bench_counting = 0;
  }
  qsort(times, (size_t)reps, sizeof *times, cmp_double);
  *us = times[reps / 2];
  *allocs = (double)bench_mallocs / n;
  return 0;
}

int main(int argc, char **argv) {
  int quick = (argc > 1 && strcmp(argv[1], "--quick") == 0) || (getenv("MG_QUICK") && *getenv("MG_QUICK") == '1');
  int n = quick ? 2000 : 20000, reps = quick ? 3 : 9;
  char path[64];
  snprintf(path, sizeof path, "/tmp/graph_frame_%ld.mgg", (long)getpid());

  bench b = {0};
  mg_runtime_options o = {0};
  o.seed = 1;
  if (!(b.rt = mg_runtime_new(&o))) return die(NULL, "mg_runtime_new");
  mg_value pv = mg_vstring(path);
  if (mg_set_global(b.rt, "graph_path", &pv) || mg_run_string(b.rt, policy_lua, NULL)) return die(b.rt, "policy");
  int64_t shape[2] = {1, 8};
  if (mg_tensor_borrow(MG_FLOAT32, 2, shape, obs, NULL, NULL, &b.obs_t) ||
      mg_tensor_borrow(MG_INT64, 0, NULL, &action, NULL, NULL, &b.act_t))
    return die(NULL, "borrow");
  if (mg_lookup_staged(b.rt, "policy", &b.obs_t, 1, &b.staged)) return die(b.rt, "mg_lookup_staged");
  if (!(b.ctx = mg_ctx_new()) || mg_graph_load(b.ctx, path, &b.g)) return die(NULL, "mg_graph_load");
  remove(path);

  double us[2], allocs[2];
  long sum[2];
  for (int which = 0; which < 2; which++)
    if (measure(&b, which, n, reps, &us[which], &allocs[which], &sum[which])) return 1;
  printf("graph_frame: MLP 8-64-64-4 policy (argmax in the graph), per call:\n");
  printf("graph_frame:   mg_call_into (Lua runtime's staged function): %.2f us, %.1f C heap allocations\n", us[0],
         allocs[0]);
  printf("graph_frame:   mg_graph_run_into (graph file, no Lua):       %.2f us, %.1f C heap allocations\n", us[1],
         allocs[1]);
  printf("graph_frame: same actions: %s\n", sum[0] == sum[1] ? "yes" : "NO");
  mg_tensor_release(b.obs_t);
  mg_tensor_release(b.act_t);
  mg_staged_free(b.rt, b.staged);
  mg_runtime_free(b.rt);
  mg_graph_free(b.g);
  mg_ctx_free(b.ctx);
  return sum[0] == sum[1] ? 0 : 1;
}
