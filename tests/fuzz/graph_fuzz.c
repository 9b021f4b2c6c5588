/*
 * graph_fuzz.c — libFuzzer target for the graph-file loader (core/graphfile.c):
 * any byte string given to mg_graph_load_buffer must give a graph or an error
 * with a message, never a crash, an out-of-bounds access (ASan), undefined
 * behaviour (UBSan), a leak or an allocation past the loader's bound. Built and
 * run by `make fuzz` after the safetensors target, starting from
 * tests/fuzz/corpus/graph/ (the files mg.export wrote for
 * tests/fixtures/graphs: an MLP, a CNN, an LSTM, an AutoGraph loop).
 *
 * An input that starts with '{' is the graph's JSON itself (the second half
 * of the corpus: the .json files of tests/fuzz/corpus/graph): it is wrapped into a
 * safetensors image whose metadata holds it and whose tensors are a fixed set
 * ("const/k": k % 4 = 0 a float32 scalar, 1 float32 (4), 2 float32 (4, 4),
 * 3 an int64 scalar), so mutations reach the graph loader instead of mostly
 * breaking the outer header.
 *
 * A graph that loads is also run once, on zero inputs (unknown sizes 2),
 * under a 1 s deadline and a 64 MiB memory cap (mg_limits), since a hostile
 * graph may loop forever or ask for much memory when it runs: an error is
 * fine there, a crash is not.
 */
#include "mg.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mg_ctx *ctx;

static void run_once(mg_graph *g) {
  int nin = mg_graph_ninputs(g), nout = mg_graph_noutputs(g);
  mg_tensor **in = calloc((size_t)nin + 1, sizeof *in), **out = calloc((size_t)nout + 1, sizeof *out);
  int ok = in && out;
  for (int k = 0; ok && k < nin; k++) {
    mg_dtype dt;
    int nd;
    int64_t shape[MG_MAX_DIMS];
    mg_graph_input_meta(g, k, &dt, &nd, shape);
    for (int d = 0; d < nd; d++) if (shape[d] < 0) shape[d] = 2;
    if (mg_tensor_empty(dt, nd, shape, &in[k])) ok = 0;
    else memset(mg_tensor_data(in[k]), 0, mg_tensor_nbytes(in[k]));
  }
  if (ok) {
    mg_limits *l = mg_limits_new();
    if (l) {
      mg_limits_start(l, 0, 1.0);
      mg_limits_set_memory(l, (size_t)64 << 20, NULL, NULL);
      mg_limits *prev = mg_limits_enter(l);
      if (!mg_graph_run(ctx, g, nin, in, nout, out))
        for (int k = 0; k < nout; k++) mg_tensor_release(out[k]);
      else if (mg_last_error()[0] == 0)
        abort();
      mg_limits_enter(prev);
      mg_limits_release(l);
    }
  }
  for (int k = 0; in && k < nin; k++) mg_tensor_release(in[k]);
  free(in);
  free(out);
}

/* The safetensors image of graph JSON `json` with the fixed tensors (malloc'd). */
static uint8_t *wrap_json(const uint8_t *data, size_t size, size_t *len) {
  char *text = malloc(size + 1);
  if (!text) return NULL;
  memcpy(text, data, size);
  text[size] = 0;
  cJSON *root = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(root, "__metadata__");
  cJSON_AddStringToObject(meta, "moongrad.graph", text);
  free(text);
  static const int64_t sizes[4] = {4, 16, 64, 8};
  int64_t off = 0;
  for (int k = 0; k < 32; k++) {
    char name[16];
    snprintf(name, sizeof name, "const/%d", k);
    cJSON *t = cJSON_AddObjectToObject(root, name), *shape = cJSON_AddArrayToObject(t, "shape"),
          *offs = cJSON_AddArrayToObject(t, "data_offsets");
    cJSON_AddStringToObject(t, "dtype", k % 4 == 3 ? "I64" : "F32");
    if (k % 4 == 1 || k % 4 == 2) cJSON_AddItemToArray(shape, cJSON_CreateNumber(4));
    if (k % 4 == 2) cJSON_AddItemToArray(shape, cJSON_CreateNumber(4));
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
    off += sizes[k % 4];
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
  }
  char *h = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!h) return NULL;
  size_t hl = strlen(h);
  uint8_t *buf = calloc(1, 8 + hl + (size_t)off);
  if (buf) {
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, h, hl);
    for (int64_t i = 0; i < off; i += 4) {  /* small values: 0.5, 1.5, ... as float32 bit patterns */
      float v = 0.5f + (float)(i % 7);
      memcpy(buf + 8 + hl + i, &v, 4);
    }
    *len = 8 + hl + (size_t)off;
  }
  free(h);
  return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ctx) ctx = mg_ctx_new();
  mg_graph *g = NULL;
  uint8_t *wrapped = NULL;
  if (size && data[0] == '{') {
    if (!(wrapped = wrap_json(data, size, &size))) return 0;
    data = wrapped;
  }
  mg_status st = mg_graph_load_buffer(ctx, data, size, "fuzz", &g);
  free(wrapped);
  if (getenv("GRAPH_FUZZ_VERBOSE")) fprintf(stderr, "graph_fuzz: %s\n", st ? mg_last_error() : "loaded");
  if (st) {
    if (g || mg_last_error()[0] == 0) abort();  /* an error must say what went wrong */
    return 0;
  }
  if (!g || mg_tracing(ctx)) abort();  /* a load leaves no trace behind */
  for (int k = 0; k < mg_graph_ninputs(g); k++)
    if (!mg_graph_input_name(g, k)) abort();
  for (int k = 0; k < mg_graph_noutputs(g); k++)
    if (!mg_graph_output_name(g, k)) abort();
  run_once(g);
  mg_graph_free(g);
  return 0;
}
