/*
 * graphfile.c — graphs outside the process: a concrete function's graph
 * written as a portable, data-only file (mg_graph_export), and loaded back
 * by the C core alone (mg_graph_load, mg_graph_load_buffer).
 *
 * The file is a safetensors file (core/safetensors.c writes it and parses it
 * strictly): its tensors are the graph's constants, Variables' values
 * frozen as constants ("const/N"), and its "__metadata__" holds the graph as
 * JSON under the key "moongrad.graph" beside the caller's own metadata
 * strings. The JSON names every op by its op-table name (never an enum
 * index) and writes only the attributes the call set; a graph is
 *   {"inputs": [{"dtype":, "shape":}], "captures": n, "nodes": [...], "outputs": [ids]}
 * with values numbered in order: the inputs, then the captures (bound, in a
 * cond/while subgraph, to the node's operands after the predicate / loop
 * variables), then each node's results. Nodes are {"op":, "in":, "attrs":},
 * {"kind":"const", "tensor":, "weak":}, {"kind":"cond", "in":, "then":,
 * "else":} and {"kind":"while", "in":, "nvars":, "max_iter":, "cond":,
 * "body":}. Integers beyond 2^53 are decimal strings, an unknown size is
 * "?k" (probe k of the trace), non-finite floats are "inf", "-inf", "nan".
 * Host calls (mg.lua_function), Variable assigns and optimizer steps make no
 * file (nothing executable is ever written); fused nodes are written as the
 * op chain they stand for.
 *
 * Loading re-traces the file: each node is applied through mg_apply on
 * symbolic tensors (cond and while through mg_trace_cond/mg_trace_while),
 * so the op table's arity, dtype and attribute checks and every infer
 * function validate it exactly as they validate a Lua trace, node references
 * can only name earlier values (so the graph is acyclic by construction),
 * and the result is an ordinary graph that mg_graph_run runs (the optimiser
 * is run again, re-fusing). Before each op runs, its inferred size is
 * checked against a bound on the bytes a file may make the loader allocate.
 * A loaded graph keeps the index base its attributes were traced with and
 * runs under it whatever the context's (exec.c).
 */
#include "graph.h"
#include "passes/passes.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define GF_FORMAT "moongrad.graph"
#define GF_VERSION 1
#define GF_KEY "moongrad.graph"
#define GF_MAX_DEPTH 16               /* nested cond/while subgraphs */
#define GF_MAX_NODES (1 << 20)        /* nodes in one file, subgraphs included */
#define GF_MAX_BYTES ((int64_t)1 << 30) /* bytes the values of a loaded graph may need (probes count 1) */
#define GF_EXACT 9007199254740992.0   /* 2^53 */
#define GF_FRESH INT64_MIN            /* GF_FRESH + k: unknown size ?k, not yet made (ld_int) */

void mg_gfile_free(mg_gfile *f) {
  if (!f) return;
  for (int k = 0; f->in_names && k < f->nin; k++) free(f->in_names[k]);  /* a load may stop halfway */
  for (int k = 0; f->out_names && k < f->nout; k++) free(f->out_names[k]);
  for (int k = 0; k < f->nmeta; k++) {
    free(f->keys[k]);
    free(f->vals[k]);
  }
  free(f->in_names);
  free(f->out_names);
  free(f->keys);
  free(f->vals);
  free(f);
}

/* ---- export ------------------------------------------------------------------------ */

typedef struct ex_state {
  mg_tensor **tensors;
  char **names;
  int n, cap;
  mg_status st;
} ex_state;

static cJSON *ex_int(int64_t v) {
  char buf[32];
  if (mg_is_probe(v)) {
    snprintf(buf, sizeof buf, "?%lld", (long long)(MG_PROBE_BASE - v));
    return cJSON_CreateString(buf);
  }
  if ((double)v <= GF_EXACT && (double)v >= -GF_EXACT) return cJSON_CreateNumber((double)v);
  snprintf(buf, sizeof buf, "%lld", (long long)v);
  return cJSON_CreateString(buf);
}

static cJSON *ex_float(double f) {
  if (isnan(f)) return cJSON_CreateString("nan");
  if (isinf(f)) return cJSON_CreateString(f > 0 ? "inf" : "-inf");
  return cJSON_CreateNumber(f);
}

static cJSON *ex_ints(int n, const int64_t *v) {
  cJSON *a = cJSON_CreateArray();
  for (int k = 0; a && k < n; k++) cJSON_AddItemToArray(a, ex_int(v[k]));
  return a;
}

static int ex_fail(ex_state *e, mg_status st, const char *fmt, const char *arg) {
  if (!e->st) e->st = mg_seterror(st, fmt, arg);
  return -1;
}

/* Adds tensor t (retained) as the next "const/N"; its name, or NULL. */
static const char *ex_tensor(ex_state *e, mg_tensor *t) {
  if (e->n == e->cap) {
    int cap = e->cap ? 2 * e->cap : 16;
    mg_tensor **tp = realloc(e->tensors, (size_t)cap * sizeof *tp);
    if (tp) e->tensors = tp;
    char **np = realloc(e->names, (size_t)cap * sizeof *np);
    if (np) e->names = np;
    if (!tp || !np) return NULL;
    e->cap = cap;
  }
  char buf[32];
  snprintf(buf, sizeof buf, "const/%d", e->n);
  if (!(e->names[e->n] = strdup(buf))) return NULL;
  e->tensors[e->n] = t;
  mg_tensor_retain(t);
  return e->names[e->n++];
}

static cJSON *ex_attrs(mg_op op, const mg_attrs *a) {
  const mg_opinfo *info = mg_op_info(op);
  cJSON *o = cJSON_CreateObject();
  for (int k = 0; o && k < info->nattrs; k++) {
    if (!((a->set >> k) & 1u)) continue;  /* a default: the loader's mg_apply fills it in again */
    const mg_attr_desc *d = &info->attrs[k];
    cJSON *v = NULL;
    switch (d->kind) {
    case MG_A_FLOAT: v = ex_float(a->v[k].f); break;
    case MG_A_BOOL: v = cJSON_CreateBool(a->v[k].i[0] != 0); break;
    case MG_A_DTYPE: v = cJSON_CreateString(mg_dtype_name((mg_dtype)a->v[k].i[0])); break;
    case MG_A_ENUM:
      v = a->v[k].i[0] >= 0 && a->v[k].i[0] < d->nenums ? cJSON_CreateString(d->enums[a->v[k].i[0]]) : ex_int(a->v[k].i[0]);
      break;
    case MG_A_AXES: case MG_A_SHAPE: case MG_A_INTS:
      v = ex_ints(a->v[k].n < 0 ? 0 : a->v[k].n > MG_MAX_LIST ? MG_MAX_LIST : a->v[k].n, a->v[k].i);
      break;
    default: v = ex_int(a->v[k].i[0]); break;
    }
    cJSON_AddItemToObject(o, d->name, v);
  }
  return o;
}

static cJSON *ex_graph(ex_state *e, const mg_graph *g, int depth);

static cJSON *ex_in(int n, const int *in, const int *fid) {
  cJSON *a = cJSON_CreateArray();
  for (int k = 0; a && k < n; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(fid[in[k]]));
  return a;
}

/* One node of g into the array `nodes`; fid maps g's value ids to the file's. */
static int ex_node(ex_state *e, const mg_graph *g, const mg_gnode *n, int *fid, int *next, cJSON *nodes, int depth) {
  cJSON *o = NULL;
  char what[160];
  for (int k = 0; k < n->nin; k++)
    if (fid[n->in[k]] < 0) return ex_fail(e, MG_ESTATE, "export: %s: a node reads a value defined after it", g->name);
  switch (n->kind) {
  case MG_N_DEAD: return 0;
  case MG_N_INPUT:
    if (fid[n->out0] < 0) return ex_fail(e, MG_ESTATE, "export: %s: a placeholder is neither an input nor a capture", g->name);
    return 0;
  case MG_N_CALL:
    snprintf(what, sizeof what, "%s", n->label ? n->label : "a host function");
    return ex_fail(e, MG_EARG, "export: the graph calls Lua (%s, through mg.lua_function or mg.print); a graph file "
                               "holds data only, so it cannot run it: compute that part outside the exported function",
                   what);
  case MG_N_ASSIGN:
    return ex_fail(e, MG_EARG, "export: the graph %s; a graph file holds a pure function (its Variables are frozen as "
                               "constants): export a function that only reads them",
                   "assigns a Variable");
  case MG_N_CONST: case MG_N_READ: {
    mg_tensor *t = n->tensor;
    if (n->kind == MG_N_READ && (e->st = mg_variable_read(n->tensor, &t))) return -1; /* frozen: its value now */
    const char *name = ex_tensor(e, t);
    int weak = n->kind == MG_N_CONST && (t->flags & MG_TF_WEAK);
    if (n->kind == MG_N_READ) mg_tensor_release(t);
    if (!name) return ex_fail(e, MG_ENOMEM, "export: out of memory%s", "");
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", "const");
    cJSON_AddStringToObject(o, "tensor", name);
    if (weak) cJSON_AddBoolToObject(o, "weak", 1);
    fid[n->out0] = (*next)++;
    break;
  }
  case MG_N_OP: {
    const mg_opinfo *info = mg_op_info(n->op);
    if (info->flags & MG_STATE)
      return ex_fail(e, MG_EARG, "export: the graph updates a Variable (op '%s', an optimizer step); a graph file "
                                 "holds a pure function", info->name);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "op", info->name);
    cJSON_AddItemToObject(o, "in", ex_in(n->nin, n->in, fid));
    if (info->nattrs && n->attrs && n->attrs->set) cJSON_AddItemToObject(o, "attrs", ex_attrs(n->op, n->attrs));
    fid[n->out0] = (*next)++;
    break;
  }
  case MG_N_FUSED: {  /* the chain it stands for, op by op (results agree bit for bit: fused.c) */
    const mg_fused *p = n->ud;
    int regs[MG_FUSED_MAX_INSTR];
    for (int t = 0; t < p->ninstr; t++) {
      const mg_opinfo *info = mg_op_info(p->code[t].op);
      int ops[2] = {p->code[t].a, p->code[t].b}, nops = info->nin == 2 ? 2 : 1;
      cJSON *in = cJSON_CreateArray(), *x = cJSON_CreateObject();
      for (int k = 0; k < nops; k++) {
        int r = ops[k];
        int id = r >= 0 ? (r < t ? regs[r] : -1) : (-1 - r < n->nin ? fid[n->in[-1 - r]] : -1);
        if (id < 0) {
          cJSON_Delete(in);
          cJSON_Delete(x);
          return ex_fail(e, MG_ESTATE, "export: %s: a fused node's program is malformed", g->name);
        }
        cJSON_AddItemToArray(in, cJSON_CreateNumber(id));
      }
      cJSON_AddStringToObject(x, "op", info->name);
      cJSON_AddItemToObject(x, "in", in);
      cJSON_AddItemToArray(nodes, x);
      regs[t] = (*next)++;
    }
    fid[n->out0] = regs[p->ninstr - 1];
    return 0;
  }
  case MG_N_COND: case MG_N_WHILE: {
    if (n->kind == MG_N_WHILE && n->nout != n->nvars)
      return ex_fail(e, MG_EARG, "export: %s: a while loop keeps its iterations for a gradient; export the forward "
                                 "function only", g->name);
    cJSON *s0 = ex_graph(e, n->sub[0], depth + 1), *s1 = s0 ? ex_graph(e, n->sub[1], depth + 1) : NULL;
    if (!s0 || !s1) {
      cJSON_Delete(s0);
      return -1;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", n->kind == MG_N_COND ? "cond" : "while");
    cJSON_AddItemToObject(o, "in", ex_in(n->nin, n->in, fid));
    if (n->kind == MG_N_WHILE) {
      cJSON_AddNumberToObject(o, "nvars", n->nvars);
      cJSON_AddItemToObject(o, "max_iter", ex_int(n->max_iter));
    }
    cJSON_AddItemToObject(o, n->kind == MG_N_COND ? "then" : "cond", s0);
    cJSON_AddItemToObject(o, n->kind == MG_N_COND ? "else" : "body", s1);
    for (int k = 0; k < n->nout; k++) fid[n->out0 + k] = (*next)++;
    break;
  }
  }
  if (!o) return ex_fail(e, MG_ENOMEM, "export: out of memory%s", "");
  cJSON_AddItemToArray(nodes, o);
  return 0;
}

static cJSON *ex_graph(ex_state *e, const mg_graph *g, int depth) {
  if (depth > GF_MAX_DEPTH) {
    ex_fail(e, MG_EARG, "export: control flow nested more than 16 deep in %s", g->name);
    return NULL;
  }
  int *fid = malloc((size_t)(g->nvalues ? g->nvalues : 1) * sizeof *fid);
  cJSON *o = cJSON_CreateObject(), *ins = cJSON_CreateArray(), *nodes = cJSON_CreateArray(), *outs;
  int next = 0;
  if (!fid || !o || !ins || !nodes) goto oom;
  for (int v = 0; v < g->nvalues; v++) fid[v] = -1;
  for (int k = 0; k < g->ninputs; k++) {
    const mg_gvalue *val = &g->values[g->inputs[k]];
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "dtype", mg_dtype_name((mg_dtype)val->dtype));
    cJSON_AddItemToObject(s, "shape", ex_ints(val->ndim, val->shape));
    cJSON_AddItemToArray(ins, s);
    fid[g->inputs[k]] = next++;
  }
  for (int k = 0; k < g->ncaptures; k++) fid[g->captures[k].inner] = next++;
  cJSON_AddItemToObject(o, "inputs", ins);
  ins = NULL;
  cJSON_AddNumberToObject(o, "captures", g->ncaptures);
  for (int i = 0; i < g->nnodes; i++)
    if (ex_node(e, g, &g->nodes[i], fid, &next, nodes, depth) < 0) goto fail;
  cJSON_AddItemToObject(o, "nodes", nodes);
  nodes = NULL;
  if (!(outs = cJSON_CreateArray())) goto oom;
  for (int k = 0; k < g->noutputs; k++) {
    if (fid[g->outputs[k]] < 0) {
      ex_fail(e, MG_ESTATE, "export: %s: an output is not defined", g->name);
      cJSON_Delete(outs);
      goto fail;
    }
    cJSON_AddItemToArray(outs, cJSON_CreateNumber(fid[g->outputs[k]]));
  }
  cJSON_AddItemToObject(o, "outputs", outs);
  free(fid);
  return o;
oom:
  ex_fail(e, MG_ENOMEM, "export: out of memory%s", "");
fail:
  free(fid);
  cJSON_Delete(o);
  cJSON_Delete(ins);
  cJSON_Delete(nodes);
  return NULL;
}

static int valid_name(const char *s) { return s && *s && strlen(s) < 256; }

mg_status mg_graph_export(mg_ctx *ctx, const mg_graph *g, const char *path, const char *const *in_names,
                          const char *const *out_names, int nmeta, const char *const *keys, const char *const *vals) {
  ex_state e = {0};
  if (!g || !path) return mg_seterror(MG_EARG, "export: no graph or no path");
  if (!g->finished) return mg_seterror(MG_ESTATE, "export: %s is still being traced", g->name);
  for (int k = 0; k < nmeta; k++)
    if (!keys || !vals || !keys[k] || !vals[k] || strcmp(keys[k], GF_KEY) == 0)
      return mg_seterror(MG_EARG, "export: metadata entry %d has no key or value, or is the reserved key '%s'", k + 1,
                         GF_KEY);
  cJSON *root = cJSON_CreateObject(), *gj = root ? ex_graph(&e, g, 0) : NULL;
  if (!gj) {
    cJSON_Delete(root);
    if (!e.st) e.st = mg_seterror(MG_ENOMEM, "export: out of memory");
    goto done;
  }
  cJSON_AddStringToObject(root, "format", GF_FORMAT);
  cJSON_AddNumberToObject(root, "version", GF_VERSION);
  cJSON_AddNumberToObject(root, "index_base", ctx ? mg_ctx_index_base(ctx) : 0);
  cJSON_AddStringToObject(root, "name", g->name);
  for (int io = 0; io < 2; io++) {
    const char *const *names = io ? out_names : in_names;
    int n = io ? g->noutputs : g->ninputs;
    cJSON *a = cJSON_AddArrayToObject(root, io ? "output_names" : "input_names");
    for (int k = 0; k < n; k++) {
      char buf[32];
      snprintf(buf, sizeof buf, io ? "output_%d" : "input_%d", k + 1);
      const char *nm = names && names[k] ? names[k] : buf;
      if (!valid_name(nm)) {
        e.st = mg_seterror(MG_EARG, "export: %s name %d is empty or longer than 255 bytes", io ? "output" : "input", k + 1);
        cJSON_Delete(gj);
        cJSON_Delete(root);
        goto done;
      }
      for (int j = 0; j < k && names; j++)
        if (names[j] && strcmp(names[j], nm) == 0) {
          e.st = mg_seterror(MG_EARG, "export: two %ss are named '%s'", io ? "output" : "input", nm);
          cJSON_Delete(gj);
          cJSON_Delete(root);
          goto done;
        }
      cJSON_AddItemToArray(a, cJSON_CreateString(nm));
    }
  }
  cJSON_AddItemToObject(root, "graph", gj);
  char *text = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!text) {
    e.st = mg_seterror(MG_ENOMEM, "export: out of memory");
    goto done;
  }
  const char **mk = malloc((size_t)(nmeta + 1) * sizeof *mk), **mv = malloc((size_t)(nmeta + 1) * sizeof *mv);
  if (!mk || !mv) {
    e.st = mg_seterror(MG_ENOMEM, "export: out of memory");
  } else {
    mk[0] = GF_KEY;
    mv[0] = text;
    for (int k = 0; k < nmeta; k++) {
      mk[k + 1] = keys[k];
      mv[k + 1] = vals[k];
    }
    e.st = mg_safetensors_save(path, e.n, (const char *const *)e.names, e.tensors, nmeta + 1, mk, mv);
    if (e.st) {
      char why[512];
      snprintf(why, sizeof why, "%s", mg_last_error());
      e.st = mg_seterror(e.st, "export: %s", why);
    }
  }
  free(mk);
  free(mv);
  free(text);
done:
  for (int k = 0; k < e.n; k++) {
    mg_tensor_release(e.tensors[k]);
    free(e.names[k]);
  }
  free(e.tensors);
  free(e.names);
  return e.st;
}

/* ---- load ----------------------------------------------------------------------------- */

typedef struct ld_state {
  mg_ctx *ctx;
  const char *what;
  const mg_tensorfile *file;
  int *order;                     /* tensor indices sorted by name */
  int ntensors;
  unsigned char *weak_use;        /* per tensor: 0 unused, 1 plain, 2 weak */
  int64_t probes[MG_PROBE_COUNT]; /* file probe k -> this trace's probe size (0: not yet) */
  int64_t bytes;                  /* static bytes of the values so far */
  int nodes;
  char path[256];                 /* where in the file: "graph.nodes[3].body" */
} ld_state;

static mg_status ld_err(ld_state *L, mg_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static mg_status ld_err(ld_state *L, mg_status st, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return mg_seterror(st, "load: %s: %s: %s", L->what, L->path, msg);
}

/* An engine error (mg_apply's, say) with the position in the file before it. */
static mg_status ld_wrap(ld_state *L, mg_status st) {
  char why[600];
  snprintf(why, sizeof why, "%s", mg_last_error());
  return ld_err(L, st, "%s", why);
}

/* An integer: a number (exact, |v| <= 2^53), a decimal string, or "?k" (an
 * unknown size: defined by an input when `define`, else it must be). */
static mg_status ld_int(ld_state *L, const cJSON *j, const char *what, int define, int64_t *out) {
  if (cJSON_IsNumber(j)) {
    double d = j->valuedouble;
    if (!(d == floor(d)) || d > GF_EXACT || d < -GF_EXACT)
      return ld_err(L, MG_EARG, "%s must be an integer, got %g", what, d);
    *out = (int64_t)d;
    if (mg_is_probe(*out))
      return ld_err(L, MG_EARG, "%s is %lld, a number reserved for unknown sizes (write ?k)", what, (long long)*out);
    return MG_OK;
  }
  const char *s = cJSON_IsString(j) ? j->valuestring : NULL;
  if (s && s[0] == '?') {
    char *end;
    long k = strtol(s + 1, &end, 10);
    if (end == s + 1 || *end || k < 0 || k >= MG_PROBE_COUNT)
      return ld_err(L, MG_EARG, "%s: '%s' is not an unknown size ?0 .. ?%d", what, s, MG_PROBE_COUNT - 1);
    if (!L->probes[k] && !define)
      return ld_err(L, MG_EARG, "%s: unknown size %s is not the size of any input", what, s);
    *out = L->probes[k] ? L->probes[k] : GF_FRESH + k;  /* a size an input's placeholder makes (ld_graph) */
    return MG_OK;
  }
  if (s && *s) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*end && !errno && !mg_is_probe(v)) {
      *out = v;
      return MG_OK;
    }
  }
  return ld_err(L, MG_EARG, "%s must be an integer, got %s", what, s ? s : "a non-number");
}

static mg_status ld_ints(ld_state *L, const cJSON *j, const char *what, int max, int define, int64_t *out, int *n) {
  if (!cJSON_IsArray(j)) return ld_err(L, MG_EARG, "%s must be a list of integers", what);
  int c = cJSON_GetArraySize(j);
  if (c > max) return ld_err(L, MG_EARG, "%s has %d entries, at most %d", what, c, max);
  int k = 0;
  for (const cJSON *x = j->child; x; x = x->next, k++) {
    mg_status st = ld_int(L, x, what, define, &out[k]);
    if (st) return st;
  }
  *n = c;
  return MG_OK;
}

static const cJSON *ld_field(const cJSON *o, const char *key) {
  return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static mg_status ld_attrs(ld_state *L, mg_op op, const cJSON *j, mg_attrs *a) {
  const mg_opinfo *info = mg_op_info(op);
  memset(a, 0, sizeof *a);
  if (!j) return MG_OK;
  if (!cJSON_IsObject(j)) return ld_err(L, MG_EARG, "the attributes of '%s' must be an object", info->name);
  for (const cJSON *x = j->child; x; x = x->next) {
    int k = mg_op_attr_index(op, x->string ? x->string : "");
    if (k < 0) return ld_err(L, MG_EARG, "op '%s' has no attribute '%s'", info->name, x->string ? x->string : "");
    if ((a->set >> k) & 1u) return ld_err(L, MG_EARG, "attribute '%s' is given twice", x->string);
    const mg_attr_desc *d = &info->attrs[k];
    char what[64];
    snprintf(what, sizeof what, "attribute '%s'", d->name);
    mg_status st = MG_OK;
    a->v[k].n = 1;
    switch (d->kind) {
    case MG_A_FLOAT:
      if (cJSON_IsNumber(x)) a->v[k].f = x->valuedouble;
      else if (cJSON_IsString(x) && !strcmp(x->valuestring, "inf")) a->v[k].f = INFINITY;
      else if (cJSON_IsString(x) && !strcmp(x->valuestring, "-inf")) a->v[k].f = -INFINITY;
      else if (cJSON_IsString(x) && !strcmp(x->valuestring, "nan")) a->v[k].f = NAN;
      else st = ld_err(L, MG_EARG, "%s must be a number", what);
      break;
    case MG_A_BOOL:
      if (!cJSON_IsBool(x)) st = ld_err(L, MG_EARG, "%s must be true or false", what);
      a->v[k].i[0] = cJSON_IsTrue(x);
      break;
    case MG_A_DTYPE: {
      mg_dtype dt;
      if (!cJSON_IsString(x) || !mg_dtype_from_name(x->valuestring, &dt))
        st = ld_err(L, MG_EARG, "%s must be a dtype name", what);
      else a->v[k].i[0] = dt;
      break;
    }
    case MG_A_ENUM: {
      int e = -1;
      for (int q = 0; cJSON_IsString(x) && q < d->nenums; q++)
        if (!strcmp(x->valuestring, d->enums[q])) e = q;
      if (e < 0) st = ld_err(L, MG_EARG, "%s must be one of the op's names for it", what);
      a->v[k].i[0] = e;
      break;
    }
    case MG_A_AXES: case MG_A_SHAPE: case MG_A_INTS:
      st = ld_ints(L, x, what, MG_MAX_LIST, 0, a->v[k].i, &a->v[k].n);
      break;
    default: st = ld_int(L, x, what, 0, &a->v[k].i[0]); break;
    }
    if (st) return st;
    a->set |= 1u << k;
  }
  return MG_OK;
}

static int name_cmp(const void *x, const void *y, void *ud) {
  const mg_tensorfile *f = ud;
  return strcmp(mg_tensorfile_name(f, *(const int *)x), mg_tensorfile_name(f, *(const int *)y));
}

static mg_tensor *ld_tensor(ld_state *L, const char *name, int *index) {
  int lo = 0, hi = L->ntensors - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2, c = strcmp(name, mg_tensorfile_name(L->file, L->order[mid]));
    if (!c) {
      *index = L->order[mid];
      return mg_tensorfile_tensor(L->file, *index);
    }
    if (c < 0) hi = mid - 1;
    else lo = mid + 1;
  }
  return NULL;
}

/* The bytes of a value of this meta (an unknown size counts as 1), added to
 * the file's total, which must stay under GF_MAX_BYTES. */
static mg_status ld_budget(ld_state *L, mg_dtype dt, int ndim, const int64_t *shape) {
  int64_t n = (int64_t)mg_dtype_size(dt);
  for (int d = 0; d < ndim; d++) {
    int64_t s = mg_is_probe(shape[d]) ? 1 : shape[d];
    if (s < 0 || (s && n > GF_MAX_BYTES / s)) n = GF_MAX_BYTES + 1;
    else n *= s;
  }
  L->bytes += n > GF_MAX_BYTES ? GF_MAX_BYTES + 1 : n;
  if (L->bytes > GF_MAX_BYTES)
    return ld_err(L, MG_ESHAPE, "the graph's values need more than %lld bytes (a bound on what a file may make the "
                                "loader allocate)", (long long)GF_MAX_BYTES);
  return MG_OK;
}

typedef struct ld_vals {
  mg_tensor **v;
  int n, cap;
} ld_vals;

static int vals_push(ld_vals *vs, mg_tensor *t) {
  if (vs->n == vs->cap) {
    int cap = vs->cap ? 2 * vs->cap : 32;
    mg_tensor **p = realloc(vs->v, (size_t)cap * sizeof *p);
    if (!p) {
      mg_tensor_release(t);
      return -1;
    }
    vs->v = p;
    vs->cap = cap;
  }
  vs->v[vs->n++] = t;
  return 0;
}

static void vals_free(ld_vals *vs) {
  for (int k = 0; k < vs->n; k++) mg_tensor_release(vs->v[k]);
  free(vs->v);
}

/* The value ids of node field "in" (each an earlier value). */
static mg_status ld_in(ld_state *L, const cJSON *j, const ld_vals *vs, mg_tensor **ins, int max, int *n) {
  if (!cJSON_IsArray(j)) return ld_err(L, MG_EARG, "\"in\" must be a list of value ids");
  int c = cJSON_GetArraySize(j);
  if (c > max) return ld_err(L, MG_EARG, "\"in\" has %d entries, at most %d", c, max);
  int k = 0;
  for (const cJSON *x = j->child; x; x = x->next, k++) {
    double d = cJSON_IsNumber(x) ? x->valuedouble : -1;
    if (!(d >= 0 && d < vs->n && d == floor(d)))
      return ld_err(L, MG_EARG, "input %d names value %g; the values defined before this node are 0 .. %d", k + 1,
                    cJSON_IsNumber(x) ? d : -1.0, vs->n - 1);
    ins[k] = vs->v[(int)d];
  }
  *n = c;
  return MG_OK;
}

#define LD_MAX_IN 4096

static mg_status ld_graph(ld_state *L, const cJSON *G, int depth, int ncap, mg_tensor *const *caps, int *nout,
                          mg_tensor ***outs);

/* Loads subgraph G of a cond/while node as a nested trace; *sub is new. */
static mg_status ld_sub(ld_state *L, const cJSON *G, const char *field, int depth, int ncap, mg_tensor *const *caps,
                        mg_graph **sub) {
  size_t len = strlen(L->path);
  snprintf(L->path + len, sizeof L->path - len, ".%s", field);
  mg_status st = mg_trace_begin(L->ctx, field, sub);
  if (st) return ld_wrap(L, st);
  int n = 0;
  mg_tensor **outs = NULL;
  st = ld_graph(L, G, depth + 1, ncap, caps, &n, &outs);
  if (st) {
    mg_trace_abort(L->ctx);
    mg_graph_release(*sub);
    *sub = NULL;
  } else if ((st = mg_trace_end(L->ctx, *sub, n, outs))) {
    st = ld_wrap(L, st);
    mg_graph_release(*sub);
    *sub = NULL;
  }
  for (int k = 0; k < n; k++) mg_tensor_release(outs[k]);
  free(outs);
  L->path[len] = 0;
  return st;
}

static int ld_captures(const cJSON *G) {
  const cJSON *c = ld_field(G, "captures");
  double d = cJSON_IsNumber(c) ? c->valuedouble : -1;
  return d >= 0 && d <= LD_MAX_IN && d == floor(d) ? (int)d : -1;
}

static mg_status ld_control(ld_state *L, const cJSON *j, int is_while, ld_vals *vs, int depth) {
  mg_tensor *ins[LD_MAX_IN];
  int nin, nvars = 1;
  const cJSON *s0 = ld_field(j, is_while ? "cond" : "then"), *s1 = ld_field(j, is_while ? "body" : "else");
  mg_status st = ld_in(L, ld_field(j, "in"), vs, ins, LD_MAX_IN, &nin);
  if (st) return st;
  if (is_while) {
    const cJSON *nv = ld_field(j, "nvars");
    double d = cJSON_IsNumber(nv) ? nv->valuedouble : -1;
    if (!(d >= 1 && d <= nin && d == floor(d))) return ld_err(L, MG_EARG, "\"nvars\" must be 1 .. %d", nin);
    nvars = (int)d;
  }
  int want = is_while ? nvars : 0;  /* a branch takes no inputs; a loop's graphs take its variables */
  if (cJSON_GetArraySize(ld_field(s0, "inputs")) != want || cJSON_GetArraySize(ld_field(s1, "inputs")) != want)
    return ld_err(L, MG_EARG, "the \"%s\" and \"%s\" graphs must take %d inputs", is_while ? "cond" : "then",
                  is_while ? "body" : "else", want);
  int c0 = ld_captures(s0), c1 = ld_captures(s1);
  if (c0 < 0 || c1 < 0) return ld_err(L, MG_EARG, "\"%s\" and \"%s\" must be graphs with a \"captures\" count",
                                      is_while ? "cond" : "then", is_while ? "body" : "else");
  if (nvars + c0 + c1 != nin)
    return ld_err(L, MG_EARG, "the node has %d inputs but its subgraphs take %d + %d captures after %d %s", nin, c0, c1,
                  nvars, is_while ? "loop variables" : "predicate");
  mg_graph *g0 = NULL, *g1 = NULL;
  if ((st = ld_sub(L, s0, is_while ? "cond" : "then", depth, c0, ins + nvars, &g0))) return st;
  if ((st = ld_sub(L, s1, is_while ? "body" : "else", depth, c1, ins + nvars + c0, &g1))) {
    mg_graph_release(g0);
    return st;
  }
  int n = is_while ? nvars : mg_graph_noutputs(g0);
  mg_tensor **outs = calloc((size_t)(n > 0 ? n : 1), sizeof *outs);
  if (!outs) st = ld_err(L, MG_ENOMEM, "out of memory");
  else if (is_while) {
    int64_t max_iter = -1;
    const cJSON *mi = ld_field(j, "max_iter");
    if (mi && (st = ld_int(L, mi, "\"max_iter\"", 0, &max_iter))) goto done;
    if (!st && (st = mg_trace_while(L->ctx, g0, g1, nvars, ins, max_iter < 0 ? -1 : max_iter, outs))) st = ld_wrap(L, st);
  } else if ((st = mg_trace_cond(L->ctx, ins[0], g0, g1, n, outs))) {
    st = ld_wrap(L, st);
  }
  for (int k = 0; k < n && !st; k++) {
    const mg_tensor *t = outs[k];
    if ((st = ld_budget(L, (mg_dtype)t->dtype, t->ndim, t->shape))) break;
  }
  for (int k = 0; k < n; k++) {
    if (!st && vals_push(vs, outs[k]) < 0) st = ld_err(L, MG_ENOMEM, "out of memory");
    else if (st) mg_tensor_release(outs[k]);
  }
done:
  free(outs);
  mg_graph_release(g0);
  mg_graph_release(g1);
  return st;
}

static mg_status ld_op(ld_state *L, const cJSON *j, ld_vals *vs) {
  const cJSON *name = ld_field(j, "op");
  if (!cJSON_IsString(name)) return ld_err(L, MG_EARG, "\"op\" must be an op name");
  mg_op op = mg_op_lookup(name->valuestring);
  if (op == MG_OP_COUNT) return ld_err(L, MG_EARG, "unknown op '%.64s' (not in this engine's op table)", name->valuestring);
  const mg_opinfo *info = mg_op_info(op);
  if (info->flags & MG_STATE)
    return ld_err(L, MG_EARG, "op '%s' updates a Variable; a graph file holds a pure function", info->name);
  mg_tensor *ins[LD_MAX_IN];
  int nin;
  mg_attrs a;
  mg_status st = ld_in(L, ld_field(j, "in"), vs, ins, LD_MAX_IN, &nin);
  if (!st) st = ld_attrs(L, op, ld_field(j, "attrs"), &a);
  if (st) return st;
  if (info->flags & MG_VARIADIC ? nin < 1 : nin != info->nin)
    return ld_err(L, MG_EARG, "op '%s' takes %s%d input%s, the node gives %d", info->name,
                  info->flags & MG_VARIADIC ? "at least " : "", info->flags & MG_VARIADIC ? 1 : info->nin,
                  info->nin == 1 || info->flags & MG_VARIADIC ? "" : "s", nin);
  /* its size first (an op on constants runs now, a creation op may be folded at the end) */
  mg_attrs full = a;
  if (info->nattrs) mg_attrs_defaults(op, &full);
  mg_call call = {L->ctx, op, info, ins, nin, &full};
  mg_meta m;
  m.cast_rest = MG_NDTYPES;
  for (int i = 0; i < MG_CAST_SLOTS; i++) m.cast[i] = MG_NDTYPES;
  if ((st = mg_op_infer(op)(&call, &m))) return ld_wrap(L, st);
  if ((st = ld_budget(L, m.dtype, m.ndim, m.shape))) return st;
  mg_tensor *out;
  if ((st = mg_apply(L->ctx, op, ins, nin, &a, &out))) return ld_wrap(L, st);
  return vals_push(vs, out) < 0 ? ld_err(L, MG_ENOMEM, "out of memory") : MG_OK;
}

static mg_status ld_const(ld_state *L, const cJSON *j, ld_vals *vs) {
  const cJSON *name = ld_field(j, "tensor"), *weak = ld_field(j, "weak");
  int idx;
  if (!cJSON_IsString(name)) return ld_err(L, MG_EARG, "a constant must name its tensor (\"tensor\")");
  mg_tensor *t = ld_tensor(L, name->valuestring, &idx);
  if (!t) return ld_err(L, MG_EARG, "constant tensor '%.64s' is not in the file", name->valuestring);
  if (weak && !cJSON_IsBool(weak)) return ld_err(L, MG_EARG, "\"weak\" must be true or false");
  int w = cJSON_IsTrue(weak) ? 2 : 1;
  if (w == 2 && t->ndim != 0) return ld_err(L, MG_EARG, "constant '%.64s' is marked weak but is not a scalar", name->valuestring);
  if (L->weak_use[idx] && L->weak_use[idx] != w)
    return ld_err(L, MG_EARG, "constant '%.64s' is used both as a weak scalar and as a tensor", name->valuestring);
  L->weak_use[idx] = (unsigned char)w;
  if (w == 2) t->flags |= MG_TF_WEAK;
  mg_tensor_retain(t);
  return vals_push(vs, t) < 0 ? ld_err(L, MG_ENOMEM, "out of memory") : MG_OK;
}

static mg_status ld_graph(ld_state *L, const cJSON *G, int depth, int ncap, mg_tensor *const *caps, int *nout,
                          mg_tensor ***outs) {
  if (depth > GF_MAX_DEPTH) return ld_err(L, MG_EARG, "control flow nested more than %d deep", GF_MAX_DEPTH);
  if (!cJSON_IsObject(G)) return ld_err(L, MG_EARG, "a graph must be an object");
  const cJSON *ins = ld_field(G, "inputs"), *nodes = ld_field(G, "nodes"), *os = ld_field(G, "outputs");
  if (!cJSON_IsArray(ins) || !cJSON_IsArray(nodes) || !cJSON_IsArray(os))
    return ld_err(L, MG_EARG, "a graph needs \"inputs\", \"nodes\" and \"outputs\" lists");
  if (ld_captures(G) != ncap) return ld_err(L, MG_EARG, "\"captures\" must be %d here", ncap);
  ld_vals vs = {0};
  mg_status st = MG_OK;
  size_t len = strlen(L->path);
  int k = 0;
  for (const cJSON *x = ins->child; x && !st; x = x->next, k++) {
    snprintf(L->path + len, sizeof L->path - len, ".inputs[%d]", k);
    if (++L->nodes > GF_MAX_NODES) {
      st = ld_err(L, MG_EARG, "more than %d nodes and inputs", GF_MAX_NODES);
      break;
    }
    const cJSON *dt = ld_field(x, "dtype");
    mg_dtype dtype;
    int64_t shape[MG_MAX_DIMS];
    int nd;
    mg_tensor *t;
    if (!cJSON_IsString(dt) || !mg_dtype_from_name(dt->valuestring, &dtype)) {
      st = ld_err(L, MG_EARG, "\"dtype\" must be a dtype name");
      break;
    }
    if ((st = ld_ints(L, ld_field(x, "shape"), "\"shape\"", MG_MAX_DIMS, 1, shape, &nd))) break;
    for (int d = 0; d < nd && !st; d++) {
      if (shape[d] >= GF_FRESH && shape[d] < GF_FRESH + MG_PROBE_COUNT) {  /* ?k met first: a new probe */
        int pk = (int)(shape[d] - GF_FRESH);
        if (!L->probes[pk]) {
          if (L->ctx->next_probe >= MG_PROBE_COUNT) {
            st = ld_err(L, MG_ESHAPE, "more than %d unknown sizes", MG_PROBE_COUNT);
            break;
          }
          L->probes[pk] = MG_PROBE_BASE - L->ctx->next_probe++;
          for (mg_graph *p = L->ctx->traces[L->ctx->ntraces - 1]; p; p = p->parent) p->has_probes = 1;
        }
        shape[d] = L->probes[pk];
      } else if (shape[d] < 0) {
        st = ld_err(L, MG_ESHAPE, "size %d is %lld: sizes are >= 0, or ?k for an unknown one", d + 1, (long long)shape[d]);
      }
    }
    if (st) break;
    if ((st = mg_trace_placeholder(L->ctx, dtype, nd, shape, &t))) {
      st = ld_wrap(L, st);
      break;
    }
    if (vals_push(&vs, t) < 0) st = ld_err(L, MG_ENOMEM, "out of memory");
  }
  L->path[len] = 0;
  for (int c = 0; c < ncap && !st; c++) {
    mg_tensor_retain(caps[c]);
    if (vals_push(&vs, caps[c]) < 0) st = ld_err(L, MG_ENOMEM, "out of memory");
  }
  k = 0;
  for (const cJSON *x = nodes->child; x && !st; x = x->next, k++) {
    snprintf(L->path + len, sizeof L->path - len, ".nodes[%d]", k);
    if (++L->nodes > GF_MAX_NODES) {
      st = ld_err(L, MG_EARG, "more than %d nodes", GF_MAX_NODES);
      break;
    }
    const cJSON *kind = ld_field(x, "kind");
    if (!cJSON_IsObject(x)) st = ld_err(L, MG_EARG, "a node must be an object");
    else if (ld_field(x, "op")) st = ld_op(L, x, &vs);
    else if (!cJSON_IsString(kind)) st = ld_err(L, MG_EARG, "a node needs an \"op\" or a \"kind\"");
    else if (!strcmp(kind->valuestring, "const")) st = ld_const(L, x, &vs);
    else if (!strcmp(kind->valuestring, "cond")) st = ld_control(L, x, 0, &vs, depth);
    else if (!strcmp(kind->valuestring, "while")) st = ld_control(L, x, 1, &vs, depth);
    else st = ld_err(L, MG_EARG, "unknown node kind '%.32s' (a graph file holds op, const, cond and while nodes)",
                     kind->valuestring);
  }
  L->path[len] = 0;
  int n = cJSON_GetArraySize(os);
  mg_tensor **o = st ? NULL : calloc((size_t)(n > 0 ? n : 1), sizeof *o);
  if (!st && !o) st = ld_err(L, MG_ENOMEM, "out of memory");
  if (!st && n > LD_MAX_IN) st = ld_err(L, MG_EARG, "more than %d outputs", LD_MAX_IN);
  if (!st) {
    snprintf(L->path + len, sizeof L->path - len, ".outputs");
    k = 0;
    for (const cJSON *x = os->child; x && !st; x = x->next, k++) {
      double d = cJSON_IsNumber(x) ? x->valuedouble : -1;
      if (!(d >= 0 && d < vs.n && d == floor(d))) st = ld_err(L, MG_EARG, "output %d names no value", k + 1);
      else {
        o[k] = vs.v[(int)d];
        mg_tensor_retain(o[k]);
      }
    }
    L->path[len] = 0;
  }
  if (st && o) {
    for (int i = 0; i < n; i++) mg_tensor_release(o[i]);
    free(o);
    o = NULL;
  }
  vals_free(&vs);
  *outs = o;
  *nout = st ? 0 : n;
  return st;
}

/* Every object of the JSON has at most 64 members, each key once (a key
 * given twice would mean whatever a reader picked). */
static const char *ld_check_keys(const cJSON *j) {
  for (const cJSON *x = j ? j->child : NULL; x; x = x->next) {
    if (cJSON_IsObject(j)) {
      int n = 0;
      for (const cJSON *y = j->child; y != x; y = y->next, n++)
        if (n >= 64 || (x->string && y->string && !strcmp(x->string, y->string))) return n >= 64 ? "" : x->string;
    }
    const char *bad = ld_check_keys(x);
    if (bad) return bad;
  }
  return NULL;
}

/* The names (a list of n distinct strings) of field `key`. */
static mg_status ld_names(ld_state *L, const cJSON *root, const char *key, int n, char ***out) {
  const cJSON *a = ld_field(root, key);
  snprintf(L->path, sizeof L->path, "%s", key);
  if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n)
    return ld_err(L, MG_EARG, "must be a list of %d names (one per %s)", n, strcmp(key, "input_names") ? "output" : "input");
  char **names = calloc((size_t)(n > 0 ? n : 1), sizeof *names);
  if (!names) return ld_err(L, MG_ENOMEM, "out of memory");
  *out = names;
  int k = 0;
  for (const cJSON *x = a->child; x; x = x->next, k++) {
    if (!cJSON_IsString(x) || !valid_name(x->valuestring)) return ld_err(L, MG_EARG, "name %d must be a non-empty string", k + 1);
    for (int j = 0; j < k; j++)
      if (!strcmp(names[j], x->valuestring)) return ld_err(L, MG_EARG, "'%.64s' is named twice", x->valuestring);
    if (!(names[k] = strdup(x->valuestring))) return ld_err(L, MG_ENOMEM, "out of memory");
  }
  return MG_OK;
}

mg_status mg_graph_load_buffer(mg_ctx *ctx, const uint8_t *buf, size_t len, const char *what, mg_graph **out) {
  *out = NULL;
  if (!ctx) return mg_seterror(MG_EARG, "load: no context");
  if (!what) what = "<buffer>";
  if (mg_tracing(ctx)) return mg_seterror(MG_ESTATE, "load: %s: cannot load a graph file while a function is traced", what);
  mg_tensorfile *f = NULL;
  mg_status st = mg_safetensors_parse(buf, len, what, &f);
  if (st) {
    char why[600];
    snprintf(why, sizeof why, "%s", mg_last_error());
    return mg_seterror(st, "load: %s", why);
  }
  ld_state L = {.ctx = ctx, .what = what, .file = f, .ntensors = mg_tensorfile_count(f)};
  snprintf(L.path, sizeof L.path, "header");
  const char *text = NULL;
  for (int k = 0; k < mg_tensorfile_nmeta(f); k++)
    if (!strcmp(mg_tensorfile_meta_key(f, k), GF_KEY)) text = mg_tensorfile_meta_value(f, k);
  cJSON *root = NULL;
  mg_graph *g = NULL;
  mg_gfile *gf = calloc(1, sizeof *gf);
  int base = ctx->index_base, traced = 0;
  L.order = malloc((size_t)(L.ntensors ? L.ntensors : 1) * sizeof *L.order);
  L.weak_use = calloc((size_t)(L.ntensors ? L.ntensors : 1), 1);
  if (!gf || !L.order || !L.weak_use) {
    st = mg_seterror(MG_ENOMEM, "load: out of memory");
    goto done;
  }
  for (int k = 0; k < L.ntensors; k++) L.order[k] = k;
  qsort_r(L.order, (size_t)L.ntensors, sizeof *L.order, name_cmp, f);
  if (!text) {
    st = ld_err(&L, MG_EARG, "not a moongrad graph file (its metadata has no \"%s\" entry; mg.export writes one)", GF_KEY);
    goto done;
  }
  if (!(root = cJSON_Parse(text))) {
    st = ld_err(&L, MG_EARG, "the \"%s\" metadata is not valid JSON", GF_KEY);
    goto done;
  }
  const char *dup = ld_check_keys(root);
  if (dup) {
    st = *dup ? ld_err(&L, MG_EARG, "the graph JSON gives key \"%.64s\" twice in one object", dup)
              : ld_err(&L, MG_EARG, "the graph JSON has an object of more than 64 members");
    goto done;
  }
  const cJSON *fmt = ld_field(root, "format"), *ver = ld_field(root, "version"), *ib = ld_field(root, "index_base"),
              *name = ld_field(root, "name"), *gj = ld_field(root, "graph");
  if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, GF_FORMAT)) {
    st = ld_err(&L, MG_EARG, "\"format\" must be \"%s\"", GF_FORMAT);
    goto done;
  }
  if (!cJSON_IsNumber(ver) || ver->valuedouble != GF_VERSION) {
    st = ld_err(&L, MG_EARG, "format version %g; this engine reads version %d (a newer moongrad wrote it?)",
                cJSON_IsNumber(ver) ? ver->valuedouble : -1.0, GF_VERSION);
    goto done;
  }
  if (!cJSON_IsNumber(ib) || (ib->valuedouble != 0 && ib->valuedouble != 1)) {
    st = ld_err(&L, MG_EARG, "\"index_base\" must be 0 or 1");
    goto done;
  }
  gf->index_base = (int)ib->valuedouble;
  mg_ctx_set_index_base(ctx, gf->index_base);  /* the attributes' axes count from it */
  ctx->paused++;                                /* no tape records the load */
  st = mg_trace_begin(ctx, cJSON_IsString(name) && valid_name(name->valuestring) ? name->valuestring : "graph", &g);
  if (st) {
    st = ld_wrap(&L, st);
  } else {
    traced = 1;
    int n = 0;
    mg_tensor **outs = NULL;
    snprintf(L.path, sizeof L.path, "graph");
    st = ld_graph(&L, gj, 0, 0, NULL, &n, &outs);
    if (st) {
      mg_trace_abort(ctx);
    } else if ((st = mg_trace_end(ctx, g, n, outs))) {
      st = ld_wrap(&L, st);
    }
    for (int k = 0; k < n; k++) mg_tensor_release(outs[k]);
    free(outs);
  }
  if (!st && (st = mg_graph_optimize(ctx, g, MG_PASS_ALL))) st = ld_wrap(&L, st);
  ctx->paused--;
  mg_ctx_set_index_base(ctx, base);
  if (st) goto done;
  gf->nin = mg_graph_ninputs(g);
  gf->nout = mg_graph_noutputs(g);
  if ((st = ld_names(&L, root, "input_names", gf->nin, &gf->in_names))) goto done;
  if ((st = ld_names(&L, root, "output_names", gf->nout, &gf->out_names))) goto done;
  int nm = mg_tensorfile_nmeta(f);
  gf->keys = calloc((size_t)(nm ? nm : 1), sizeof *gf->keys);
  gf->vals = calloc((size_t)(nm ? nm : 1), sizeof *gf->vals);
  if (!gf->keys || !gf->vals) {
    st = mg_seterror(MG_ENOMEM, "load: out of memory");
    goto done;
  }
  for (int k = 0; k < nm; k++) {
    if (!strcmp(mg_tensorfile_meta_key(f, k), GF_KEY)) continue;
    gf->keys[gf->nmeta] = strdup(mg_tensorfile_meta_key(f, k));
    gf->vals[gf->nmeta] = strdup(mg_tensorfile_meta_value(f, k));
    if (!gf->keys[gf->nmeta] || !gf->vals[gf->nmeta]) {
      free(gf->keys[gf->nmeta]);
      free(gf->vals[gf->nmeta]);
      st = mg_seterror(MG_ENOMEM, "load: out of memory");
      goto done;
    }
    gf->nmeta++;
  }
  g->file = gf;
  gf = NULL;
  *out = g;
  g = NULL;
done:
  (void)traced;
  mg_gfile_free(gf);
  mg_graph_release(g);
  cJSON_Delete(root);
  free(L.order);
  free(L.weak_use);
  mg_tensorfile_free(f);
  return st;
}

mg_status mg_graph_load(mg_ctx *ctx, const char *path, mg_graph **out) {
  uint8_t *buf;
  size_t len;
  *out = NULL;
  if (!path) return mg_seterror(MG_EARG, "load: no path");
  mg_status st = mg_read_file(path, &buf, &len);
  if (st) {
    char why[600];
    snprintf(why, sizeof why, "%s", mg_last_error());
    return mg_seterror(st, "load: %s", why);
  }
  st = mg_graph_load_buffer(ctx, buf, len, path, out);
  mg_free(buf);
  return st;
}

void mg_graph_free(mg_graph *g) { mg_graph_release(g); }

const char *mg_graph_input_name(const mg_graph *g, int i) {
  return g && g->file && i >= 0 && i < g->file->nin ? g->file->in_names[i] : NULL;
}

const char *mg_graph_output_name(const mg_graph *g, int i) {
  return g && g->file && i >= 0 && i < g->file->nout ? g->file->out_names[i] : NULL;
}

int mg_graph_input_index(const mg_graph *g, const char *name) {
  for (int k = 0; name && g && g->file && k < g->file->nin; k++)
    if (!strcmp(g->file->in_names[k], name)) return k;
  return -1;
}

int mg_graph_output_index(const mg_graph *g, const char *name) {
  for (int k = 0; name && g && g->file && k < g->file->nout; k++)
    if (!strcmp(g->file->out_names[k], name)) return k;
  return -1;
}

int mg_graph_nmetadata(const mg_graph *g) { return g && g->file ? g->file->nmeta : 0; }

const char *mg_graph_metadata_key(const mg_graph *g, int i) {
  return g && g->file && i >= 0 && i < g->file->nmeta ? g->file->keys[i] : NULL;
}

const char *mg_graph_metadata(const mg_graph *g, const char *key) {
  for (int k = 0; key && g && g->file && k < g->file->nmeta; k++)
    if (!strcmp(g->file->keys[k], key)) return g->file->vals[k];
  return NULL;
}
