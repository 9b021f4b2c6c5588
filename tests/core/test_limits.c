/*
 * test_limits.c — the limits of a call (core/limits.c) through mg.h, with no
 * Lua: a stopped kernel is an error and never a partial result, an
 * interrupt from another thread stops a kernel between its chunks, a
 * graph's while loop charges its body to the instruction budget, and the
 * memory cap is checked before allocating (tensor storage and kernel
 * workspaces), asks its owner to reclaim once, and outlives its owner while
 * buffers charged to it live.
 */
#include "harness.h"

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double lim_now(void) { return mg_monotonic(); }

static mg_tensor *filled(int ndim, const int64_t *shape, double v) {
  mg_attrs a = {0};
  mg_tensor *t = NULL;
  a.set = 3u;
  a.v[0].n = ndim;
  for (int i = 0; i < ndim; i++) a.v[0].i[i] = shape[i];
  a.v[1].f = v;
  if (mg_apply(mg_test_ctx(), MG_OP_FULL, NULL, 0, &a, &t)) return NULL;
  return t;
}

TEST(limits_stop_kernels_with_an_error_not_a_partial_result) {
  int64_t shape[1] = {1 << 22};
  mg_tensor *x = filled(1, shape, 1.0), *y = NULL;
  REQUIRE(x);
  mg_limits *l = mg_limits_new();
  REQUIRE(l);
  mg_limits_start(l, 0, 1e-9);   /* a deadline already past */
  usleep(10000);
  mg_limits *prev = mg_limits_enter(l);
  CHECK(mg_apply(mg_test_ctx(), MG_OP_EXP, &x, 1, NULL, &y) == MG_ELIMIT);
  CHECK(y == NULL);
  CHECK(strstr(mg_last_error(), "time budget") != NULL);
  CHECK(mg_limits_stopped(l) == MG_STOP_TIME);
  mg_limits_start(l, 0, 0);      /* the next call: no limit */
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_EXP, &x, 1, NULL, &y));
  mg_tensor_release(y);
  mg_limits_interrupt(l);
  CHECK(mg_apply(mg_test_ctx(), MG_OP_EXP, &x, 1, NULL, &y) == MG_ELIMIT);
  CHECK(strstr(mg_last_error(), "interrupted") != NULL);
  mg_limits_enter(prev);
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_EXP, &x, 1, NULL, &y));   /* not current: no effect */
  mg_tensor_release(y);
  mg_limits_release(l);
  mg_tensor_release(x);
}

typedef struct lim_job {
  mg_limits *l;
  double after;
} lim_job;

static void *lim_interrupt_later(void *p) {
  lim_job *j = p;
  usleep((useconds_t)(j->after * 1e6));
  mg_limits_interrupt(j->l);
  return NULL;
}

TEST(limits_interrupt_stops_a_long_kernel_between_chunks) {
  int64_t shape[2] = {4096, 4096};
  mg_tensor *a = filled(2, shape, 0.5), *c = NULL;
  REQUIRE(a);
  mg_tensor *in[2] = {a, a};
  mg_limits *l = mg_limits_new();
  REQUIRE(l);
  mg_limits_start(l, 0, 0);
  mg_limits *prev = mg_limits_enter(l);
  double t0 = lim_now();
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_MATMUL, in, 2, NULL, &c));   /* how long one takes here */
  double whole = lim_now() - t0;
  mg_tensor_release(c);
  c = NULL;
  lim_job j = {l, whole / 8};
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, lim_interrupt_later, &j) == 0);
  t0 = lim_now();
  CHECK(mg_apply(mg_test_ctx(), MG_OP_MATMUL, in, 2, NULL, &c) == MG_ELIMIT);
  double stopped = lim_now() - t0;
  pthread_join(th, NULL);
  CHECK(c == NULL);
  CHECK(stopped < whole * 0.75);   /* it did not run to the end */
  mg_limits_enter(prev);
  mg_limits_release(l);
  mg_tensor_release(a);
}

/* A graph: while (true) v = v + 1, traced by hand. */
static mg_graph *endless_loop(mg_ctx *ctx) {
  mg_graph *g = NULL, *cg = NULL, *bg = NULL;
  mg_tensor *x = NULL, *cx = NULL, *bx = NULL, *one = NULL, *t = NULL, *out = NULL, *pred = NULL;
  int64_t none[1] = {0};
  if (mg_trace_begin(ctx, "endless", &g) || mg_trace_placeholder(ctx, MG_FLOAT32, 0, none, &x)) return NULL;
  mg_trace_begin(ctx, "cond", &cg);
  mg_trace_placeholder(ctx, MG_FLOAT32, 0, none, &cx);
  mg_scalar_f64(0, 1, &one);   /* weak: v + 1 stays float32 */
  mg_tensor *cin[2] = {cx, one};
  mg_apply(ctx, MG_OP_GREATER_EQUAL, cin, 2, NULL, &pred);
  mg_trace_end(ctx, cg, 1, &pred);
  mg_trace_begin(ctx, "body", &bg);
  mg_trace_placeholder(ctx, MG_FLOAT32, 0, none, &bx);
  mg_tensor *bin[2] = {bx, one};
  mg_apply(ctx, MG_OP_ADD, bin, 2, NULL, &t);
  mg_trace_end(ctx, bg, 1, &t);
  mg_status st = mg_trace_while(ctx, cg, bg, 1, &x, -1, &out);
  if (!st) st = mg_trace_end(ctx, g, 1, &out);
  mg_tensor_release(x), mg_tensor_release(cx), mg_tensor_release(bx), mg_tensor_release(one);
  mg_tensor_release(t), mg_tensor_release(out), mg_tensor_release(pred);
  mg_graph_release(cg), mg_graph_release(bg);
  if (st) {
    mg_graph_release(g);
    return NULL;
  }
  return g;
}

TEST(limits_charge_while_loop_iterations) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = endless_loop(ctx);
  if (!g) fprintf(stderr, "  %s\n", mg_last_error());
  REQUIRE(g);
  mg_tensor *x = NULL, *y = NULL;
  CHECK_OK(mg_scalar_f64(0, 0, &x));
  mg_tensor *xf = NULL;
  mg_attrs ca = {.set = 1u};
  ca.v[0].n = 1;
  ca.v[0].i[0] = MG_FLOAT32;
  CHECK_OK(mg_apply(ctx, MG_OP_CAST, &x, 1, &ca, &xf));
  mg_limits *l = mg_limits_new();
  REQUIRE(l);
  mg_limits_start(l, 100000, 0);
  mg_limits *prev = mg_limits_enter(l);
  double t0 = lim_now();
  CHECK(mg_graph_run(ctx, g, 1, &xf, 1, &y) == MG_ELIMIT);
  CHECK(strstr(mg_last_error(), "instruction budget of 100000 exceeded") != NULL);
  CHECK(mg_limits_used(l) > 100000 && mg_limits_used(l) < 100100);
  mg_limits_start(l, 0, 0.05);
  CHECK(mg_graph_run(ctx, g, 1, &xf, 1, &y) == MG_ELIMIT);
  CHECK(strstr(mg_last_error(), "time budget of 0.05 s exceeded") != NULL);
  CHECK(lim_now() - t0 < 5);
  mg_limits_enter(prev);
  mg_limits_release(l);
  mg_tensor_release(x);
  mg_tensor_release(xf);
  mg_graph_release(g);
}

static mg_tensor *held;
static int reclaims;
static int lim_reclaim(void *ud) {
  (void)ud;
  reclaims++;
  mg_tensor_release(held);   /* the garbage its owner's collector would free */
  held = NULL;
  return 0;
}

TEST(limits_memory_cap_checked_before_allocating) {
  mg_limits *l = mg_limits_new();
  REQUIRE(l);
  mg_limits_start(l, 0, 0);
  mg_limits_set_memory(l, 1 << 20, lim_reclaim, NULL);
  mg_limits *prev = mg_limits_enter(l);
  int64_t big[1] = {1 << 19}, small[1] = {1 << 16};   /* 2 MiB and 256 KiB of float32 */
  mg_tensor *t = NULL, *u = NULL;
  CHECK(mg_tensor_empty(MG_FLOAT32, 1, big, &t) == MG_ELIMIT);
  CHECK(strstr(mg_last_error(), "tensor memory limit of 1048576 bytes exceeded") != NULL);
  CHECK(mg_limits_refused(l) == 1);
  CHECK(reclaims == 1);   /* asked once before refusing */
  reclaims = 0;
  CHECK_OK(mg_tensor_empty(MG_FLOAT32, 1, small, &t));
  CHECK(mg_limits_memory(l, NULL) == (size_t)1 << 18);
  /* over the cap, the owner reclaims once; then it fits */
  CHECK_OK(mg_tensor_empty(MG_FLOAT32, 1, small, &held));
  CHECK_OK(mg_tensor_empty(MG_FLOAT32, 1, small, &u));
  mg_tensor *w = NULL;
  CHECK_OK(mg_tensor_empty(MG_FLOAT32, 1, small, &w));   /* 1 MiB in use: exactly the cap */
  mg_tensor *v = NULL;
  CHECK_OK(mg_tensor_empty(MG_FLOAT32, 1, small, &v));   /* fits once `held` is reclaimed */
  CHECK(reclaims == 1 && held == NULL);
  mg_tensor_release(t), mg_tensor_release(u), mg_tensor_release(w), mg_tensor_release(v);
  CHECK(mg_limits_memory(l, NULL) == 0);
  /* a kernel's workspace counts: a product of a broadcast view needs a packed copy (4 MiB) */
  int64_t row[2] = {1, 1024}, wide[2] = {1024, 1024}, two[2] = {1024, 2};
  mg_tensor *r = filled(2, row, 1.0), *b = filled(2, two, 1.0), *e = NULL, *c = NULL;
  if (!r || !b) mg_limits_enter(prev);
  REQUIRE(r && b);
  mg_attrs ea = {.set = 1u};
  ea.v[0].n = 2;
  ea.v[0].i[0] = wide[0];
  ea.v[0].i[1] = wide[1];
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_EXPAND, &r, 1, &ea, &e));
  mg_tensor *in[2] = {e, b};
  CHECK(mg_apply(mg_test_ctx(), MG_OP_MATMUL, in, 2, NULL, &c) == MG_ELIMIT);
  CHECK(strstr(mg_last_error(), "matmul: tensor memory limit") != NULL);
  mg_limits_enter(prev);
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_MATMUL, in, 2, NULL, &c));   /* no limits current: it runs */
  /* the account outlives its owner while buffers charged to it live */
  CHECK(mg_limits_memory(l, NULL) > 0);
  mg_limits_release(l);
  mg_tensor_release(r), mg_tensor_release(b), mg_tensor_release(e), mg_tensor_release(c);
}
