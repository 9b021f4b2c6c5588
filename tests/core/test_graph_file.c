/*
 * test_graph_file.c — graph files from a C host with no Lua (core/graphfile.c).
 *
 * The files under tests/fixtures/graphs were exported from Lua by
 * tests/fixtures/make_graph_files.lua (an MLP policy, a small CNN, an LSTM
 * layer, an AutoGraph loop), each with the inputs and the outputs the staged
 * function gave: loading and running them here must give the same bytes,
 * on this context's index base 0 though Lua traced them with base 1. A run
 * into the caller's tensors allocates nothing after the first. Hostile
 * files (corrupt bytes, cut files, hand-made graphs that lie) give errors
 * naming what is wrong, never a crash.
 */
#include "harness.h"
#include <stdlib.h>
#include <string.h>

#define FIX "tests/fixtures/graphs/"

/* Counting heap allocations around runs (not under ASan, which owns malloc). */
static long gf_mallocs;
static int gf_counting;
#if !defined(__SANITIZE_ADDRESS__)
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
void *malloc(size_t n) {
  if (gf_counting) __atomic_add_fetch(&gf_mallocs, 1, __ATOMIC_RELAXED);
  return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
  if (gf_counting) __atomic_add_fetch(&gf_mallocs, 1, __ATOMIC_RELAXED);
  return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
  if (gf_counting) __atomic_add_fetch(&gf_mallocs, 1, __ATOMIC_RELAXED);
  return __libc_realloc(p, n);
}
#define GF_COUNTED 1
#else
#define GF_COUNTED 0
#endif

static mg_tensor *io_tensor(mg_tensorfile *f, const char *name) {
  for (int i = 0; i < mg_tensorfile_count(f); i++)
    if (!strcmp(mg_tensorfile_name(f, i), name)) return mg_tensorfile_tensor(f, i);
  return NULL;
}

static int same_bytes(const mg_tensor *a, const mg_tensor *b) {
  size_t n = mg_tensor_nbytes(a);
  if (mg_tensor_dtype(a) != mg_tensor_dtype(b) || mg_tensor_ndim(a) != mg_tensor_ndim(b) || n != mg_tensor_nbytes(b))
    return 0;
  for (int d = 0; d < mg_tensor_ndim(a); d++)
    if (mg_tensor_shape(a)[d] != mg_tensor_shape(b)[d]) return 0;
  void *x = malloc(n ? n : 1), *y = malloc(n ? n : 1);
  int ok = x && y && !mg_tensor_copy_to(a, x, n) && !mg_tensor_copy_to(b, y, n) && !memcmp(x, y, n);
  free(x);
  free(y);
  return ok;
}

/* Loads fixture `name`, runs it on its inputs, and checks the outputs are
 * the staged function's, bit for bit; then runs into preallocated outputs
 * and counts the heap allocations of the later runs. */
static void round_trip(const char *name, int nin, int nout) {
  mg_ctx *ctx = mg_test_ctx();
  char path[256];
  mg_graph *g;
  mg_tensorfile *io;
  snprintf(path, sizeof path, FIX "%s.mgg", name);
  CHECK_OK(mg_graph_load(ctx, path, &g));
  snprintf(path, sizeof path, FIX "%s.io.safetensors", name);
  if (mg_safetensors_load(path, &io)) {
    fprintf(stderr, "  %s\n", mg_last_error());
    mg_graph_free(g);
    REQUIRE(0);
  }
  CHECK(mg_graph_ninputs(g) == nin && mg_graph_noutputs(g) == nout);
  CHECK(mg_graph_metadata(g, "case") && !strcmp(mg_graph_metadata(g, "case"), name));
  CHECK(mg_graph_metadata(g, "moongrad.graph") == NULL);
  CHECK(mg_graph_input_name(g, nin) == NULL && mg_graph_input_index(g, mg_graph_input_name(g, 0)) == 0);
  mg_tensor *in[4] = {0}, *want[4] = {0}, *got[4] = {0}, *into[4] = {0};
  for (int k = 0; k < nin; k++) {
    snprintf(path, sizeof path, "input_%d", k + 1);
    in[k] = io_tensor(io, path);
  }
  for (int k = 0; k < nout; k++) {
    snprintf(path, sizeof path, "output_%d", k + 1);
    want[k] = io_tensor(io, path);
  }
  mg_status st = mg_graph_run(ctx, g, nin, in, nout, got);
  if (st) fprintf(stderr, "  %s: %s\n", name, mg_last_error());
  CHECK(st == MG_OK);
  for (int k = 0; k < nout && !st; k++) {
    CHECK(same_bytes(got[k], want[k]));
    CHECK(mg_tensor_empty(mg_tensor_dtype(want[k]), mg_tensor_ndim(want[k]), mg_tensor_shape(want[k]), &into[k]) == MG_OK);
    mg_tensor_release(got[k]);
  }
  if (!st) {
    CHECK(mg_graph_run_into(ctx, g, nin, in, nout, into) == MG_OK);
    CHECK(mg_graph_run_into(ctx, g, nin, in, nout, into) == MG_OK);
    gf_mallocs = 0;
    gf_counting = 1;
    for (int r = 0; r < 5; r++) st |= mg_graph_run_into(ctx, g, nin, in, nout, into);
    gf_counting = 0;
    CHECK(st == MG_OK);
    /* the MLP and CNN are static graphs; loops allocate per iteration, as any staged loop does */
    if (GF_COUNTED && (!strcmp(name, "mlp") || !strcmp(name, "cnn"))) {
      if (gf_mallocs) fprintf(stderr, "  %s: %ld allocations in 5 runs\n", name, gf_mallocs);
      CHECK(gf_mallocs == 0);
    }
    for (int k = 0; k < nout; k++) CHECK(same_bytes(into[k], want[k]));
  }
  for (int k = 0; k < nout; k++) mg_tensor_release(into[k]);
  mg_tensorfile_free(io);
  mg_graph_free(g);
}

TEST(graph_file_mlp_round_trip_exact) { round_trip("mlp", 1, 1); }
TEST(graph_file_cnn_round_trip_exact) { round_trip("cnn", 1, 1); }
TEST(graph_file_lstm_round_trip_exact) { round_trip("lstm", 1, 1); }
TEST(graph_file_loop_round_trip_exact) { round_trip("loop", 2, 2); }

/* The MLP again with another batch size: its first size is unknown (-1). */
TEST(graph_file_unknown_batch_size) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g;
  CHECK_OK(mg_graph_load(ctx, FIX "mlp.mgg", &g));
  mg_dtype dt;
  int nd;
  int64_t shape[8], s[2] = {7, 8};
  mg_graph_input_meta(g, 0, &dt, &nd, shape);
  CHECK(dt == MG_FLOAT32 && nd == 2 && shape[0] == -1 && shape[1] == 8);
  CHECK(!strcmp(mg_graph_input_name(g, 0), "obs"));
  mg_tensor *x, *y = NULL;
  CHECK(mg_tensor_empty(MG_FLOAT32, 2, s, &x) == MG_OK);
  memset(mg_tensor_data(x), 0, mg_tensor_nbytes(x));
  CHECK(mg_graph_run(ctx, g, 1, &x, 1, &y) == MG_OK);
  CHECK(y && mg_tensor_shape(y)[0] == 7 && mg_tensor_shape(y)[1] == 4);
  s[1] = 9;  /* a wrong size is an error */
  mg_tensor *bad;
  CHECK(mg_tensor_empty(MG_FLOAT32, 2, s, &bad) == MG_OK);
  mg_tensor *y2 = NULL;
  CHECK(mg_graph_run(ctx, g, 1, &bad, 1, &y2) != MG_OK);
  mg_tensor_release(bad);
  mg_tensor_release(x);
  mg_tensor_release(y);
  mg_graph_free(g);
}

/* ---- hostile files ------------------------------------------------------------------ */

static uint8_t *read_fixture(const char *name, size_t *len) {
  uint8_t *buf;
  if (mg_read_file(name, &buf, len)) return NULL;
  return buf;
}

/* Every cut of the file and many corruptions of single bytes: an error or a
 * graph, never a crash (the sanitizer builds make this strict). */
TEST(graph_file_corrupt_bytes_never_crash) {
  mg_ctx *ctx = mg_test_ctx();
  size_t len;
  uint8_t *buf = read_fixture(FIX "loop.mgg", &len);
  REQUIRE(buf);
  int errors = 0;
  for (size_t cut = 0; cut < len; cut += 7) {
    mg_graph *g;
    if (mg_graph_load_buffer(ctx, buf, cut, "cut", &g)) errors++;
    else mg_graph_free(g);
  }
  CHECK(errors > 0);
  uint8_t *copy = malloc(len);
  REQUIRE(copy);
  uint32_t seed = 12345;
  for (int trial = 0; trial < 600; trial++) {
    memcpy(copy, buf, len);
    for (int k = 0; k < 3; k++) {
      seed = seed * 1664525u + 1013904223u;
      size_t at = (seed >> 8) % len;
      seed = seed * 1664525u + 1013904223u;
      copy[at] = (uint8_t)(seed >> 24);
    }
    mg_graph *g;
    if (!mg_graph_load_buffer(ctx, copy, len, "flipped", &g)) mg_graph_free(g);
  }
  free(copy);
  mg_free(buf);
}

/* A file with this graph JSON (and one float32 constant "const/0" of shape (2)). */
static mg_status load_json(const char *json, mg_graph **g) {
  const char *path = "/tmp/mg_test_graph_file.mgg";
  int64_t s[1] = {2};
  mg_tensor *c;
  if (mg_tensor_empty(MG_FLOAT32, 1, s, &c)) return MG_ENOMEM;
  memset(mg_tensor_data(c), 0, 8);
  const char *names[1] = {"const/0"}, *keys[1] = {"moongrad.graph"}, *vals[1] = {json};
  mg_status st = mg_safetensors_save(path, 1, names, &c, 1, keys, vals);
  mg_tensor_release(c);
  if (st) return st;
  st = mg_graph_load(mg_test_ctx(), path, g);
  remove(path);
  return st;
}

#define HEAD "{\"format\":\"moongrad.graph\",\"version\":1,\"index_base\":0,\"input_names\":[\"x\"],\"output_names\":[\"y\"],"
#define IN "\"inputs\":[{\"dtype\":\"float32\",\"shape\":[2]}],\"captures\":0,"

static void refused(const char *json, const char *words) {
  mg_graph *g = NULL;
  mg_status st = load_json(json, &g);
  CHECK(st != MG_OK && g == NULL);
  if (st == MG_OK) {
    fprintf(stderr, "  loaded, expected an error about '%s': %.200s\n", words, json);
    mg_graph_free(g);
  }
  else if (!strstr(mg_last_error(), words)) {
    fprintf(stderr, "  expected '%s' in: %s\n", words, mg_last_error());
    CHECK(0);
  }
}

TEST(graph_file_hand_made_graph_loads) {
  mg_graph *g;
  CHECK_OK(load_json(HEAD "\"graph\":{" IN "\"nodes\":[{\"kind\":\"const\",\"tensor\":\"const/0\"},"
                          "{\"op\":\"add\",\"in\":[0,1]},{\"op\":\"sum\",\"in\":[2],\"attrs\":{\"axis\":[0]}}],"
                          "\"outputs\":[3]}}",
                     &g));
  float xs[2] = {1.5f, 2.0f};
  int64_t s[1] = {2};
  mg_tensor *x, *y;
  CHECK(mg_tensor_borrow(MG_FLOAT32, 1, s, xs, NULL, NULL, &x) == MG_OK);
  CHECK(mg_graph_run(mg_test_ctx(), g, 1, &x, 1, &y) == MG_OK);
  float r = 0;
  CHECK(mg_tensor_copy_to(y, &r, sizeof r) == MG_OK && r == 3.5f);
  CHECK(!strcmp(mg_graph_output_name(g, 0), "y"));
  mg_tensor_release(x);
  mg_tensor_release(y);
  mg_graph_free(g);
}

TEST(graph_file_hostile_graphs_are_refused_by_name) {
  refused("{}", "\"format\"");
  refused("{\"format\":\"moongrad.graph\",\"version\":2,\"index_base\":0}", "format version 2");
  refused("not json", "not valid JSON");
  refused(HEAD "\"graph\":{" IN "\"nodes\":[{\"op\":\"frobnicate\",\"in\":[0]}],\"outputs\":[1]}}",
          "graph.nodes[0]: unknown op 'frobnicate'");
  refused(HEAD "\"graph\":{" IN "\"nodes\":[{\"op\":\"add\",\"in\":[0]}],\"outputs\":[1]}}", "takes 2 inputs");
  refused(HEAD "\"graph\":{" IN "\"nodes\":[{\"op\":\"neg\",\"in\":[1]}],\"outputs\":[1]}}", "names value 1");
  refused(HEAD "\"graph\":{" IN "\"nodes\":[{\"op\":\"neg\",\"in\":[-1]}],\"outputs\":[1]}}", "input 1 names value");
  refused(HEAD "\"graph\":{" IN "\"nodes\":[{\"op\":\"neg\",\"in\":[0.5]}],\"outputs\":[1]}}", "input 1 names value");
  refused(HEAD "\"graph\":{" IN "\"nodes\":[{\"op\":\"sum\",\"in\":[0],\"attrs\":{\"colour\":1}}],\"outputs\":[1]}}",
          "no attribute 'colour'");
  refused(HEAD "\"graph\":{" IN "\"nodes\":[{\"op\":\"sum\",\"in\":[0],\"attrs\":{\"axis\":[5]}}],\"outputs\":[1]}}",
          "out of range");
  refused(HEAD "\"graph\":{" IN "\"nodes\":[{\"op\":\"sum\",\"in\":[0],\"attrs\":{\"axis\":\"all\"}}],\"outputs\":[1]}}",
          "list of integers");
  refused(HEAD "\"graph\":{" IN "\"nodes\":[{\"op\":\"cast\",\"in\":[0],\"attrs\":{\"dtype\":\"float99\"}}],\"outputs\":[1]}}",
          "dtype name");
  refused(HEAD "\"graph\":{" IN "\"nodes\":[{\"op\":\"full\",\"in\":[],\"attrs\":{\"shape\":[1048576,1048576]}}],"
               "\"outputs\":[1]}}",
          "more than");
  refused(HEAD "\"graph\":{" IN "\"nodes\":[{\"kind\":\"const\",\"tensor\":\"nope\"}],\"outputs\":[1]}}",
          "'nope' is not in the file");
  refused(HEAD "\"graph\":{" IN "\"nodes\":[{\"kind\":\"call\"}],\"outputs\":[0]}}", "unknown node kind 'call'");
  refused(HEAD "\"graph\":{" IN "\"nodes\":[],\"outputs\":[4]}}", "output 1 names no value");
  refused(HEAD "\"graph\":{\"inputs\":[{\"dtype\":\"float32\",\"shape\":[-3]}],\"captures\":0,\"nodes\":[],"
               "\"outputs\":[0]}}",
          "size 1 is -3");
  refused(HEAD "\"graph\":{\"inputs\":[{\"dtype\":\"float32\",\"shape\":[16777213]}],\"captures\":0,\"nodes\":[],"
               "\"outputs\":[0]}}",
          "reserved for unknown sizes");
  refused(HEAD "\"graph\":{" IN "\"nodes\":[{\"op\":\"reshape\",\"in\":[0],\"attrs\":{\"shape\":[\"?3\"]}}],"
               "\"outputs\":[1]}}",
          "?3 is not the size of any input");
  refused(HEAD "\"graph\":{" IN "\"nodes\":[],\"outputs\":[0]},\"input_names\":[\"x\",\"x\"]}", "\"input_names\" twice");
  /* a cond whose subgraphs claim more captures than the node passes */
  refused(HEAD "\"graph\":{" IN "\"nodes\":[{\"op\":\"sum\",\"in\":[0]},{\"op\":\"greater\",\"in\":[1,1]},"
               "{\"kind\":\"cond\",\"in\":[2,0],\"then\":{\"inputs\":[],\"captures\":2,\"nodes\":[],\"outputs\":[0]},"
               "\"else\":{\"inputs\":[],\"captures\":0,\"nodes\":[],\"outputs\":[]}}],\"outputs\":[3]}}",
          "captures");
  /* a branch that claims inputs of its own (nothing would bind them) */
  refused(HEAD "\"graph\":{" IN "\"nodes\":[{\"op\":\"sum\",\"in\":[0]},{\"op\":\"greater\",\"in\":[1,1]},"
               "{\"kind\":\"cond\",\"in\":[2],\"then\":{\"inputs\":[{\"dtype\":\"float32\",\"shape\":[]}],"
               "\"captures\":0,\"nodes\":[],\"outputs\":[0]},\"else\":{\"inputs\":[],\"captures\":0,\"nodes\":[],"
               "\"outputs\":[]}}],\"outputs\":[3]}}",
          "must take 0 inputs");
  /* deep nesting: conds inside conds, 40 deep */
  static char deep[16384];
  size_t n = 0;
  n += (size_t)snprintf(deep + n, sizeof deep - n, HEAD "\"graph\":{" IN "\"nodes\":[{\"op\":\"sum\",\"in\":[0]},"
                        "{\"op\":\"greater\",\"in\":[1,1]},{\"kind\":\"cond\",\"in\":[2],\"then\":");
  for (int d = 0; d < 40; d++)
    n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"inputs\":[],\"captures\":0,\"nodes\":[{\"kind\":\"const\","
                          "\"tensor\":\"const/0\"},{\"op\":\"sum\",\"in\":[0]},{\"op\":\"greater\",\"in\":[1,1]},"
                          "{\"kind\":\"cond\",\"in\":[2],\"then\":");
  const char *leaf = "{\"inputs\":[],\"captures\":0,\"nodes\":[],\"outputs\":[]}";
  n += (size_t)snprintf(deep + n, sizeof deep - n, "%s,\"else\":%s}", leaf, leaf);
  for (int d = 0; d < 40; d++)
    n += (size_t)snprintf(deep + n, sizeof deep - n, "],\"outputs\":[]},\"else\":%s}", leaf);
  n += (size_t)snprintf(deep + n, sizeof deep - n, "],\"outputs\":[0]}}");
  CHECK(n < sizeof deep);
  refused(deep, "nested");
}

/* Exporting needs a finished graph and refuses host calls by name. */
static mg_status twice(void *ud, int nin, mg_tensor *const *in, int nout, mg_tensor **out) {
  (void)ud, (void)nin, (void)nout;
  mg_tensor_retain(in[0]);
  out[0] = in[0];
  return MG_OK;
}

TEST(graph_file_export_refuses_host_calls) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g;
  mg_tensor *x, *y;
  int64_t s[1] = {2};
  CHECK_OK(mg_trace_begin(ctx, "h", &g));
  CHECK(mg_trace_placeholder(ctx, MG_FLOAT32, 1, s, &x) == MG_OK);
  mg_dtype dt = MG_FLOAT32;
  int nd = 1;
  const int64_t shapes[1][MG_MAX_DIMS] = {{2}};
  CHECK(mg_call_host(ctx, "the Lua function at policy.lua:7", twice, NULL, NULL, 1, &x, 1, &dt, &nd, shapes, &y) == MG_OK);
  CHECK(mg_trace_end(ctx, g, 1, &y) == MG_OK);
  CHECK(mg_graph_export(ctx, g, "/tmp/mg_test_never.mgg", NULL, NULL, 0, NULL, NULL) == MG_EARG);
  CHECK(strstr(mg_last_error(), "policy.lua:7") != NULL);
  mg_tensor_release(x);
  mg_tensor_release(y);
  mg_graph_release(g);
}

/* Export from C and load back: names default to input_1 / output_1. */
TEST(graph_file_export_from_c_round_trip) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g, *h;
  mg_tensor *x, *y;
  int64_t s[1] = {-1};
  CHECK_OK(mg_trace_begin(ctx, "c_fn", &g));
  CHECK(mg_trace_placeholder(ctx, MG_FLOAT64, 1, s, &x) == MG_OK);
  CHECK(mg_apply(ctx, MG_OP_EXP, &x, 1, NULL, &y) == MG_OK);
  CHECK(mg_trace_end(ctx, g, 1, &y) == MG_OK);
  const char *keys[1] = {"note"}, *vals[1] = {"from C"};
  CHECK_OK(mg_graph_export(ctx, g, "/tmp/mg_test_c_fn.mgg", NULL, NULL, 1, keys, vals));
  CHECK_OK(mg_graph_load(ctx, "/tmp/mg_test_c_fn.mgg", &h));
  remove("/tmp/mg_test_c_fn.mgg");
  CHECK(!strcmp(mg_graph_input_name(h, 0), "input_1") && !strcmp(mg_graph_output_name(h, 0), "output_1"));
  CHECK(mg_graph_nmetadata(h) == 1 && !strcmp(mg_graph_metadata(h, "note"), "from C"));
  double v[3] = {0, 1, -2}, r[3];
  int64_t s3[1] = {3};
  mg_tensor *a, *b;
  CHECK(mg_tensor_borrow(MG_FLOAT64, 1, s3, v, NULL, NULL, &a) == MG_OK);
  CHECK(mg_graph_run(ctx, h, 1, &a, 1, &b) == MG_OK);
  CHECK(mg_tensor_copy_to(b, r, sizeof r) == MG_OK && r[0] == 1 && r[1] == exp(1.0) && r[2] == exp(-2.0));
  mg_tensor_release(a);
  mg_tensor_release(b);
  mg_tensor_release(x);
  mg_tensor_release(y);
  mg_graph_release(g);
  mg_graph_free(h);
}
