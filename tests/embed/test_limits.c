/*
 * test_limits.c — limits that hold everywhere: budgets and interrupts stop
 * staged graphs and long kernels, a budget error leaves the runtime as it
 * was, the tensor memory limit is checked before allocating and counts graph
 * buffers and kernel workspaces, a FIFO never blocks mg.load, a looping
 * __gc cannot hang a call or mg_runtime_free, and a staged function that
 * calls itself while tracing gets a clear error.
 *
 * Each could hang the host when broken: they run in a child process under a
 * watchdog (HOSTILE_TEST). Times are only bounded loosely here (a loaded
 * machine must not fail them); the overshoot figures are measured by
 * bench/embed_overshoot.c.
 */
#include "harness.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static mg_runtime *limited(double time_limit, uint64_t instructions) {
  mg_runtime_options o = {0};
  o.time_limit = time_limit;
  o.instruction_limit = instructions;
  return mg_runtime_new(&o);
}

static double eval_number(mg_runtime *rt, const char *code) {
  mg_value r;
  if (mg_eval(rt, code, &r, 1) != MG_OK) {
    fprintf(stderr, "  %s\n", mg_runtime_errmsg(rt));
    return -1e300;
  }
  double v = mg_value_number(&r, NULL);
  mg_value_clear(&r);
  return v;
}

/* A staged infinite loop, by hand (mg.while_loop) and by AutoGraph (a Lua
 * while over a tensor condition; the chunk is loaded by its text, so
 * AutoGraph can read it). */
static const char staged_loops[] =
  "HAND = mg.func(function(x)\n"
  "  return mg.while_loop(function(v) return mg.less(v, 2) end, function(v) return v * 1 end, {x})\n"
  "end)\n"
  "function auto(x)\n"
  "  while mg.less(x, 2) do\n"
  "    x = x * 1\n"
  "  end\n"
  "  return x\n"
  "end\n"
  "AUTO = mg.func(auto)\n";

/* The runtime works normally after a limit stopped a call. */
static void check_usable(mg_runtime *rt) {
  mg_value r[3];
  CHECK_RT(rt, mg_eval(rt, "return mg.executing_eagerly(), mg.ones{3}:sum():item(), "
                           "mg.func(function(x) return x + 1 end)(mg.ones{2}):sum():item()", r, 3));
  CHECK(r[0].type == MG_VBOOLEAN && r[0].u.b);
  CHECK(mg_value_number(&r[1], NULL) == 3 && mg_value_number(&r[2], NULL) == 4);
}

HOSTILE_TEST(budgets_stop_staged_while_loops, 60) {
  mg_runtime *rt = limited(0.3, 0);
  REQUIRE(rt);
  CHECK_RT(rt, mg_run_string(rt, staged_loops, NULL));
  const char *calls[] = {"HAND(mg.tensor(1.0))", "AUTO(mg.tensor(1.0))"};
  for (int i = 0; i < 2; i++) {
    double t0 = embed_test_now();
    CHECK(mg_run_string(rt, calls[i], NULL) == MG_ELIMIT);
    CHECK(embed_test_now() - t0 < 3);
    CHECK_CONTAINS(mg_runtime_errmsg(rt), "time budget of 0.3 s exceeded");
    check_usable(rt);
  }
  /* from the host with no Lua on the way */
  int64_t shape[1] = {1};
  float one = 1;
  mg_tensor *x = NULL, *y = NULL;
  REQUIRE(mg_tensor_from_data(MG_FLOAT32, 0, shape, &one, &x) == MG_OK);
  REQUIRE(mg_tensor_from_data(MG_FLOAT32, 0, shape, &one, &y) == MG_OK);
  mg_staged *h = NULL;
  CHECK_RT(rt, mg_lookup_staged(rt, "AUTO", &x, 1, &h));
  double t0 = embed_test_now();
  CHECK(h && mg_call_into(rt, h, &x, 1, &y, 1) == MG_ELIMIT);
  CHECK(embed_test_now() - t0 < 3);
  mg_runtime_free(rt);
  /* the instruction budget too: each iteration counts the nodes of the loop body */
  rt = limited(0, 2000000);
  REQUIRE(rt);
  CHECK_RT(rt, mg_run_string(rt, staged_loops, NULL));
  for (int i = 0; i < 2; i++) {
    CHECK(mg_run_string(rt, calls[i], NULL) == MG_ELIMIT);
    CHECK_CONTAINS(mg_runtime_errmsg(rt), "instruction budget of 2000000 exceeded");
    check_usable(rt);
  }
  mg_runtime_free(rt);
  mg_tensor_release(x);
  mg_tensor_release(y);
}

typedef struct interrupter {
  mg_runtime *rt;
  double after;
} interrupter;

static void *interrupt_later(void *p) {
  interrupter *it = p;
  usleep((useconds_t)(it->after * 1e6));
  mg_runtime_interrupt(it->rt);
  return NULL;
}

HOSTILE_TEST(interrupt_from_another_thread_stops_lua_graphs_and_kernels, 60) {
  mg_runtime *rt = limited(0, 0);
  REQUIRE(rt);
  CHECK_RT(rt, mg_run_string(rt, staged_loops, NULL));
  CHECK_RT(rt, mg_run_string(rt, "A = mg.ones{4096, 4096}", NULL));
  const char *calls[] = {"while true do end", "HAND(mg.tensor(1.0))", "AUTO(mg.tensor(1.0))",
                         "while true do pcall(HAND, mg.tensor(1.0)) end",
                         "for i = 1, 1000 do local c = mg.matmul(A, A) end"};
  for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
    interrupter it = {rt, 0.3};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, interrupt_later, &it) == 0);
    double t0 = embed_test_now();
    CHECK(mg_run_string(rt, calls[i], NULL) == MG_ELIMIT);
    double dt = embed_test_now() - t0;
    pthread_join(th, NULL);
    CHECK(dt < 5);
    CHECK_CONTAINS(mg_runtime_errmsg(rt), "interrupted");
    check_usable(rt);   /* an interrupt stops one call, not the next */
  }
  mg_runtime_interrupt(rt);   /* no call running: nothing happens */
  check_usable(rt);
  mg_runtime_free(rt);
}

HOSTILE_TEST(time_budget_stops_large_kernels_and_loops_of_them, 90) {
  mg_runtime *rt = limited(0.3, 0);
  REQUIRE(rt);
  CHECK_RT(rt, mg_run_string(rt, "A = mg.ones{2048, 2048} B = mg.ones{6144, 6144}", NULL));
  /* a loop of large products: a check between two kernels, not every 1,000 instructions */
  double t0 = embed_test_now();
  CHECK(mg_run_string(rt, "while true do local c = mg.matmul(A, A) end", NULL) == MG_ELIMIT);
  CHECK(embed_test_now() - t0 < 2);
  /* one product of ~460 GFLOP (seconds): stopped between its blocks, and no result comes back */
  t0 = embed_test_now();
  mg_value r[2];
  CHECK_RT(rt, mg_eval(rt, "local ok, c = pcall(mg.matmul, B, B) return ok, c", r, 2));
  CHECK(r[0].type == MG_VBOOLEAN && !r[0].u.b);
  CHECK(r[1].type == MG_VSTRING && strstr(r[1].u.str.s, "time budget"));
  CHECK(embed_test_now() - t0 < 2);
  /* the same in a staged function */
  mg_runtime_set_budget(rt, 0, 0);
  CHECK_RT(rt, mg_run_string(rt, "MM = mg.func(function(a) return mg.matmul(a, a) end) MM(mg.ones{8, 8})", NULL));
  mg_runtime_set_budget(rt, 0, 0.3);
  t0 = embed_test_now();
  CHECK(mg_run_string(rt, "MM(B)", NULL) == MG_ELIMIT);
  CHECK(embed_test_now() - t0 < 2);
  mg_runtime_free(rt);
}

/* ---- a budget error leaves the runtime as it was ----------------------------------------- */

static const char traced_source[] =
  "K = 1\n"
  "function traced(x)\n"
  "  local y = x\n"
  "  for i = 1, 3 do\n"
  "    if mg.sum(y) > 0 then\n"
  "      y = y * 2\n"
  "    else\n"
  "      y = y - 1\n"
  "    end\n"
  "  end\n"
  "  local n = 0\n"
  "  while n < 200 do n = n + 1 end\n"
  "  return y + K\n"
  "end\n"
  "BEFORE = mg.func(function(x) return x * 3 end)\n"
  "BEFORE(mg.ones{2})\n";

HOSTILE_TEST(budget_errors_while_tracing_leave_the_runtime_as_it_was, 300) {
  mg_runtime *rt = limited(0, 0);
  REQUIRE(rt);
  CHECK_RT(rt, mg_run_string(rt, traced_source, NULL));
  int failures = 0, successes = 0;
  for (double limit = 1000; limit < 3e6 && successes < 2; limit *= 1.15) {
    mg_runtime_set_budget(rt, (uint64_t)limit, 0);
    mg_status st = mg_run_string(rt,
      "local S = mg.func(traced)\n"
      "local g = mg.GradientTape()\n"
      "local v = mg.Variable(mg.ones{2})\n"
      "g:watch(v)\n"
      "local out = S(v:read())\n"
      "return out", NULL);
    mg_runtime_set_budget(rt, 0, 0);
    if (st == MG_OK) {
      successes++;
      continue;
    }
    failures++;
    CHECK(st == MG_ELIMIT);
    mg_value r[6];
    mg_status ok = mg_eval(rt,
      "return mg.executing_eagerly(), require('moongrad.core').tracing(), getmetatable(_ENV) == nil,\n"
      "  BEFORE(mg.ones{2}):sum():item(), mg.func(traced)(mg.ones{2}):sum():item(), K", r, 6);
    CHECK(ok == MG_OK);
    if (ok != MG_OK) {
      fprintf(stderr, "  after a budget of %.0f: %s\n", limit, mg_runtime_errmsg(rt));
      break;
    }
    CHECK(r[0].type == MG_VBOOLEAN && r[0].u.b);
    CHECK(r[1].type == MG_VBOOLEAN && !r[1].u.b);
    CHECK(r[2].type == MG_VBOOLEAN && r[2].u.b);   /* no guard proxy left in the globals */
    CHECK(mg_value_number(&r[3], NULL) == 6 && mg_value_number(&r[4], NULL) == 18);
    CHECK(r[5].type == MG_VINTEGER && r[5].u.i == 1);
  }
  CHECK(failures > 10);    /* the sweep did stop the call at many points */
  CHECK(successes > 0);
  mg_runtime_free(rt);
}

/* ---- the tensor memory limit -------------------------------------------------------------------- */

static long max_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

HOSTILE_TEST(tensor_memory_limit_is_checked_before_allocating, 60) {
  mg_runtime_options o = {0};
  o.tensor_memory_limit = 256u << 20;
  mg_runtime *rt = mg_runtime_new(&o);
  REQUIRE(rt);
  long rss0 = max_rss_kb();
  CHECK(mg_run_string(rt, "local big = mg.zeros{268435456}", NULL) == MG_ELIMIT);   /* 1 GiB of float32 */
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "tensor memory limit of 268435456 bytes exceeded");
  CHECK(max_rss_kb() - rss0 < 200 * 1024);   /* the GiB was never allocated */
  size_t peak = 0;
  mg_runtime_tensor_memory(rt, &peak);
  CHECK(peak <= o.tensor_memory_limit);
  /* a script may catch it, free memory and go on */
  CHECK(eval_number(rt, "local ok = pcall(mg.zeros, {268435456}) local t = mg.zeros{1024} return ok and 1 or 0") == 0);
  mg_runtime_free(rt);
}

HOSTILE_TEST(tensor_memory_limit_counts_graph_buffers_and_workspaces, 60) {
  mg_runtime_options o = {0};
  o.tensor_memory_limit = 128u << 20;
  mg_runtime *rt = mg_runtime_new(&o);
  REQUIRE(rt);
  /* 256 MiB input made by the host (not the runtime's), and a staged graph
   * whose intermediate buffer alone is 256 MiB */
  int64_t shape[1] = {1 << 26};
  mg_tensor *x = NULL;
  REQUIRE(mg_tensor_empty(MG_FLOAT32, 1, shape, &x) == MG_OK);
  mg_value a = mg_vtensor(x);
  CHECK_RT(rt, mg_set_global(rt, "X", &a));
  CHECK(mg_run_string(rt, "local f = mg.func(function(x) return (x * 2):sum() end) f(X)", NULL) == MG_ELIMIT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "tensor memory limit");
  /* a product whose operand is a broadcast view: BLIS needs a 256 MiB packed copy (a
   * workspace), the result is 64 KiB */
  CHECK(mg_run_string(rt, "local a = mg.ones{1, 8192}:expand{8192, 8192} local c = mg.matmul(a, mg.ones{8192, 2})",
                      NULL) == MG_ELIMIT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "matmul: tensor memory limit");
  CHECK_RT(rt, mg_run_string(rt, "X = nil collectgarbage()", NULL));
  size_t peak = 0;
  mg_runtime_tensor_memory(rt, &peak);
  CHECK(peak <= o.tensor_memory_limit);
  mg_runtime_free(rt);
  mg_tensor_release(x);
}

/* ---- files, finalizers, recursion ---------------------------------------------------------------- */

HOSTILE_TEST(load_refuses_a_fifo_without_blocking, 30) {
  char dir[] = "/tmp/mg_fifoXXXXXX";
  REQUIRE(mkdtemp(dir));
  char path[300];
  snprintf(path, sizeof path, "%s/weights.mgw", dir);
  REQUIRE(mkfifo(path, 0600) == 0);
  mg_runtime *rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  mg_value p = mg_vstring(path);
  CHECK_RT(rt, mg_set_global(rt, "P", &p));
  CHECK(mg_run_string(rt, "mg.load(P)", NULL) == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "not a regular file");
  CHECK(mg_run_string(rt, "mg.io.read_file(P)", NULL) == MG_ESCRIPT);
  mg_runtime_free(rt);
  unlink(path);
  rmdir(dir);
}

static int goodbyes;
static mg_status cb_goodbye(mg_runtime *rt, void *ud, const mg_value *args, int nargs, mg_value *res, int *nres) {
  (void)rt, (void)ud, (void)args, (void)nargs, (void)res, (void)nres;
  goodbyes++;
  return MG_OK;
}

HOSTILE_TEST(finalizers_are_bounded_by_the_budget, 60) {
  mg_runtime *rt = limited(0.2, 0);
  REQUIRE(rt);
  CHECK_RT(rt, mg_register(rt, "goodbye", cb_goodbye, NULL));
  /* an ordinary finalizer still runs, during a call and at mg_runtime_free */
  CHECK_RT(rt, mg_run_string(rt, "setmetatable({}, {__gc = function() goodbye() end}) collectgarbage()", NULL));
  CHECK(goodbyes == 1);
  CHECK_RT(rt, mg_run_string(rt, "KEEP = setmetatable({}, {__gc = function() goodbye() end})", NULL));
  /* a looping one stops at the call's budget */
  double t0 = embed_test_now();
  CHECK(mg_run_string(rt, "setmetatable({}, {__gc = function() while true do end end}) collectgarbage()\n"
                          "while true do end", NULL) == MG_ELIMIT);
  CHECK(embed_test_now() - t0 < 3);
  check_usable(rt);
  /* and at mg_runtime_free: the finalizers get one call's budget */
  CHECK_RT(rt, mg_run_string(rt, "LOOP = setmetatable({}, {__gc = function() while true do end end})", NULL));
  t0 = embed_test_now();
  mg_runtime_free(rt);
  CHECK(embed_test_now() - t0 < 3);
  CHECK(goodbyes == 2);
  /* with no budget at all, mg_runtime_free still returns (a default second for finalizers) */
  rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  CHECK_RT(rt, mg_run_string(rt, "LOOP = setmetatable({}, {__gc = function() while true do end end})", NULL));
  t0 = embed_test_now();
  mg_runtime_free(rt);
  CHECK(embed_test_now() - t0 < 5);
}

HOSTILE_TEST(a_staged_function_calling_itself_while_tracing_is_an_error, 120) {
  mg_runtime *rt = limited(0, 0);
  REQUIRE(rt);
  const char *scripts[] = {
    "local f\n"
    "f = mg.func(function(x) return f(x * 2) end, {autograph = false})\n"
    "f(mg.tensor(1.0))",
    "local f\n"
    "f = mg.func(function(x)\n"
    "  if x > 1 then\n"
    "    return f(x - 1) * 2\n"
    "  end\n"
    "  return x\n"
    "end)\n"
    "f(mg.tensor(3.0))",
  };
  for (int i = 0; i < 2; i++) {
    double t0 = embed_test_now();
    CHECK(mg_run_string(rt, scripts[i], NULL) == MG_ESCRIPT);
    CHECK(embed_test_now() - t0 < 20);
    CHECK_CONTAINS(mg_runtime_errmsg(rt), "called itself 50 levels deep while being traced");
    check_usable(rt);
  }
  /* recursion that stops on a Lua value is fine */
  CHECK(eval_number(rt, "local f\n"
                        "f = mg.func(function(x, n) if n == 0 then return x end return f(x, n - 1) * 2 end)\n"
                        "return f(mg.tensor(1.0), 10):item()") == 1024);
  mg_runtime_free(rt);
}
