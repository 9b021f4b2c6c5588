/*
 * test_embed.c — the embedding API (moongrad.h) from a C host's side.
 *
 * Covers: values in and out, ownership and refcounts as the header states
 * them (the suite runs under ASan/LSan in `make asan`, so a leak or a double
 * free fails it), errors and tracebacks, names, references and globals, host
 * callbacks (errors in them, re-entry), hostile scripts (infinite loops, a
 * pcall that swallows the budget error, allocation and tensor bombs,
 * os.exit, deep recursion), the sandbox, a failing allocator at every step of
 * runtime creation, threads with independent runtimes and tensors handed
 * from one runtime (and thread) to another without a copy.
 */
#define EMBED_TEST_MAIN
#include "harness.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static mg_tensor *vec_f32(int n, const float *data) {
  int64_t shape[1] = {n};
  mg_tensor *t = NULL;
  if (mg_tensor_from_data(MG_FLOAT32, 1, shape, data, &t)) return NULL;
  return t;
}

/* ---- basics ------------------------------------------------------------------------- */

TEST(eval_returns_typed_results) {
  mg_runtime *rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  mg_value r[7];
  CHECK_RT(rt, mg_eval(rt, "return 42, 2.5, true, 'a\\0b', nil, {}, mg.ones{2}", r, 7));
  CHECK(r[0].type == MG_VINTEGER && r[0].u.i == 42);
  CHECK(r[1].type == MG_VNUMBER && r[1].u.n == 2.5);
  CHECK(r[2].type == MG_VBOOLEAN && r[2].u.b == 1);
  CHECK(r[3].type == MG_VSTRING && r[3].u.str.len == 3 && memcmp(r[3].u.str.s, "a\0b", 3) == 0);
  CHECK(r[4].type == MG_VNIL);
  CHECK(r[5].type == MG_VOTHER && strcmp(r[5].u.str.s, "table") == 0);
  CHECK(r[6].type == MG_VTENSOR && mg_tensor_numel(r[6].u.t) == 2);
  int ok;
  CHECK(mg_value_number(&r[0], &ok) == 42.0 && ok);
  CHECK(mg_value_number(&r[3], &ok) == 0 && !ok);
  for (int i = 0; i < 7; i++) mg_value_clear(&r[i]);
  CHECK(r[6].type == MG_VNIL);
  mg_value_clear(&r[6]);   /* clearing twice is harmless */
  CHECK(strcmp(mg_runtime_errmsg(rt), "") == 0);
  mg_runtime_free(rt);
}

TEST(missing_results_are_nil_and_extra_ignored) {
  mg_runtime *rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  mg_value r[3] = {mg_vinteger(9), mg_vinteger(9), mg_vinteger(9)};
  CHECK_RT(rt, mg_eval(rt, "return 1", r, 3));
  CHECK(r[0].type == MG_VINTEGER && r[1].type == MG_VNIL && r[2].type == MG_VNIL);
  CHECK_RT(rt, mg_eval(rt, "return 1, 2, 3", r, 1));
  CHECK(r[0].u.i == 1);
  CHECK_RT(rt, mg_eval(rt, "return 1", NULL, 0));
  mg_runtime_free(rt);
}

TEST(invoke_with_every_argument_type) {
  mg_runtime *rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  CHECK_RT(rt, mg_run_string(rt,
    "function describe(...)\n"
    "  local out = {}\n"
    "  for i = 1, select('#', ...) do\n"
    "    local v = select(i, ...)\n"
    "    out[i] = mg.is_tensor(v) and ('tensor' .. table.concat(v.shape, 'x')) or\n"
    "             type(v) == 'string' and ('string#' .. #v) or (math.type(v) or type(v)) .. ':' .. tostring(v)\n"
    "  end\n"
    "  return table.concat(out, ' ')\n"
    "end", "=setup"));
  float d[3] = {1, 2, 3};
  mg_tensor *x = vec_f32(3, d);
  mg_value args[7] = {mg_vnil(), mg_vboolean(0), mg_vinteger(-7), mg_vnumber(0.25), mg_vstring("hi"),
                      mg_vlstring("a\0b", 3), mg_vtensor(x)};
  mg_value r;
  CHECK_RT(rt, mg_invoke(rt, "describe", args, 7, &r, 1));
  REQUIRE(r.type == MG_VSTRING);
  CHECK(strcmp(r.u.str.s, "nil:nil boolean:false integer:-7 float:0.25 string#2 string#3 tensor3") == 0);
  mg_value bad = {.type = (mg_value_type)99};
  CHECK(mg_invoke(rt, "describe", &bad, 1, &r, 1) == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "cannot be passed to Lua");
  mg_value nul = mg_vtensor(NULL);
  CHECK(mg_invoke(rt, "describe", &nul, 1, &r, 1) == MG_ESCRIPT);
  mg_tensor_release(x);
  mg_runtime_free(rt);
}

TEST(tensor_round_trip_keeps_identity_and_data) {
  mg_runtime *rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  CHECK_RT(rt, mg_run_string(rt, "function same(x) return x end function twice(x) return x * 2 end", NULL));
  float d[4] = {1, -2, 3.5f, 4}, out[4];
  mg_tensor *x = vec_f32(4, d);
  mg_value a = mg_vtensor(x), r;
  CHECK_RT(rt, mg_invoke(rt, "same", &a, 1, &r, 1));
  CHECK(r.type == MG_VTENSOR && r.u.t == x);   /* no copy: the very same tensor */
  mg_value_clear(&r);
  CHECK_RT(rt, mg_invoke(rt, "twice", &a, 1, &r, 1));
  REQUIRE(r.type == MG_VTENSOR);
  CHECK(mg_tensor_copy_to(r.u.t, out, sizeof out) == MG_OK);
  CHECK(out[0] == 2 && out[1] == -4 && out[2] == 7 && out[3] == 8);
  mg_value_clear(&r);
  mg_tensor_release(x);
  mg_runtime_free(rt);
}

/* ---- ownership ------------------------------------------------------------------------- */

static int borrow_released;
static void on_release(void *ud, void *data) {
  (void)data;
  borrow_released += *(int *)ud;
}

TEST(borrowed_buffer_released_once_when_last_reference_goes) {
  static float buf[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  int one = 1;
  int64_t shape[2] = {2, 4};
  mg_tensor *t;
  borrow_released = 0;
  REQUIRE(mg_tensor_borrow(MG_FLOAT32, 2, shape, buf, on_release, &one, &t) == MG_OK);
  mg_runtime *rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  CHECK_RT(rt, mg_run_string(rt, "function keep(x) kept = x; return x:sum():item() end", NULL));
  mg_value a = mg_vtensor(t), r;
  CHECK_RT(rt, mg_invoke(rt, "keep", &a, 1, &r, 1));
  CHECK(mg_value_number(&r, NULL) == 36);
  buf[0] = 101;   /* zero-copy: the script sees the host's writes */
  CHECK_RT(rt, mg_eval(rt, "return kept:sum():item()", &r, 1));
  CHECK(mg_value_number(&r, NULL) == 136);
  mg_tensor_release(t);   /* the runtime still holds it */
  CHECK(borrow_released == 0);
  CHECK_RT(rt, mg_eval(rt, "return kept[1][1]:item()", &r, 1));
  CHECK(mg_value_number(&r, NULL) == 101);
  mg_runtime_free(rt);    /* closes the state: the last reference goes */
  CHECK(borrow_released == 1);
  buf[0] = 1;
}

TEST(results_and_globals_are_new_references) {
  mg_runtime *rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  float d[2] = {3, 4};
  mg_tensor *x = vec_f32(2, d);
  mg_value v = mg_vtensor(x), r;
  CHECK_RT(rt, mg_set_global(rt, "w", &v));
  mg_tensor_release(x);   /* the global keeps it alive */
  CHECK_RT(rt, mg_get_global(rt, "w", &r));
  REQUIRE(r.type == MG_VTENSOR);
  mg_runtime_free(rt);    /* the result outlives the runtime */
  float out[2];
  CHECK(mg_tensor_copy_to(r.u.t, out, sizeof out) == MG_OK && out[0] == 3 && out[1] == 4);
  mg_value_clear(&r);
}

/* A counting allocator: every byte the runtime took comes back. */
typedef struct counting {
  long live_blocks;
  size_t live_bytes;
  long calls;
  long fail_after;   /* > 0: the nth allocation and later ones fail */
} counting;

static void *count_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  counting *c = ud;
  if (nsize == 0) {
    if (ptr) {
      c->live_blocks--;
      c->live_bytes -= osize;
      free(ptr);
    }
    return NULL;
  }
  if (nsize > (ptr ? osize : 0) && c->fail_after > 0 && ++c->calls >= c->fail_after) return NULL;
  void *p = realloc(ptr, nsize);
  if (!p) return NULL;
  if (!ptr) c->live_blocks++;
  c->live_bytes = c->live_bytes - (ptr ? osize : 0) + nsize;
  return p;
}

TEST(custom_allocator_gets_everything_back) {
  counting c = {0};
  mg_runtime_options o = {0};
  o.alloc = count_alloc;
  o.alloc_ud = &c;
  mg_runtime *rt = mg_runtime_new(&o);
  REQUIRE(rt);
  CHECK(c.live_blocks > 0);
  size_t peak, used = mg_runtime_memory(rt, &peak);
  CHECK(used > 0 && peak >= used);
  CHECK(c.live_bytes >= used);   /* the runtime struct is the difference */
  CHECK_RT(rt, mg_run_string(rt, "local t = {} for i = 1, 1000 do t[i] = mg.ones{i % 7 + 1} end", NULL));
  mg_runtime_free(rt);
  CHECK(c.live_blocks == 0);
  CHECK(c.live_bytes == 0);
}

TEST(failing_allocator_at_every_step_of_creation) {
  /* Like Lua's ltests memlimit: whichever allocation fails, creation either
   * succeeds or returns NULL with a message; nothing leaks (LSan) or crashes. */
  counting probe = {0};
  mg_runtime_options o = {0};
  o.alloc = count_alloc;
  o.alloc_ud = &probe;
  mg_runtime *rt = mg_runtime_new(&o);
  REQUIRE(rt);
  long total = probe.live_blocks + 64;
  mg_runtime_free(rt);
  int nulls = 0, step = total > 400 ? (int)(total / 400) : 1;
  for (long k = 1; k < total * 2; k += step) {
    counting c = {0};
    c.fail_after = k;
    o.alloc_ud = &c;
    rt = mg_runtime_new(&o);
    if (!rt) {
      nulls++;
      CHECK(mg_last_error()[0] != '\0');
    } else {
      mg_value r;
      mg_status st = mg_eval(rt, "return 1 + 1", &r, 1);
      CHECK(st == MG_OK || st == MG_ENOMEM || st == MG_ESCRIPT);
      mg_runtime_free(rt);
    }
    CHECK(c.live_blocks == 0);
  }
  CHECK(nulls > 0);
}

/* ---- errors ------------------------------------------------------------------------------- */

TEST(script_errors_carry_message_and_traceback) {
  mg_runtime *rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  CHECK(mg_run_string(rt, "local x = = 1", "=bad") == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "bad:1:");
  CHECK(mg_run_string(rt, "function f() error('deep trouble') end\nfunction g() f() end\ng()", "@game.lua") ==
        MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "game.lua:1: deep trouble");
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "stack traceback:");
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "in function 'g'");
  CHECK_CONTAINS(mg_last_error(), "deep trouble");   /* also the thread's engine message */
  CHECK(mg_run_string(rt, "error({code = 1})", NULL) == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "error object is a table value");
  CHECK(mg_run_string(rt, "mg.matmul(mg.ones{2,3}, mg.ones{4,5})", "=ops") == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "matmul");
  CHECK(mg_run_file(rt, "/nonexistent/dir/script.lua") == MG_EIO);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "cannot open");
  mg_value r;
  CHECK_RT(rt, mg_eval(rt, "return 'still fine'", &r, 1));   /* usable after errors */
  CHECK(r.type == MG_VSTRING && strcmp(r.u.str.s, "still fine") == 0);
  CHECK(strcmp(mg_runtime_errmsg(rt), "") == 0);
  mg_runtime_free(rt);
}

TEST(results_are_nil_after_a_failure) {
  mg_runtime *rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  mg_value r[2] = {mg_vinteger(5), mg_vinteger(5)};
  CHECK(mg_eval(rt, "error('x')", r, 2) == MG_ESCRIPT);
  CHECK(r[0].type == MG_VNIL && r[1].type == MG_VNIL);
  mg_runtime_free(rt);
}

TEST(run_file_runs_a_script) {
  char path[] = "/tmp/mg_embed_testXXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  const char *src = "answer = mg.tensor{{1, 2}, {3, 4}}:sum():item()\n";
  CHECK(write(fd, src, strlen(src)) == (ssize_t)strlen(src));
  close(fd);
  mg_runtime *rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  CHECK_RT(rt, mg_run_file(rt, path));
  mg_value r;
  CHECK_RT(rt, mg_get_global(rt, "answer", &r));
  CHECK(r.type == MG_VINTEGER && r.u.i == 10);
  mg_runtime_free(rt);
  unlink(path);
}

/* ---- names, references, globals -------------------------------------------------------- */

TEST(dotted_names_methods_and_modules) {
  mg_runtime *rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  CHECK_RT(rt, mg_run_string(rt,
    "agent = {policy = {}, bias = 10}\n"
    "function agent.policy.act(x) return x + 1 end\n"
    "function agent:act(x) return x + self.bias end", NULL));
  mg_value a = mg_vinteger(1), r;
  CHECK_RT(rt, mg_invoke(rt, "agent.policy.act", &a, 1, &r, 1));
  CHECK(r.u.i == 2);
  CHECK_RT(rt, mg_invoke(rt, "agent:act", &a, 1, &r, 1));
  CHECK(r.u.i == 11);
  /* a loaded module that is not a global */
  CHECK_RT(rt, mg_run_string(rt, "package.loaded.tools = {inc = function(x) return x + 100 end}", NULL));
  CHECK_RT(rt, mg_invoke(rt, "tools.inc", &a, 1, &r, 1));
  CHECK(r.u.i == 101);
  CHECK(mg_invoke(rt, "agent.nothing", &a, 1, &r, 1) == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "'agent.nothing' is not a function (it is nil)");
  CHECK(mg_invoke(rt, "agent.bias.x", &a, 1, &r, 1) == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "'agent.bias' is number, not a table");
  CHECK(mg_invoke(rt, "a:b.c", &a, 1, &r, 1) == MG_ESCRIPT);
  CHECK(mg_invoke(rt, "", &a, 1, &r, 1) == MG_ESCRIPT);
  mg_runtime_free(rt);
}

TEST(lookup_once_call_many) {
  mg_runtime *rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  CHECK_RT(rt, mg_run_string(rt, "n = 0 counter = {k = 2} function counter:step(d) n = n + d * self.k return n end", NULL));
  mg_ref ref;
  CHECK_RT(rt, mg_lookup(rt, "counter:step", &ref));
  CHECK(ref > 0);
  mg_value a = mg_vinteger(3), r = mg_vnil();
  for (int i = 0; i < 100; i++) CHECK_RT(rt, mg_invoke_ref(rt, ref, &a, 1, &r, 1));
  CHECK(r.u.i == 600);
  mg_unref(rt, ref);
  CHECK(mg_invoke_ref(rt, 0, &a, 1, &r, 1) == MG_EARG);
  CHECK(mg_lookup(rt, "counter.missing", &ref) == MG_ESCRIPT && ref == 0);
  mg_runtime_free(rt);
}

TEST(set_and_get_globals_and_fields) {
  mg_runtime *rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  mg_value v = mg_vnumber(1.5), r;
  CHECK_RT(rt, mg_set_global(rt, "speed", &v));
  CHECK_RT(rt, mg_run_string(rt, "cfg = {}", NULL));
  v = mg_vstring("fast");
  CHECK_RT(rt, mg_set_global(rt, "cfg.mode", &v));
  CHECK_RT(rt, mg_eval(rt, "return speed * 2, cfg.mode", NULL, 0));
  CHECK_RT(rt, mg_get_global(rt, "cfg.mode", &r));
  CHECK(r.type == MG_VSTRING && strcmp(r.u.str.s, "fast") == 0);
  CHECK(mg_set_global(rt, "nope.mode", &v) == MG_ESCRIPT);
  CHECK_RT(rt, mg_get_global(rt, "undefined_thing", &r));
  CHECK(r.type == MG_VNIL);
  mg_runtime_free(rt);
}

/* ---- callbacks ---------------------------------------------------------------------------- */

static mg_status cb_add(mg_runtime *rt, void *ud, const mg_value *args, int nargs, mg_value *res, int *nres) {
  (void)rt;
  *(int *)ud += 1;
  if (nargs != 2) return mg_seterror(MG_EARG, "expected 2 arguments, got %d", nargs);
  int ok1, ok2;
  double a = mg_value_number(&args[0], &ok1), b = mg_value_number(&args[1], &ok2);
  if (!ok1 || !ok2) return mg_seterror(MG_EARG, "expected numbers");
  res[0] = mg_vnumber(a + b);
  res[1] = mg_vstring("sum");
  *nres = 2;
  return MG_OK;
}

/* Returns a new tensor (handed over) or fails after making one (no leak either way). */
static mg_status cb_make(mg_runtime *rt, void *ud, const mg_value *args, int nargs, mg_value *res, int *nres) {
  (void)rt;
  (void)ud;
  int64_t shape[1] = {3};
  mg_tensor *t;
  if (mg_tensor_empty(MG_FLOAT32, 1, shape, &t)) return MG_ENOMEM;
  float *p = mg_tensor_data(t);
  p[0] = p[1] = p[2] = 0.5f;
  res[0] = mg_vtensor(t);
  *nres = 1;
  if (nargs > 0 && args[0].type == MG_VBOOLEAN && args[0].u.b)
    return mg_seterror(MG_ESTATE, "asked to fail");
  return MG_OK;
}

/* Reads a tensor argument (borrowed) and calls back into the runtime. */
static mg_status cb_reenter(mg_runtime *rt, void *ud, const mg_value *args, int nargs, mg_value *res, int *nres) {
  (void)ud;
  if (nargs < 1 || args[0].type != MG_VTENSOR) return mg_seterror(MG_EARG, "expected a tensor");
  mg_value a = mg_vtensor(args[0].u.t), r;
  mg_status st = mg_invoke(rt, "lua_side", &a, 1, &r, 1);
  if (st) return mg_seterror(st, "nested call failed: %s", mg_runtime_errmsg(rt));
  res[0] = r;   /* a new reference, handed back to the runtime */
  *nres = 1;
  return MG_OK;
}

TEST(callbacks_receive_and_return_values) {
  mg_runtime *rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  int calls = 0;
  CHECK_RT(rt, mg_register(rt, "host.add", cb_add, &calls));
  CHECK_RT(rt, mg_register(rt, "make", cb_make, NULL));
  mg_value r[3];
  CHECK_RT(rt, mg_eval(rt, "local s, w = host.add(2, 0.5) return s, w, make():sum():item()", r, 3));
  CHECK(r[0].type == MG_VNUMBER && r[0].u.n == 2.5);
  CHECK(r[1].type == MG_VSTRING && strcmp(r[1].u.str.s, "sum") == 0);
  CHECK(mg_value_number(&r[2], NULL) == 1.5);
  CHECK(calls == 1);
  mg_runtime_free(rt);
}

TEST(error_inside_a_callback_becomes_a_lua_error) {
  mg_runtime *rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  int calls = 0;
  CHECK_RT(rt, mg_register(rt, "host.add", cb_add, &calls));
  CHECK_RT(rt, mg_register(rt, "make", cb_make, NULL));
  CHECK(mg_run_string(rt, "host.add(1)", "=cb") == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "host.add: expected 2 arguments, got 1");
  mg_value r[2];
  CHECK_RT(rt, mg_eval(rt, "return pcall(host.add, 'x', {})", r, 2));   /* a script can catch it */
  CHECK(r[0].type == MG_VBOOLEAN && r[0].u.b == 0);
  CHECK(r[1].type == MG_VSTRING && strstr(r[1].u.str.s, "expected numbers"));
  for (int i = 0; i < 50; i++)     /* the tensor made before failing is not leaked (LSan) */
    CHECK(mg_run_string(rt, "make(true)", NULL) == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "make: asked to fail");
  mg_runtime_free(rt);
}

TEST(callbacks_reenter_the_runtime_even_from_coroutines) {
  mg_runtime *rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  CHECK_RT(rt, mg_register(rt, "reenter", cb_reenter, NULL));
  CHECK_RT(rt, mg_run_string(rt,
    "function lua_side(x) if x:sum():item() < 0 then error('negative') end return x * 10 end\n"
    "function via_coroutine(x)\n"
    "  local co = coroutine.wrap(function(v) return reenter(v) end)\n"
    "  return co(x)\n"
    "end", NULL));
  float d[2] = {1, 2}, m[2] = {-1, -2}, out[2];
  mg_tensor *x = vec_f32(2, d), *y = vec_f32(2, m);
  mg_value a = mg_vtensor(x), r;
  CHECK_RT(rt, mg_invoke(rt, "reenter", &a, 1, &r, 1));
  REQUIRE(r.type == MG_VTENSOR);
  CHECK(mg_tensor_copy_to(r.u.t, out, sizeof out) == MG_OK && out[0] == 10 && out[1] == 20);
  mg_value_clear(&r);
  CHECK_RT(rt, mg_invoke(rt, "via_coroutine", &a, 1, &r, 1));
  CHECK(r.type == MG_VTENSOR);
  mg_value_clear(&r);
  a = mg_vtensor(y);   /* the nested call fails: the error travels out through both levels */
  CHECK(mg_invoke(rt, "via_coroutine", &a, 1, &r, 1) == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "nested call failed");
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "negative");
  mg_tensor_release(x);
  mg_tensor_release(y);
  mg_runtime_free(rt);
}

/* ---- hostile scripts ------------------------------------------------------------------------ */

TEST(infinite_loop_hits_the_instruction_budget) {
  mg_runtime_options o = {0};
  o.instruction_limit = 2000000;
  mg_runtime *rt = mg_runtime_new(&o);
  REQUIRE(rt);
  double t0 = now();
  CHECK(mg_run_string(rt, "while true do end", "=loop") == MG_ELIMIT);
  CHECK(now() - t0 < 5);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "instruction budget of 2000000 exceeded");
  /* a pcall that swallows the error and loops again cannot keep it */
  CHECK(mg_run_string(rt, "while true do pcall(function() while true do end end) end", NULL) == MG_ELIMIT);
  CHECK(mg_run_string(rt,
    "while true do\n"
    "  local co = coroutine.create(function() while true do end end)\n"
    "  coroutine.resume(co)\n"
    "end", NULL) == MG_ELIMIT);
  /* the budget error runs message handlers with hooks off: a looping handler is skipped */
  CHECK(mg_run_string(rt, "local ok = xpcall(function() while true do end end, function() while true do end end)\n"
                          "while true do end", NULL) == MG_ELIMIT);
  mg_value h;
  CHECK_RT(rt, mg_eval(rt, "return select(2, xpcall(error, function(m) return 'handled ' .. m end, 'x'))", &h, 1));
  CHECK(h.type == MG_VSTRING && strcmp(h.u.str.s, "handled x") == 0);
  /* each call gets a fresh budget: ordinary work still runs */
  mg_value r;
  CHECK_RT(rt, mg_eval(rt, "local s = 0 for i = 1, 100000 do s = s + i end return s", &r, 1));
  CHECK(r.u.i == 5000050000LL);
  mg_runtime_free(rt);
}

TEST(budget_off_by_default_and_settable) {
  mg_runtime *rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  CHECK_RT(rt, mg_run_string(rt, "local s = 0 for i = 1, 3000000 do s = s + i end", NULL));
  mg_runtime_set_budget(rt, 100000, 0);
  CHECK(mg_run_string(rt, "local s = 0 for i = 1, 3000000 do s = s + i end", NULL) == MG_ELIMIT);
  mg_runtime_set_budget(rt, 0, 0);
  CHECK_RT(rt, mg_run_string(rt, "local s = 0 for i = 1, 3000000 do s = s + i end", NULL));
  mg_runtime_free(rt);
}

TEST(time_budget_stops_a_runaway_script) {
  mg_runtime_options o = {0};
  o.time_limit = 0.05;
  mg_runtime *rt = mg_runtime_new(&o);
  REQUIRE(rt);
  double t0 = now();
  CHECK(mg_run_string(rt, "local x = 0 while true do x = x + 1 end", NULL) == MG_ELIMIT);
  double dt = now() - t0;
  CHECK(dt >= 0.05 && dt < 2);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "time budget");
  mg_runtime_free(rt);
}

TEST(allocation_bomb_hits_the_memory_limit) {
  mg_runtime_options o = {0};
  o.memory_limit = 16u << 20;
  mg_runtime *rt = mg_runtime_new(&o);
  REQUIRE(rt);
  CHECK(mg_run_string(rt, "local t = {} while true do t[#t + 1] = string.rep('x', 100000) .. #t end", NULL) ==
        MG_ELIMIT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "memory limit of 16777216 bytes");
  size_t peak;
  mg_runtime_memory(rt, &peak);
  CHECK(peak <= o.memory_limit);
  CHECK(mg_run_string(rt, "local s = string.rep('y', 1 << 30)", NULL) == MG_ELIMIT);
  CHECK(mg_run_string(rt, "local t = {} for i = 1, 1e9 do t[i] = i end", NULL) == MG_ELIMIT);
  /* the garbage goes and the runtime works again */
  mg_value r;
  CHECK_RT(rt, mg_eval(rt, "collectgarbage() return collectgarbage('count') * 1024", &r, 1));
  CHECK(mg_value_number(&r, NULL) < 4 << 20);
  CHECK_RT(rt, mg_eval(rt, "return mg.ones{4, 4}:sum():item()", &r, 1));
  CHECK(mg_value_number(&r, NULL) == 16);
  /* a script may catch the error itself and go on */
  CHECK_RT(rt, mg_eval(rt, "local ok, e = pcall(string.rep, 'z', 1 << 30) return ok, e", &r, 1));
  CHECK(r.type == MG_VBOOLEAN && !r.u.b);
  mg_runtime_free(rt);
}

TEST(tensor_bomb_hits_the_tensor_memory_limit) {
  mg_runtime_options o = {0};
  o.tensor_memory_limit = 64u << 20;
  mg_runtime *rt = mg_runtime_new(&o);
  REQUIRE(rt);
  int64_t before = mg_storage_bytes_live();
  CHECK(mg_run_string(rt, "local keep = {} for i = 1, 100000 do keep[i] = mg.zeros{256, 1024} end", NULL) ==
        MG_ELIMIT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "tensor memory limit");
  CHECK(mg_storage_bytes_live() - before <= (64 << 20) + (1 << 20) + (2 << 20));
  /* garbage tensors alone do not trip it: they are collected first */
  CHECK_RT(rt, mg_run_string(rt, "for i = 1, 200 do local t = mg.zeros{256, 1024} end", NULL));
  mg_runtime_free(rt);
  CHECK(mg_storage_bytes_live() == before);
}

TEST(os_exit_never_ends_the_host) {
  mg_runtime_options o = {0};
  o.sandbox = 1;
  mg_runtime *sb = mg_runtime_new(&o);
  mg_runtime *plain = mg_runtime_new(NULL);
  REQUIRE(sb && plain);
  CHECK(mg_run_string(sb, "os.exit(3)", NULL) == MG_ESCRIPT);
  CHECK(mg_run_string(plain, "os.exit(3)", NULL) == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(plain), "os.exit is not allowed");
  CHECK(mg_run_string(plain, "os.exit(true, true)", NULL) == MG_ESCRIPT);
  mg_runtime_free(sb);
  mg_runtime_free(plain);
}

TEST(deep_recursion_is_an_error) {
  mg_runtime *rt = mg_runtime_new(NULL);
  REQUIRE(rt);
  CHECK(mg_run_string(rt, "local function f(n) return 1 + f(n + 1) end f(1)", NULL) == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "stack overflow");
  CHECK(mg_run_string(rt, "local t = setmetatable({}, {__index = function(t, k) return t[k] end}) return t.x",
                      NULL) == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "stack overflow");
  CHECK(mg_run_string(rt, "local s = string.rep('(', 100000) .. string.rep(')', 100000) load('return ' .. s)()",
                      NULL) == MG_ESCRIPT);
  CHECK(mg_run_string(rt, "local function f() return pcall(f) end f()", NULL) == MG_OK ||
        mg_runtime_errmsg(rt)[0] != '\0');
  mg_value r;
  CHECK_RT(rt, mg_eval(rt, "return 7", &r, 1));
  mg_runtime_free(rt);
}

/* ---- sandbox ---------------------------------------------------------------------------------- */

TEST(sandbox_hides_io_os_debug_and_c_modules) {
  mg_runtime_options o = {0};
  o.sandbox = 1;
  mg_runtime *rt = mg_runtime_new(&o);
  REQUIRE(rt);
  mg_value r[8];
  CHECK_RT(rt, mg_eval(rt,
    "return io, os.execute, os.getenv, loadfile, dofile, package.loadlib, require('os').remove,\n"
    "  debug.sethook", r, 8));
  for (int i = 0; i < 8; i++) CHECK(r[i].type == MG_VNIL);
  CHECK_RT(rt, mg_eval(rt, "return type(os.clock()), type(debug.traceback), mg.ones{2}:sum():item(),"
                           " require('moongrad') == mg", r, 4));
  CHECK(r[0].type == MG_VSTRING && strcmp(r[0].u.str.s, "number") == 0);
  CHECK(mg_value_number(&r[2], NULL) == 2);
  CHECK(r[3].type == MG_VBOOLEAN && r[3].u.b);
  /* the built-in library keeps what it needs: mg.func (guards and AutoGraph read upvalues) works */
  CHECK_RT(rt, mg_eval(rt, "local k = 3\n"
                           "local f = mg.func(function(x) return mg.where(mg.greater(mg.sum(x), 0), x * k, -x) end)\n"
                           "return f(mg.ones{3}):sum():item(), f(-mg.ones{3}):sum():item(), debug.getupvalue", r, 3));
  CHECK(mg_value_number(&r[0], NULL) == 9 && mg_value_number(&r[1], NULL) == 3 && r[2].type == MG_VNIL);
  CHECK_RT(rt, mg_run_string(rt, "local g = mg.func(function(x) return x + 1 end) g(mg.ones{2})", "=no_source"));
  CHECK(mg_run_string(rt, "require 'io'", NULL) == MG_ESCRIPT);
  CHECK(mg_run_string(rt, "require 'lfs'", NULL) == MG_ESCRIPT);
  CHECK(mg_run_string(rt, "require '../../etc/passwd'", NULL) == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "not allowed in the sandbox");
  /* binary chunks are refused; text chunks load */
  CHECK_RT(rt, mg_eval(rt, "return load(string.dump(function() return 1 end))", r, 2));
  CHECK(r[0].type == MG_VNIL && r[1].type == MG_VSTRING && strstr(r[1].u.str.s, "binary"));
  /* finalisers run with hooks off, so the sandbox refuses __gc on tables */
  CHECK(mg_run_string(rt, "setmetatable({}, {__gc = function() while true do end end})", NULL) == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "__gc metamethods are not allowed");
  CHECK_RT(rt, mg_eval(rt, "return getmetatable(setmetatable({}, {__index = {v = 9}})).__index.v", r, 1));
  CHECK(r[0].u.i == 9);
  CHECK_RT(rt, mg_eval(rt, "return load('return 5')()", r, 1));
  CHECK(r[0].u.i == 5);
  CHECK_RT(rt, mg_eval(rt, "local env = {x = 3} return load('return x', 'c', 't', env)()", r, 1));
  CHECK(r[0].u.i == 3);
  mg_runtime_free(rt);
}

TEST(sandbox_requires_modules_from_the_allowed_directory_only) {
  char dir[] = "/tmp/mg_embed_dirXXXXXX";
  REQUIRE(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/helper.lua", dir);
  FILE *f = fopen(path, "w");
  REQUIRE(f);
  fputs("return {answer = function() return 41 + 1 end}\n", f);
  fclose(f);
  mg_runtime_options o = {0};
  o.sandbox = 1;
  o.allowed_dir = dir;
  mg_runtime *rt = mg_runtime_new(&o);
  o.allowed_dir = NULL;
  mg_runtime *closed = mg_runtime_new(&o);
  REQUIRE(rt && closed);
  mg_value r;
  CHECK_RT(rt, mg_eval(rt, "return require('helper').answer()", &r, 1));
  CHECK(r.type == MG_VINTEGER && r.u.i == 42);
  CHECK(mg_run_string(closed, "require('helper')", NULL) == MG_ESCRIPT);
  mg_runtime_free(rt);
  mg_runtime_free(closed);
  unlink(path);
  rmdir(dir);
}

/* ---- the sandbox and the file functions of mg ------------------------------------------------
 * Every engine file function (mg.save/load, mg.io.*, and model saving,
 * checkpoints, CSV, plot_model and the IDX reader built on them or on the
 * library's checked io.open) must keep to allowed_dir; `..`, links and
 * relative paths that lead out are refused; programs never run. */

static const char sandbox_files_script[] =
  "local D, O, OUTNAME = D, O, OUTNAME\n"
  "local function refused(what, f, ...)\n"
  "  local ok, err = pcall(f, ...)\n"
  "  assert(not ok, what .. ': was not refused')\n"
  "  err = tostring(err)\n"
  "  assert(err:find(\"outside the sandbox's allowed directory\", 1, true), what .. ': wrong message: ' .. err)\n"
  "  return err\n"
  "end\n"
  "-- mg.io inside the directory\n"
  "mg.io.write_file_atomic(D .. '/a.txt', 'hello')\n"
  "assert(mg.io.read_file(D .. '/a.txt') == 'hello')\n"
  "assert(mg.io.exists(D .. '/a.txt') and not mg.io.isdir(D .. '/a.txt'))\n"
  "mg.io.mkdir(D .. '/sub/deep', {parents = true})\n"
  "mg.io.mkdir(D .. '/sub/deep/../other')\n"
  "assert(mg.io.isdir(D .. '/sub/deep') and mg.io.isdir(D .. '/sub/other'))\n"
  "mg.io.rename(D .. '/a.txt', D .. '/sub/b.txt')\n"
  "assert(table.concat(mg.io.listdir(D .. '/sub'), ' ') == 'b.txt deep other')\n"
  "assert(mg.io.read_file(D .. '/link_in') == 'inside')\n"
  "mg.io.remove(D .. '/sub/b.txt')\n"
  "mg.io.remove_tree(D .. '/sub')\n"
  "assert(not mg.io.exists(D .. '/sub'))\n"
  "-- mg.io outside: every function, with its name and the path in the message\n"
  "local e = refused('write_file_atomic', mg.io.write_file_atomic, O .. '/x.txt', 'x')\n"
  "assert(e:find('mg.io.write_file_atomic', 1, true) and e:find(O .. '/x.txt', 1, true), e)\n"
  "e = refused('read_file', mg.io.read_file, O .. '/secret.txt')\n"
  "assert(e:find('mg.io.read_file', 1, true), e)\n"
  "assert(refused('exists', mg.io.exists, O .. '/secret.txt'):find('mg.io.exists', 1, true))\n"
  "assert(refused('isdir', mg.io.isdir, O):find('mg.io.isdir', 1, true))\n"
  "refused('mkdir', mg.io.mkdir, O .. '/newdir')\n"
  "refused('mkdir parents', mg.io.mkdir, O .. '/newdir/a/b', {parents = true})\n"
  "refused('listdir', mg.io.listdir, O)\n"
  "refused('remove', mg.io.remove, O .. '/secret.txt')\n"
  "refused('remove_tree', mg.io.remove_tree, O)\n"
  "mg.io.write_file_atomic(D .. '/mine.txt', 'm')\n"
  "refused('rename from outside', mg.io.rename, O .. '/secret.txt', D .. '/stolen.txt')\n"
  "refused('rename to outside', mg.io.rename, D .. '/mine.txt', O .. '/planted.txt')\n"
  "-- escapes: .., links, relative paths, the directory itself\n"
  "refused('..', mg.io.read_file, D .. '/../' .. OUTNAME .. '/secret.txt')\n"
  "refused('.. write', mg.io.write_file_atomic, D .. '/../' .. OUTNAME .. '/x.txt', 'x')\n"
  "refused('.. after a missing dir', mg.io.mkdir, D .. '/nothere/../../' .. OUTNAME .. '/x', {parents = true})\n"
  "refused('link to a dir', mg.io.read_file, D .. '/link_out/secret.txt')\n"
  "refused('write through a link', mg.io.write_file_atomic, D .. '/link_out/x.txt', 'x')\n"
  "refused('listdir through a link', mg.io.listdir, D .. '/link_out')\n"
  "refused('link to a file', mg.io.read_file, D .. '/link_file')\n"
  "refused('dangling link', mg.io.write_file_atomic, D .. '/dangling/x.txt', 'x')\n"
  "refused('relative', mg.io.read_file, 'tests/embed/run.sh')\n"
  "refused('remove_tree of the directory', mg.io.remove_tree, D)\n"
  "refused('rename of the directory', mg.io.rename, D, D .. '/moved')\n"
  "mg.io.remove(D .. '/link_file')   -- a link is removed as a link: its target stays\n"
  "-- safetensors\n"
  "mg.save(D .. '/t.safetensors', {w = mg.ones{2, 3}})\n"
  "assert(mg.load(D .. '/t.safetensors').w:sum():item() == 6)\n"
  "assert(refused('mg.save', mg.save, O .. '/t.safetensors', {w = mg.ones{2}}):find('mg.save', 1, true))\n"
  "assert(refused('mg.load', mg.load, O .. '/t.safetensors'):find('mg.load', 1, true))\n"
  "refused('mg.load through a link', mg.load, D .. '/link_out/t.safetensors')\n"
  "-- models: save/load_model, save_weights/load_weights\n"
  "local nn = mg.nn\n"
  "local function make() return nn.Sequential{nn.Input{shape = {3}}, nn.Dense(2)} end\n"
  "local m = make()\n"
  "m:save_weights(D .. '/w.safetensors')\n"
  "local m2 = make()\n"
  "m2:load_weights(D .. '/w.safetensors')\n"
  "assert(mg.max(mg.abs(m(mg.ones{1, 3}) - m2(mg.ones{1, 3}))):item() == 0)\n"
  "refused('save_weights', m.save_weights, m, O .. '/w.safetensors')\n"
  "refused('load_weights', m2.load_weights, m2, O .. '/t.safetensors')\n"
  "m:save(D .. '/model')\n"
  "-- load_model reads its JSON with the engine's cJSON: no C module to load in the sandbox\n"
  "local m3 = nn.load_model(D .. '/model')\n"
  "assert(mg.max(mg.abs(m(mg.ones{1, 3}) - m3(mg.ones{1, 3}))):item() == 0)\n"
  "assert(mg.io.read_file(D .. '/model/config.json'):find('Sequential', 1, true))\n"
  "refused('model:save', m.save, m, O .. '/model')\n"
  "refused('load_model', nn.load_model, O .. '/model')\n"
  "refused('model:save via ..', m.save, m, D .. '/../' .. OUTNAME .. '/model')\n"
  "-- checkpoints\n"
  "local ck = mg.train.Checkpoint{model = m}\n"
  "mg.io.mkdir(D .. '/ck')\n"
  "local p = ck:save(D .. '/ck/ckpt')\n"
  "ck:restore(p)\n"
  "local mgr = mg.train.CheckpointManager(ck, D .. '/ckm', {max_to_keep = 1})\n"
  "mgr:save() mgr:save()\n"
  "refused('Checkpoint:save', ck.save, ck, O .. '/ckpt')\n"
  "refused('Checkpoint:write', ck.write, ck, O .. '/ckpt')\n"
  "refused('CheckpointManager', mg.train.CheckpointManager, ck, O .. '/ckm')\n"
  "-- CSV (the library's checked io.open)\n"
  "mg.io.write_file_atomic(D .. '/d.csv', 'x,label\\n1.5,1\\n2.5,0\\n')\n"
  "assert(mg.io.read_csv(D .. '/d.csv').x:sum():item() == 4)\n"
  "local ds = mg.data.experimental.make_csv_dataset(D .. '/d.csv', {batch_size = 2, label_name = 'label',\n"
  "  num_epochs = 1, shuffle = false})\n"
  "for f, l in ds:iter() do assert(l:sum():item() == 1) end\n"
  "assert(refused('read_csv', mg.io.read_csv, O .. '/d.csv'):find('io.open', 1, true))\n"
  "refused('make_csv_dataset', mg.data.experimental.make_csv_dataset, O .. '/d.csv', {batch_size = 1})\n"
  "refused('read_csv through a link', mg.io.read_csv, D .. '/link_out/d.csv')\n"
  "-- plot_model: DOT text inside works; no program runs (dot)\n"
  "nn.plot_model(m, D .. '/m.dot')\n"
  "assert(mg.io.read_file(D .. '/m.dot'):find('digraph', 1, true))\n"
  "refused('plot_model', nn.plot_model, m, O .. '/m.dot')\n"
  "local ok, perr = pcall(nn.plot_model, m, D .. '/m.png')\n"
  "assert(not ok and perr:find('io.popen: running programs is not allowed in the sandbox', 1, true), perr)\n"
  "-- IDX data sets: .gz is decompressed in process (zlib, no gzip program); outside files are refused\n"
  "mg.io.mkdir(D .. '/fm')\n"
  "mg.io.write_file_atomic(D .. '/fm/t10k-labels-idx1-ubyte.gz', 'not really gzip')\n"
  "ok, perr = pcall(mg.datasets.idx.read_bytes, D .. '/fm/t10k-labels-idx1-ubyte.gz')\n"
  "assert(not ok and perr:find('is not a gzip file', 1, true), perr)\n"
  "refused('fashion_mnist', mg.datasets.fashion_mnist.load_data, {path = O})\n"
  "refused('idx', mg.datasets.idx.read_bytes, O .. '/secret.txt')\n"
  "-- mg.data: text_line, list_files and Dataset.save/load keep to the directory (O/ds is a dataset the host saved)\n"
  "local DS = mg.data.Dataset\n"
  "mg.io.write_file_atomic(D .. '/lines.txt', 'a\\nb\\n')\n"
  "local got = {}\n"
  "for l in DS.text_line(D .. '/lines.txt'):iter() do got[#got + 1] = l end\n"
  "assert(table.concat(got, ',') == 'a,b')\n"
  "assert(DS.list_files(D .. '/lines.*', {shuffle = false}):as_table()[1] == D .. '/lines.txt')\n"
  "assert(#DS.text_line(DS.list_files(D .. '/*.txt', {seed = 1})):as_table() >= 2)\n"
  "DS.range(3):save(D .. '/saved_ds')\n"
  "assert(#DS.load(D .. '/saved_ds'):as_table() == 3)\n"
  "refused('text_line', DS.text_line, O .. '/secret.txt')\n"
  "refused('text_line gzip', DS.text_line, O .. '/secret.txt', {compression_type = 'GZIP'})\n"
  "refused('text_line through a link', DS.text_line, D .. '/link_out/secret.txt')\n"
  "refused('text_line via ..', DS.text_line, D .. '/../' .. OUTNAME .. '/secret.txt')\n"
  "refused('text_line relative', DS.text_line, 'tests/embed/run.sh')\n"
  "refused('text_line of a dataset of names', function() return DS.text_line(DS.from_tensors(O .. '/secret.txt')):as_table() end)\n"
  "refused('list_files', DS.list_files, O .. '/*.txt')\n"
  "refused('list_files literal', DS.list_files, O .. '/secret.txt')\n"
  "refused('list_files through a link', DS.list_files, D .. '/link_out/*')\n"
  "refused('list_files via ..', DS.list_files, D .. '/../' .. OUTNAME .. '/*')\n"
  "refused('Dataset.load', DS.load, O .. '/ds')\n"
  "refused('Dataset.load through a link', DS.load, D .. '/link_out/ds')\n"
  "refused('Dataset:save', DS.range(2).save, DS.range(2), O .. '/ds2')\n"
  "refused('Dataset:save via ..', DS.range(2).save, DS.range(2), D .. '/../' .. OUTNAME .. '/ds2')\n";

/* A host callback runs with the host's rights, not the sandbox's. */
static mg_status write_outside_cb(mg_runtime *rt, void *ud, const mg_value *args, int nargs, mg_value *res,
                                  int *nres) {
  (void)rt, (void)args, (void)nargs, (void)res;
  *nres = 0;
  return mg_write_file_atomic((const char *)ud, "host", 4);
}

static void write_text(const char *dir, const char *name, const char *text) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

static int file_exists_at(const char *dir, const char *name) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return access(p, F_OK) == 0;
}

static void remove_all(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "  could not remove %s\n", dir);
}

TEST(sandbox_confines_every_file_function_to_the_allowed_directory) {
  char dir[] = "/tmp/mg_embed_sbXXXXXX", out[] = "/tmp/mg_embed_outXXXXXX";
  REQUIRE(mkdtemp(dir) && mkdtemp(out));
  char p[512], q[512];
  write_text(out, "secret.txt", "secret");
  write_text(dir, "inside.txt", "inside");
  snprintf(p, sizeof p, "%s/link_out", dir);
  CHECK(symlink(out, p) == 0);
  snprintf(p, sizeof p, "%s/link_file", dir);
  snprintf(q, sizeof q, "%s/secret.txt", out);
  CHECK(symlink(q, p) == 0);
  snprintf(p, sizeof p, "%s/link_in", dir);
  CHECK(symlink("inside.txt", p) == 0);
  snprintf(p, sizeof p, "%s/dangling", dir);
  snprintf(q, sizeof q, "%s/made_by_link", out);
  CHECK(symlink(q, p) == 0);
  mg_runtime_options o = {0};
  o.sandbox = 1;
  o.allowed_dir = dir;
  mg_runtime *rt = mg_runtime_new(&o);
  mg_runtime *plain = mg_runtime_new(NULL);
  REQUIRE(rt && plain);
  mg_value v = mg_vstring(dir);
  CHECK_RT(rt, mg_set_global(rt, "D", &v));
  v = mg_vstring(out);
  CHECK_RT(rt, mg_set_global(rt, "O", &v));
  v = mg_vstring(strrchr(out, '/') + 1);
  CHECK_RT(rt, mg_set_global(rt, "OUTNAME", &v));
  v = mg_vstring(out);
  CHECK_RT(plain, mg_set_global(plain, "O", &v));
  CHECK_RT(plain, mg_run_string(plain, "mg.data.Dataset.range(2):save(O .. '/ds')", NULL));
  CHECK_RT(rt, mg_run_string(rt, sandbox_files_script, "=sandbox_files"));
  /* nothing appeared outside, nothing there was removed */
  const char *const unexpected[] = {"x.txt", "newdir", "planted.txt", "t.safetensors", "w.safetensors", "model",
                                    "ckpt", "ckm", "m.dot", "made_by_link", "ds2", NULL};
  for (const char *const *u = unexpected; *u; u++) {
    if (file_exists_at(out, *u)) fprintf(stderr, "  %s/%s was written\n", out, *u);
    CHECK(!file_exists_at(out, *u));
  }
  CHECK(file_exists_at(out, "secret.txt") && !file_exists_at(dir, "stolen.txt"));
  CHECK(!file_exists_at(dir, "link_file") && file_exists_at(dir, "mine.txt"));
  /* the host's own code is not sandboxed: a callback and another runtime write where they like */
  snprintf(q, sizeof q, "%s/by_host.txt", out);
  CHECK_RT(rt, mg_register(rt, "host_write", write_outside_cb, q));
  CHECK_RT(rt, mg_run_string(rt, "host_write()", NULL));
  CHECK(file_exists_at(out, "by_host.txt"));
  v = mg_vstring(out);
  CHECK_RT(plain, mg_set_global(plain, "O", &v));
  CHECK_RT(plain, mg_run_string(plain, "mg.io.write_file_atomic(O .. '/plain.txt', 'ok')", NULL));
  CHECK(file_exists_at(out, "plain.txt"));
  CHECK(mg_write_file_atomic(q, "x", 1) == MG_OK);   /* and after the calls, the thread has no policy */
  /* the message names the function and the path */
  CHECK(mg_run_string(rt, "mg.save(O .. '/z.safetensors', {w = mg.ones{1}})", NULL) == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "mg.save: '");
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "/z.safetensors' is outside the sandbox's allowed directory");
  mg_runtime_free(rt);
  mg_runtime_free(plain);
  remove_all(dir);
  remove_all(out);
}

TEST(sandbox_without_a_directory_has_no_file_access) {
  mg_runtime_options o = {0};
  o.sandbox = 1;
  mg_runtime *rt = mg_runtime_new(&o);
  REQUIRE(rt);
  static const char *const calls[] = {
      "mg.io.write_file_atomic('/tmp/mg_embed_nodir.txt', 'x')", "mg.io.read_file('/etc/hostname')",
      "mg.io.exists('/etc')", "mg.io.isdir('/etc')", "mg.io.mkdir('/tmp/mg_embed_nodir')",
      "mg.io.listdir('/tmp')", "mg.io.remove('/tmp/mg_embed_nodir.txt')", "mg.io.remove_tree('/tmp/mg_embed_nodir')",
      "mg.io.rename('/tmp/a', '/tmp/b')", "mg.save('/tmp/mg_embed_nodir.st', {w = mg.ones{1}})",
      "mg.load('x.safetensors')", "mg.io.read_csv('x.csv')",
      "mg.nn.Sequential{mg.nn.Input{shape = {2}}, mg.nn.Dense(1)}:save_weights('w.st')",
      "mg.nn.plot_model(mg.nn.Sequential{mg.nn.Input{shape = {2}}, mg.nn.Dense(1)}, 'm.dot')",
      "mg.datasets.fashion_mnist.load_data()", "mg.data.Dataset.text_line('/etc/hostname')",
      "mg.data.Dataset.list_files('/etc/*')", "mg.data.Dataset.load('/tmp')",
      "mg.data.Dataset.range(2):save('/tmp/mg_embed_nodir_ds')", NULL};
  for (const char *const *c = calls; *c; c++) {
    CHECK(mg_run_string(rt, *c, NULL) == MG_ESCRIPT);
    if (!strstr(mg_runtime_errmsg(rt), "outside the sandbox's allowed directory (the host allowed none"))
      fprintf(stderr, "  %s: %s\n", *c, mg_runtime_errmsg(rt));
    CHECK_CONTAINS(mg_runtime_errmsg(rt), "outside the sandbox's allowed directory (the host allowed none");
  }
  CHECK(access("/tmp/mg_embed_nodir.txt", F_OK) != 0 && access("/tmp/mg_embed_nodir", F_OK) != 0);
  mg_runtime_free(rt);
  /* an allowed_dir that is not a directory is refused at creation */
  o.allowed_dir = "/nonexistent/mg_embed";
  CHECK(mg_runtime_new(&o) == NULL);
  CHECK_CONTAINS(mg_last_error(), "allowed_dir '/nonexistent/mg_embed'");
}

static char printed[256];
static void capture_print(void *ud, const char *s, size_t len) {
  (void)ud;
  snprintf(printed, sizeof printed, "%.*s", (int)len, s);
}

TEST(print_goes_to_the_host) {
  mg_runtime_options o = {0};
  o.print = capture_print;
  mg_runtime *rt = mg_runtime_new(&o);
  REQUIRE(rt);
  CHECK_RT(rt, mg_run_string(rt, "print('score', 3, mg.tensor{1, 2})", NULL));
  CHECK_CONTAINS(printed, "score\t3\ttensor([1, 2]");
  mg_runtime_free(rt);
}

TEST(module_path_and_no_stdlib_options) {
  char dir[] = "/tmp/mg_embed_modXXXXXX";
  REQUIRE(mkdtemp(dir));
  char path[256], mp[300];
  snprintf(path, sizeof path, "%s/extra.lua", dir);
  FILE *f = fopen(path, "w");
  REQUIRE(f);
  fputs("return 'extra loaded'\n", f);
  fclose(f);
  snprintf(mp, sizeof mp, "%s/?.lua", dir);
  mg_runtime_options o = {0};
  o.module_path = mp;
  o.no_stdlib = 1;
  o.seed = 7;
  mg_runtime *rt = mg_runtime_new(&o);
  REQUIRE(rt);
  mg_value r[2];
  CHECK_RT(rt, mg_eval(rt, "return require('extra'), mg", r, 2));
  CHECK(r[0].type == MG_VSTRING && strcmp(r[0].u.str.s, "extra loaded") == 0);
  CHECK(r[1].type == MG_VNIL);   /* no_stdlib: no global mg, but require works */
  CHECK_RT(rt, mg_eval(rt, "return require('moongrad').ones{3}:sum():item()", r, 1));
  CHECK(mg_value_number(&r[0], NULL) == 3);
  CHECK_RT(rt, mg_eval(rt, "return #require('moongrad.embedded').source('moongrad') > 100", r, 1));
  CHECK(r[0].type == MG_VBOOLEAN && r[0].u.b);
  mg_runtime_free(rt);
  unlink(path);
  rmdir(dir);
}

TEST(same_seed_same_numbers) {
  mg_runtime_options o = {0};
  o.seed = 1234;
  mg_runtime *a = mg_runtime_new(&o), *b = mg_runtime_new(&o);
  REQUIRE(a && b);
  mg_value ra, rb;
  CHECK_RT(a, mg_eval(a, "return mg.random.normal({8}):sum():item()", &ra, 1));
  CHECK_RT(b, mg_eval(b, "return mg.random.normal({8}):sum():item()", &rb, 1));
  CHECK(ra.u.n == rb.u.n);
  mg_runtime_free(a);
  mg_runtime_free(b);
}

/* ---- threads and hand-off ------------------------------------------------------------------ */

#define NTHREADS 4

typedef struct worker {
  int id;
  double result;
  int failed;
} worker;

/* Each thread: its own runtime, a small gradient-descent fit of y = 3x + id. */
static void *thread_train(void *p) {
  worker *w = p;
  mg_runtime_options o = {0};
  o.seed = (uint64_t)w->id + 1;
  mg_runtime *rt = mg_runtime_new(&o);
  if (!rt) {
    w->failed = 1;
    return NULL;
  }
  mg_value a = mg_vinteger(w->id), r;
  if (mg_run_string(rt,
        "function fit(b)\n"
        "  local x = mg.linspace(-1, 1, 64)\n"
        "  local y = x * 3 + b\n"
        "  local w, c = mg.Variable(0.0), mg.Variable(0.0)\n"
        "  for step = 1, 200 do\n"
        "    local tape = mg.GradientTape()\n"
        "    local loss = mg.mean(mg.square(x * w + c - y))\n"
        "    tape:stop()\n"
        "    local g = tape:gradient(loss, {w, c})\n"
        "    w:assign_sub(g[1] * 0.5) c:assign_sub(g[2] * 0.5)\n"
        "  end\n"
        "  return c:read():item()\n"
        "end", NULL) ||
      mg_invoke(rt, "fit", &a, 1, &r, 1)) {
    fprintf(stderr, "  thread %d: %s\n", w->id, mg_runtime_errmsg(rt));
    w->failed = 1;
  } else {
    w->result = mg_value_number(&r, NULL);
  }
  mg_runtime_free(rt);
  mg_thread_cache_drain();
  return NULL;
}

TEST(threads_run_independent_runtimes) {
  pthread_t th[NTHREADS];
  worker w[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    w[i] = (worker){.id = i};
    REQUIRE(pthread_create(&th[i], NULL, thread_train, &w[i]) == 0);
  }
  for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < NTHREADS; i++) {
    CHECK(!w[i].failed);
    CHECK(fabs(w[i].result - i) < 1e-3);
  }
}

typedef struct handoff {
  mg_tensor *t;     /* in: the tensor to consume (a reference this thread owns) */
  const void *seen; /* out: the data address the consumer's script saw */
  double sum;
  int failed;
} handoff;

static void *thread_consume(void *p) {
  handoff *h = p;
  mg_runtime *rt = mg_runtime_new(NULL);
  mg_value a = mg_vtensor(h->t), r[2];
  if (!rt || mg_run_string(rt, "function use(x) held = x return x:sum():item(), x end", NULL) ||
      mg_invoke(rt, "use", &a, 1, r, 2)) {
    h->failed = 1;
  } else {
    h->sum = mg_value_number(&r[0], NULL);
    h->seen = r[1].type == MG_VTENSOR ? mg_tensor_data(r[1].u.t) : NULL;
    mg_value_clear(&r[1]);
  }
  mg_tensor_release(h->t);   /* this thread's reference; the runtime may still hold one */
  mg_runtime_free(rt);
  mg_thread_cache_drain();
  return NULL;
}

TEST(tensor_handed_between_runtimes_and_threads_without_copy) {
  mg_runtime *producer = mg_runtime_new(NULL);
  REQUIRE(producer);
  mg_value r;
  CHECK_RT(producer, mg_eval(producer, "made = mg.arange(1, 1001, 1, mg.float32) return made", &r, 1));
  REQUIRE(r.type == MG_VTENSOR);
  mg_tensor *t = r.u.t;
  const void *data = mg_tensor_data(t);
  pthread_t th[NTHREADS];
  handoff h[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    mg_tensor_retain(t);   /* one reference per consumer thread */
    h[i] = (handoff){.t = t};
    REQUIRE(pthread_create(&th[i], NULL, thread_consume, &h[i]) == 0);
  }
  /* meanwhile the producer keeps working on the same tensor */
  for (int k = 0; k < 20; k++) CHECK_RT(producer, mg_eval(producer, "return (made * 2):sum():item()", NULL, 0));
  for (int i = 0; i < NTHREADS; i++) {
    pthread_join(th[i], NULL);
    CHECK(!h[i].failed);
    CHECK(h[i].sum == 500500);
    CHECK(h[i].seen == data);   /* the same buffer: no copy anywhere */
  }
  mg_runtime_free(producer);
  float first;
  CHECK(mg_tensor_copy_to(t, &first, 0) != MG_OK);   /* cap too small: an error, not an overflow */
  mg_value_clear(&r);
}

/* ---- staged functions run into host tensors (mg_lookup_staged, mg_call_into) ------------ */

/* Counting C heap allocations around frames (not under ASan, which owns malloc). */
static long staged_mallocs;
static int staged_counting;
#if !defined(__SANITIZE_ADDRESS__)
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
void *malloc(size_t n) {
  if (staged_counting) __atomic_add_fetch(&staged_mallocs, 1, __ATOMIC_RELAXED);
  return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
  if (staged_counting) __atomic_add_fetch(&staged_mallocs, 1, __ATOMIC_RELAXED);
  return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
  if (staged_counting) __atomic_add_fetch(&staged_mallocs, 1, __ATOMIC_RELAXED);
  return __libc_realloc(p, n);
}
#define STAGED_C_COUNTED 1
#else
#define STAGED_C_COUNTED 0
#endif

/* Lua heap growth through the runtime's allocator option. */
typedef struct frame_count {
  long grows;
  int on;
} frame_count;

static void *frame_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  frame_count *c = ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (c->on && nsize > (ptr ? osize : 0)) c->grows++;
  return realloc(ptr, nsize);
}

static const char *const staged_policy =
  "local W1, b1 = mg.random.normal({8, 16}), mg.random.normal{16}\n"
  "local W2, b2 = mg.random.normal({16, 4}), mg.zeros{4}\n"
  "local function logits(x) return mg.matmul(mg.relu(mg.matmul(x, W1) + b1), W2) + b2 end\n"
  "policy = mg.func(logits)\n"
  "act = mg.func(function(x) return mg.argmax(logits(x)), logits(x) end)\n";

static mg_runtime *staged_runtime(frame_count *fc) {
  mg_runtime_options o = {0};
  o.alloc = frame_alloc;
  o.alloc_ud = fc;
  o.seed = 7;
  mg_runtime *rt = mg_runtime_new(&o);
  if (rt && mg_run_string(rt, staged_policy, NULL)) {
    fprintf(stderr, "  %s\n", mg_runtime_errmsg(rt));
    mg_runtime_free(rt);
    return NULL;
  }
  return rt;
}

TEST(staged_call_into_matches_lua_and_allocates_nothing_per_frame) {
  frame_count fc = {0, 0};
  mg_runtime *rt = staged_runtime(&fc);
  REQUIRE(rt);
  float obs[8] = {0.5f, -1, 0.25f, 2, -0.5f, 1, 0, -2}, logits[4] = {0};
  int64_t oshape[2] = {1, 8}, lshape[2] = {1, 4}, action = -1;
  mg_tensor *obs_t, *log_t, *act_t;
  REQUIRE(mg_tensor_borrow(MG_FLOAT32, 2, oshape, obs, NULL, NULL, &obs_t) == MG_OK);
  REQUIRE(mg_tensor_borrow(MG_FLOAT32, 2, lshape, logits, NULL, NULL, &log_t) == MG_OK);
  REQUIRE(mg_tensor_borrow(MG_INT64, 0, NULL, &action, NULL, NULL, &act_t) == MG_OK);
  mg_staged *policy, *act;
  CHECK_RT(rt, mg_lookup_staged(rt, "policy", &obs_t, 1, &policy));
  CHECK_RT(rt, mg_lookup_staged(rt, "act", &obs_t, 1, &act));
  REQUIRE(policy && act);
  CHECK(mg_staged_noutputs(policy) == 1 && mg_staged_noutputs(act) == 2);
  mg_dtype dt;
  int nd;
  int64_t shape[8];
  CHECK(mg_staged_output(act, 0, &dt, &nd, shape) == MG_OK && dt == MG_INT64 && nd == 0);
  CHECK(mg_staged_output(act, 1, &dt, &nd, shape) == MG_OK && dt == MG_FLOAT32 && nd == 2 && shape[1] == 4);
  CHECK(mg_staged_output(act, 2, &dt, &nd, shape) == MG_EINDEX);
  /* the same numbers as the Lua call */
  mg_value arg = mg_vtensor(obs_t), want;
  CHECK_RT(rt, mg_invoke(rt, "policy", &arg, 1, &want, 1));
  REQUIRE(want.type == MG_VTENSOR);
  float ref[4];
  CHECK(mg_tensor_copy_to(want.u.t, ref, sizeof ref) == MG_OK);
  mg_value_clear(&want);
  CHECK_RT(rt, mg_call_into(rt, policy, &obs_t, 1, &log_t, 1));
  for (int i = 0; i < 4; i++) CHECK(logits[i] == ref[i]);
  mg_tensor *outs[2] = {act_t, log_t};
  CHECK_RT(rt, mg_call_into(rt, act, &obs_t, 1, outs, 2));
  int best = 0;
  for (int i = 1; i < 4; i++) if (ref[i] > ref[best]) best = i;
  CHECK(action == best + 1);   /* index values are 1-based, as everywhere in Lua */
  /* steady state: frames with new observations allocate nothing */
  for (int i = 0; i < 10; i++) CHECK_RT(rt, mg_call_into(rt, act, &obs_t, 1, outs, 2));
  int64_t live = mg_storage_bytes_live();
  fc.on = 1;
  staged_mallocs = 0;
  staged_counting = 1;
  mg_status st = MG_OK;
  for (int frame = 0; frame < 1000 && !st; frame++) {
    obs[frame % 8] += 0.125f;
    st = mg_call_into(rt, act, &obs_t, 1, outs, 2);
    if (!st) st = mg_call_into(rt, policy, &obs_t, 1, &log_t, 1);
  }
  staged_counting = 0;
  fc.on = 0;
  CHECK(st == MG_OK);
  CHECK(fc.grows == 0);
  CHECK(staged_mallocs == 0 || !STAGED_C_COUNTED);
  CHECK(mg_storage_bytes_live() == live);
  /* and the numbers still follow the input */
  CHECK_RT(rt, mg_invoke(rt, "policy", &arg, 1, &want, 1));
  CHECK(mg_tensor_copy_to(want.u.t, ref, sizeof ref) == MG_OK);
  mg_value_clear(&want);
  for (int i = 0; i < 4; i++) CHECK(logits[i] == ref[i]);
  mg_staged_free(rt, policy);
  mg_staged_free(rt, NULL);
  mg_runtime_free(rt);          /* act is still live: the runtime drops it */
  mg_tensor_release(obs_t);
  mg_tensor_release(log_t);
  mg_tensor_release(act_t);
}

TEST(staged_call_into_errors_name_the_mismatch) {
  frame_count fc = {0, 0};
  mg_runtime *rt = staged_runtime(&fc);
  REQUIRE(rt);
  int64_t oshape[2] = {1, 8}, bad_shape[2] = {2, 8}, lshape[2] = {1, 4}, l3[2] = {1, 3};
  mg_tensor *obs, *obs2, *logits, *wrong_shape, *wrong_dtype;
  REQUIRE(mg_tensor_empty(MG_FLOAT32, 2, oshape, &obs) == MG_OK);
  REQUIRE(mg_tensor_empty(MG_FLOAT32, 2, bad_shape, &obs2) == MG_OK);
  REQUIRE(mg_tensor_empty(MG_FLOAT32, 2, lshape, &logits) == MG_OK);
  REQUIRE(mg_tensor_empty(MG_FLOAT32, 2, l3, &wrong_shape) == MG_OK);
  REQUIRE(mg_tensor_empty(MG_INT32, 2, lshape, &wrong_dtype) == MG_OK);
  memset(mg_tensor_data(obs), 0, 32);
  mg_staged *policy;
  CHECK_RT(rt, mg_lookup_staged(rt, "policy", &obs, 1, &policy));
  REQUIRE(policy);
  CHECK(mg_call_into(rt, policy, &obs, 1, &wrong_shape, 1) == MG_EARG);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "output 1 is float32 (1,3), the graph gives float32 (1,4)");
  CHECK(mg_call_into(rt, policy, &obs, 1, &wrong_dtype, 1) == MG_EARG);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "output 1 is int32 (1,4)");
  CHECK(mg_call_into(rt, policy, &obs2, 1, &logits, 1) == MG_EARG);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "input 1 is float32 (2,8)");
  CHECK(mg_call_into(rt, policy, &obs, 1, &logits, 0) == MG_EARG);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "gives 1 outputs, 0 given");
  mg_tensor *two[2] = {obs, obs};
  CHECK(mg_call_into(rt, policy, two, 2, &logits, 1) == MG_EARG);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "takes 1 inputs, got 2");
  mg_tensor *none = NULL;
  CHECK(mg_call_into(rt, policy, &none, 1, &logits, 1) == MG_ESCRIPT);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "input 1 is NULL");
  CHECK(mg_call_into(rt, NULL, &obs, 1, &logits, 1) == MG_EARG);
  /* a Variable is not a place to write a result */
  mg_value var;
  CHECK_RT(rt, mg_eval(rt, "return mg.Variable(mg.zeros{1, 4})", &var, 1));
  REQUIRE(var.type == MG_VTENSOR);
  CHECK(mg_call_into(rt, policy, &obs, 1, &var.u.t, 1) == MG_EARG);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "output 1 is a Variable");
  mg_value_clear(&var);
  /* names that are not staged functions, or staged functions a host cannot call this way */
  mg_staged *h = (mg_staged *)1;
  CHECK_RT(rt, mg_run_string(rt, "plain = function(x) return x end\n"
                                 "tabled = mg.func(function(x) return {y = x} end)", NULL));
  CHECK(mg_lookup_staged(rt, "plain", &obs, 1, &h) == MG_ESCRIPT && h == NULL);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "'plain' is not a staged function");
  CHECK(mg_lookup_staged(rt, "tabled", &obs, 1, &h) == MG_ESCRIPT && h == NULL);
  CHECK_CONTAINS(mg_runtime_errmsg(rt), "must take only tensors");
  CHECK(mg_lookup_staged(rt, "nowhere", &obs, 1, &h) == MG_ESCRIPT);
  /* after all that, the handle still works */
  CHECK_RT(rt, mg_call_into(rt, policy, &obs, 1, &logits, 1));
  mg_runtime_free(rt);
  mg_tensor_release(obs);
  mg_tensor_release(obs2);
  mg_tensor_release(logits);
  mg_tensor_release(wrong_shape);
  mg_tensor_release(wrong_dtype);
}

TEST(staged_call_into_retraces_when_a_guard_changes_and_allows_aliasing) {
  frame_count fc = {0, 0};
  mg_runtime_options o = {0};
  o.alloc = frame_alloc;
  o.alloc_ud = &fc;
  mg_runtime *rt = mg_runtime_new(&o);
  REQUIRE(rt);
  CHECK_RT(rt, mg_run_string(rt, "scale = 2\nstep = mg.func(function(x) return x * scale + 1 end)", NULL));
  float x[3] = {1, 2, 3};
  int64_t shape[1] = {3};
  mg_tensor *xt;
  REQUIRE(mg_tensor_borrow(MG_FLOAT32, 1, shape, x, NULL, NULL, &xt) == MG_OK);
  mg_staged *step;
  CHECK_RT(rt, mg_lookup_staged(rt, "step", &xt, 1, &step));
  REQUIRE(step);
  CHECK_RT(rt, mg_call_into(rt, step, &xt, 1, &xt, 1));   /* x = step(x), in place */
  CHECK(x[0] == 3 && x[1] == 5 && x[2] == 7);
  CHECK_RT(rt, mg_run_string(rt, "scale = 10", NULL));
  CHECK_RT(rt, mg_call_into(rt, step, &xt, 1, &xt, 1));   /* not the stale 2 */
  CHECK(x[0] == 31 && x[1] == 51 && x[2] == 71);
  mg_value n;
  CHECK_RT(rt, mg_eval(rt, "return step:trace_count()", &n, 1));
  CHECK(n.type == MG_VINTEGER && n.u.i == 2);
  /* checking the guard every call allocates nothing either */
  x[0] = x[1] = x[2] = 0;
  fc.on = 1;
  for (int i = 0; i < 3; i++) CHECK_RT(rt, mg_call_into(rt, step, &xt, 1, &xt, 1));
  fc.on = 0;
  CHECK(fc.grows == 0);
  CHECK(x[0] == 111 && x[2] == 111);
  mg_staged_free(rt, step);
  mg_runtime_free(rt);
  mg_tensor_release(xt);
}
