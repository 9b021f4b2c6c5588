/*
 * graph.c — the staging surface of moongrad.core: tracing, graphs as
 * userdata ("mg.Graph"), running them, control-flow nodes and Lua functions
 * called from inside a graph. stdlib/moongrad/func.lua builds mg.func,
 * mg.cond, mg.while_loop, mg.lua_function and mg.print on top.
 *
 * Lua functions in graphs (mg.lua_function) run through a trampoline under
 * lua_pcall on the thread that called the graph, so a Lua error inside one
 * becomes an engine error instead of a longjmp through the executor.
 */
#include "capi.h"
#include "dim.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MGL_GRAPH "mg.Graph"

typedef struct graph_box {
  mg_graph *g;
} graph_box;

static mg_graph *check_graph(lua_State *L, int idx) {
  graph_box *b = luaL_checkudata(L, idx, MGL_GRAPH);
  if (!b->g) mgL_error(L, "graph: released");
  return b->g;
}

mg_graph *mgL_testgraph(lua_State *L, int idx) {
  graph_box *b = luaL_testudata(L, idx, MGL_GRAPH);
  return b ? b->g : NULL;
}

static void push_graph(lua_State *L, mg_graph *g) {
  graph_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->g = g;
  luaL_setmetatable(L, MGL_GRAPH);
}

static int graph_gc(lua_State *L) {
  graph_box *b = luaL_checkudata(L, 1, MGL_GRAPH);
  mg_graph_release(b->g);
  b->g = NULL;
  return 0;
}

/* A flat Lua list of tensors as an array owned by the Lua stack (userdata). */
static mg_tensor **tensor_list(lua_State *L, int idx, int *n, const char *what) {
  luaL_checktype(L, idx, LUA_TTABLE);
  *n = (int)luaL_len(L, idx);
  mg_tensor **v = lua_newuserdatauv(L, (size_t)(*n > 0 ? *n : 1) * sizeof *v, 0);
  for (int i = 0; i < *n; i++) {
    lua_rawgeti(L, idx, i + 1);
    v[i] = mgL_testtensor(L, -1);
    if (!v[i]) mgL_error(L, "%s: value %d must be a tensor, got %s", what, i + 1, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  return v;
}

static void push_list(lua_State *L, mgL_state *S, mg_tensor **v, int n, int fresh) {
  lua_createtable(L, n, 1);
  for (int i = 0; i < n; i++) {
    mgL_pushtensor(L, S, v[i], fresh);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
}

/* ---- the user's source position ----------------------------------------------------------
 * The engine asks, through its where hook, for the position of the Lua code
 * that made a symbolic tensor (a graph node) or a tape record: the innermost
 * frame outside moongrad's own Lua files, as "file:line". Tape records ask
 * for every op, so the strings are interned per state (keyed by the chunk's
 * source string and the line; the name's length and last bytes are compared
 * too, since a collected chunk's string may be reused) and stay valid until
 * the state closes: records and graphs keep the pointer without copying it. */

#define WHERE_SLOTS_MIN 256
#define WHERE_TAIL 16  /* last bytes of the chunk name compared on a hit */

typedef struct where_entry {
  const char *src;  /* ar.source when interned (identity only) */
  size_t srclen;
  int line;
  char *text;       /* "short_src:line" */
  char tail[WHERE_TAIL];
} where_entry;

static void where_tail(const lua_Debug *ar, char *out) {
  size_t n = ar->srclen < WHERE_TAIL ? ar->srclen : WHERE_TAIL;
  memset(out, 0, WHERE_TAIL);
  memcpy(out, ar->source + ar->srclen - n, n);
}

struct mgL_where {
  size_t cap, n;
  where_entry *slots;
};

static size_t where_hash(const char *src, int line) {
  uintptr_t h = (uintptr_t)src * 0x9E3779B97F4A7C15u ^ (uintptr_t)(unsigned)line * 0xC2B2AE3D27D4EB4Fu;
  return (size_t)(h ^ (h >> 29));
}

static int where_grow(struct mgL_where *w) {
  size_t cap = w->cap ? w->cap * 2 : WHERE_SLOTS_MIN;
  where_entry *slots = calloc(cap, sizeof *slots);
  if (!slots) return 0;
  for (size_t i = 0; i < w->cap; i++) {
    if (!w->slots[i].text) continue;
    size_t j = where_hash(w->slots[i].src, w->slots[i].line) & (cap - 1);
    while (slots[j].text) j = (j + 1) & (cap - 1);
    slots[j] = w->slots[i];
  }
  free(w->slots);
  w->slots = slots;
  w->cap = cap;
  return 1;
}

static const char *where_intern(mgL_state *S, const lua_Debug *ar) {
  struct mgL_where *w = S->where;
  if (!w) return NULL;
  if ((w->n + 1) * 2 > w->cap && !where_grow(w)) return NULL;
  size_t j = where_hash(ar->source, ar->currentline) & (w->cap - 1);
  char tail[WHERE_TAIL];
  where_tail(ar, tail);
  for (; w->slots[j].text; j = (j + 1) & (w->cap - 1)) {
    where_entry *e = &w->slots[j];
    if (e->src == ar->source && e->line == ar->currentline && e->srclen == ar->srclen &&
        memcmp(e->tail, tail, WHERE_TAIL) == 0)
      return e->text;
  }
  char buf[LUA_IDSIZE + 24];
  snprintf(buf, sizeof buf, "%s:%d", ar->short_src, ar->currentline);
  where_entry *e = &w->slots[j];
  if (!(e->text = strdup(buf))) return NULL;
  e->src = ar->source;
  e->srclen = ar->srclen;
  e->line = ar->currentline;
  memcpy(e->tail, tail, WHERE_TAIL);
  w->n++;
  return e->text;
}

int mgL_is_own_source(const mgL_state *S, const char *source) {
  if (!S || !S->own_prefix[0])  /* before the stdlib said where it lives (or outside a module function) */
    return strstr(source, "moongrad/") != NULL || strstr(source, "autograph/") != NULL;
  for (int i = 0; i < 2; i++)
    if (S->own_prefix[i] && strncmp(source, S->own_prefix[i], S->own_len[i]) == 0) return 1;
  return 0;
}

/* The innermost frame of L (from `level` out) that is the user's: a Lua
 * function with a line, outside moongrad's own files. 1 when found; 0 when
 * there is none or (stop_at_c) a C function the user called comes first. A C
 * function called from moongrad's own files (the library's pcalls: fit's
 * staged step, a layer's call) is looked through, as options.raise does. */
static int user_frame(lua_State *L, mgL_state *S, int level, int stop_at_c, lua_Debug *ar) {
  for (; lua_getstack(L, level, ar); level++) {
    lua_getinfo(L, "Sl", ar);
    if (stop_at_c && ar->what[0] == 'C') {
      lua_Debug up;
      if (!lua_getstack(L, level + 1, &up) || !lua_getinfo(L, "S", &up) || up.what[0] == 'C' ||
          !mgL_is_own_source(S, up.source))
        return 0;
      continue;
    }
    if (ar->currentline > 0 && !mgL_is_own_source(S, ar->source)) return 1;
  }
  return 0;
}

/* Lua's own rule stays: an error of a function called straight from C
 * (pcall(mg.add, ...)) has no position; nor has one whose nearest user
 * frame is behind a C function (never a line inside moongrad's own files). */
void mgL_push_user_where(lua_State *L) {
  lua_Debug ar;
  mgL_state *S = mgL_getstate(L);  /* NULL in a C function without the state upvalue (luaopen) */
  if (user_frame(L, S, 1, 1, &ar)) lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
  else if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "S", &ar) && ar.what[0] != 'C' && mgL_is_own_source(S, ar.source))
    lua_pushliteral(L, "");
  else luaL_where(L, 1);
}

int mgL_error(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  mgL_push_user_where(L);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 2);
  return lua_error(L);
}

/* The hook: the innermost user frame of the thread running the engine call. */
static const char *where_hook(void *ud) {
  mgL_state *S = ud;
  lua_State *L = S->current_L ? S->current_L : S->main_L;
  lua_Debug ar;
  return user_frame(L, S, 1, 0, &ar) ? where_intern(S, &ar) : NULL;  /* level 0: the op's C function */
}

/* core.set_own_sources(prefix1 [, prefix2]): chunk names that start so are
 * moongrad's own Lua files (the stdlib calls it once with its directories). */
static int set_own_sources(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  for (int i = 0; i < 2; i++) {
    const char *p = luaL_optstring(L, i + 1, NULL);
    char *copy = p ? strdup(p) : NULL;
    if (p && !copy) return mgL_error(L, "set_own_sources: out of memory");
    free(S->own_prefix[i]);
    S->own_prefix[i] = copy;
    S->own_len[i] = copy ? strlen(copy) : 0;
  }
  return 0;
}

void mgL_open_where(mgL_state *S) {
  S->where = calloc(1, sizeof *S->where);
  mg_ctx_set_where_hook(S->ctx, where_hook, S);
}

void mgL_where_free(mgL_state *S) {
  struct mgL_where *w = S->where;
  for (int i = 0; i < 2; i++) {
    free(S->own_prefix[i]);
    S->own_prefix[i] = NULL;
  }
  if (!w) return;
  for (size_t i = 0; i < w->cap; i++) free(w->slots[i].text);
  free(w->slots);
  free(w);
  S->where = NULL;
}

/* core.trace_begin(name) -> graph */
static int trace_begin(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_graph *g;
  if (mg_trace_begin(S->ctx, luaL_optstring(L, 1, "function"), &g)) return mgL_raise(L);
  push_graph(L, g);
  return 1;
}

/* core.trace_end(graph, {outputs}) */
static int trace_end(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_graph *g = check_graph(L, 1);
  int n;
  mg_tensor **outs = tensor_list(L, 2, &n, "trace");
  if (mg_trace_end(S->ctx, g, n, outs)) return mgL_raise(L);
  return 0;
}

static int trace_abort(lua_State *L) {
  mg_trace_abort(mgL_getstate(L)->ctx);
  return 0;
}

static int tracing(lua_State *L) {
  lua_pushboolean(L, mg_tracing(mgL_getstate(L)->ctx));
  return 1;
}

static int is_symbolic(lua_State *L) {
  mg_tensor *t = mgL_testtensor(L, 1);
  lua_pushboolean(L, t && mg_tensor_is_symbolic(t));
  return 1;
}

static int read_shape(lua_State *L, int idx, int64_t *shape) {
  luaL_checktype(L, idx, LUA_TTABLE);
  int n = (int)luaL_len(L, idx);
  if (n > MG_MAX_DIMS) mgL_error(L, "shape: at most %d dimensions", MG_MAX_DIMS);
  for (int d = 0; d < n; d++) {
    lua_rawgeti(L, idx, d + 1);
    int ok = mgL_tosize(L, -1, &shape[d]);  /* an unknown size (dim.c) passes its probe */
    if (!ok || shape[d] < -1) mgL_error(L, "shape: entry %d must be a size or -1 (unknown)", d + 1);
    lua_pop(L, 1);
  }
  return n;
}

static mg_dtype check_dtype(lua_State *L, int idx) {
  mg_dtype dt;
  const char *name = luaL_checkstring(L, idx);
  if (!mg_dtype_from_name(name, &dt)) mgL_error(L, "unknown dtype '%s'", name);
  return dt;
}

/* core.placeholder(dtype, shape) */
static int placeholder(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_dtype dt = check_dtype(L, 1);
  int64_t shape[MG_MAX_DIMS];
  int n = read_shape(L, 2, shape);
  mg_tensor *t;
  if (mg_trace_placeholder(S->ctx, dt, n, shape, &t)) return mgL_raise(L);
  mgL_pushtensor(L, S, t, 0);
  return 1;
}

/* core.graph_run(graph, {inputs}) -> {outputs} */
static int graph_run(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_graph *g = check_graph(L, 1);
  int n, nout = mg_graph_noutputs(g);
  mg_tensor **in = tensor_list(L, 2, &n, "call");
  mg_tensor **out = lua_newuserdatauv(L, (size_t)(nout > 0 ? nout : 1) * sizeof *out, 0);
  lua_State *saved = S->current_L;
  S->current_L = L;  /* Lua functions in the graph run on this thread */
  mg_status st = mg_graph_run(S->ctx, g, n, in, nout, out);
  S->current_L = saved;
  if (st) return mgL_raise(L);
  push_list(L, S, out, nout, 1);
  return 1;
}

/* core.graph_call(graph, t1, t2, ...) -> o1, o2, ...: the fast path of a
 * concrete function call (no tables); nil, message when an input does not
 * match the graph's placeholders (the caller then retraces). */
static int graph_call(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_graph *g = check_graph(L, 1);
  int n = lua_gettop(L) - 1, nout = mg_graph_noutputs(g);
  mg_tensor *small[16], **in = n <= 16 ? small : lua_newuserdatauv(L, (size_t)n * sizeof *in, 0);
  for (int i = 0; i < n; i++) {
    in[i] = mgL_testtensor(L, i + 2);
    if (!in[i]) return mgL_error(L, "call: argument %d must be a tensor, got %s", i + 1, luaL_typename(L, i + 2));
  }
  mg_tensor *osmall[16], **out = nout <= 16 ? osmall : lua_newuserdatauv(L, (size_t)nout * sizeof *out, 0);
  lua_State *saved = S->current_L;
  S->current_L = L;
  mg_status st = mg_graph_run(S->ctx, g, n, in, nout, out);
  S->current_L = saved;
  if (st) return mgL_raise(L);
  luaL_checkstack(L, nout, "call");
  for (int k = 0; k < nout; k++) mgL_pushtensor(L, S, out[k], 1);
  return nout;
}

/* ---- calls that keep values for a gradient -------------------------------------------- */

void mgL_kept_clear(mgL_kept *k) {
  for (int i = 0; i < k->n; i++) mg_tensor_release(k->t[i]);
  free(k->t);
  k->t = NULL;
  k->n = 0;
}

static int kept_gc(lua_State *L) {
  mgL_kept_clear(luaL_checkudata(L, 1, MGL_KEPT));
  return 0;
}

/* Runs g on the tensors at first .. top after the `nfixed` tensors of fixed;
 * returns the outputs in a block (lua_newuserdatauv on the stack, popped by
 * the caller's return) or raises. */
static mg_tensor **run_with(lua_State *L, mg_graph *g, int nfixed, mg_tensor *const *fixed, int first) {
  mgL_state *S = mgL_getstate(L);
  int n = lua_gettop(L) - first + 1, nout = mg_graph_noutputs(g);
  mg_tensor **in = lua_newuserdatauv(L, (size_t)(nfixed + n > 0 ? nfixed + n : 1) * sizeof *in, 0);
  for (int i = 0; i < nfixed; i++) in[i] = fixed[i];
  for (int i = 0; i < n; i++) {
    in[nfixed + i] = mgL_testtensor(L, first + i);
    if (!in[nfixed + i])
      mgL_error(L, "call: argument %d must be a tensor, got %s", i + 1, luaL_typename(L, first + i));
  }
  mg_tensor **out = lua_newuserdatauv(L, (size_t)(nout > 0 ? nout : 1) * sizeof *out, 0);
  lua_State *saved = S->current_L;
  S->current_L = L;
  mg_status st = mg_graph_run(S->ctx, g, nfixed + n, in, nout, out);
  S->current_L = saved;
  if (st) mgL_raise(L);
  return out;
}

/* core.graph_call_keep(graph, nret, {src}, t1, ...) -> o1 .. o_nret, kept:
 * runs a forward graph (func.lua: a call under a tape); returns its first
 * nret outputs and an mg.Kept box holding, for each entry j of src, the
 * call's tensor j or (j past the call's tensors) the graph's output j - n.
 * The other outputs are let go at once. */
static int graph_call_keep(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_graph *g = check_graph(L, 1);
  int nret = (int)luaL_checkinteger(L, 2), nout = mg_graph_noutputs(g);
  luaL_checktype(L, 3, LUA_TTABLE);
  int nin = lua_gettop(L) - 3, nsrc = (int)luaL_len(L, 3);
  if (nret < 0 || nret > nout) return mgL_error(L, "call: %d results asked of a graph with %d", nret, nout);
  mgL_kept *k = lua_newuserdatauv(L, sizeof *k, 0);
  k->n = 0;
  k->t = NULL;
  luaL_setmetatable(L, MGL_KEPT);
  lua_insert(L, 4);  /* graph, nret, src, kept, t1 ... */
  mg_tensor **out = run_with(L, g, 0, NULL, 5);
  int *src = lua_newuserdatauv(L, (size_t)(nsrc > 0 ? nsrc : 1) * sizeof *src, 0);
  for (int i = 0; i < nsrc; i++) {
    lua_rawgeti(L, 3, i + 1);
    src[i] = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (src[i] < 1 || src[i] > nin + nout) {
      for (int j = 0; j < nout; j++) mg_tensor_release(out[j]);
      return mgL_error(L, "call: kept value %d names %d, out of range", i + 1, src[i]);
    }
  }
  if (!(k->t = malloc((size_t)(nsrc > 0 ? nsrc : 1) * sizeof *k->t))) {
    for (int j = 0; j < nout; j++) mg_tensor_release(out[j]);
    return mgL_error(L, "call: out of memory");
  }
  for (int i = 0; i < nsrc; i++) {
    mg_tensor *t = src[i] <= nin ? mgL_testtensor(L, 4 + src[i]) : out[src[i] - nin - 1];
    mg_tensor_retain(t);
    k->t[k->n++] = t;
  }
  for (int j = nret; j < nout; j++) mg_tensor_release(out[j]);
  luaL_checkstack(L, nret + 1, "call");
  for (int j = 0; j < nret; j++) mgL_pushtensor(L, S, out[j], 1);
  lua_pushvalue(L, 4);
  return nret + 1;
}

/* core.graph_call_kept(graph, kept, t1, ...) -> outputs: runs a backward graph
 * on the kept tensors followed by t1, .... */
static int graph_call_kept(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_graph *g = check_graph(L, 1);
  mgL_kept *k = luaL_checkudata(L, 2, MGL_KEPT);
  if (!k->t) return mgL_error(L, "call: the values kept for this gradient were released");
  int nout = mg_graph_noutputs(g);
  mg_tensor **out = run_with(L, g, k->n, k->t, 3);
  luaL_checkstack(L, nout, "call");
  /* not reported to the collector: these gradients go straight back to the
   * tape, and tape:gradient reports them when it hands them out */
  for (int j = 0; j < nout; j++) mgL_pushtensor(L, S, out[j], 0);
  return nout;
}

/* Whether the values at first .. top fit g's placeholders. */
static int graph_fits(lua_State *L, mg_graph *g, int first) {
  int n = lua_gettop(L) - first + 1;
  if (n != mg_graph_ninputs(g)) return 0;
  for (int i = 0; i < n; i++) {
    mg_tensor *t = mgL_testtensor(L, first + i);
    mg_dtype dt;
    int nd;
    int64_t shape[MG_MAX_DIMS];
    mg_graph_input_meta(g, i, &dt, &nd, shape);
    int ok = t && !mg_tensor_is_symbolic(t) && mg_tensor_dtype(t) == dt && mg_tensor_ndim(t) == nd;
    for (int d = 0; ok && d < nd; d++) ok = shape[d] < 0 || shape[d] == mg_tensor_shape(t)[d];
    if (!ok) return 0;
  }
  return 1;
}

/* core.graph_accepts(graph, t1, ...) -> whether the tensors fit the placeholders. */
static int graph_accepts(lua_State *L) {
  lua_pushboolean(L, graph_fits(L, check_graph(L, 1), 2));
  return 1;
}

/* core.graph_call_or(graph, fallback, self, t1, ...): graph_call when the
 * tensors fit the placeholders and no tape records, else fallback(self, t1,
 * ...) (a staged function's usual call: one C call checks and runs). */
static int graph_call_or(lua_State *L) {
  mg_graph *g = check_graph(L, 1);
  if (!mg_tapes_active(mgL_getstate(L)->ctx) && graph_fits(L, g, 4)) {  /* under a tape: the fallback records */
    lua_remove(L, 2);  /* drop fallback and self: graph, t1, ... */
    lua_remove(L, 2);
    return graph_call(L);
  }
  lua_remove(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* core.trace_cond(pred, then_graph, else_graph) -> {outputs} */
static int trace_cond(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_tensor *pred = mgL_checktensor(L, 1);
  mg_graph *a = check_graph(L, 2), *b = check_graph(L, 3);
  int nout = mg_graph_noutputs(a);
  mg_tensor **out = lua_newuserdatauv(L, (size_t)(nout > 0 ? nout : 1) * sizeof *out, 0);
  if (mg_trace_cond(S->ctx, pred, a, b, nout, out)) return mgL_raise(L);
  push_list(L, S, out, nout, 0);
  return 1;
}

/* core.trace_while(cond_graph, body_graph, {init}, max_iterations [, save]) -> {outputs}
 * save: also the per-iteration stacks and the trip count, for the gradient
 * (2n+1 outputs, mg_trace_while_save). */
static int trace_while(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_graph *c = check_graph(L, 1), *b = check_graph(L, 2);
  int n;
  lua_Integer max_iter = luaL_optinteger(L, 4, -1);  /* before tensor_list pushes */
  int save = lua_toboolean(L, 5);
  lua_settop(L, 3);
  mg_tensor **init = tensor_list(L, 3, &n, "while_loop");
  int nout = save ? 2 * n + 1 : n;
  mg_tensor **out = lua_newuserdatauv(L, (size_t)nout * sizeof *out, 0);
  if ((save ? mg_trace_while_save : mg_trace_while)(S->ctx, c, b, n, init, max_iter, out)) return mgL_raise(L);
  push_list(L, S, out, nout, 0);
  return 1;
}

/* core.graph_externals({extra} | nil, g, ...) -> {tensors}, tracked, effect:
 * the outer tensors the finished subgraphs use (captures, Variables read),
 * each once; whether a tape recording at this trace depth tracks one of them
 * or of `extra`; what the subgraphs do besides computing (or nil). */
static int graph_externals(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  int ng = lua_gettop(L), n = 0, nx = lua_istable(L, 1) ? (int)luaL_len(L, 1) : 0;
  const char *effect = NULL;
  for (int i = 2; i <= ng; i++) {
    n += mg_graph_externals(check_graph(L, i), 0, NULL);
    if (!effect) effect = mg_graph_effect(check_graph(L, i));
  }
  mg_tensor **all = lua_newuserdatauv(L, (size_t)(n + nx > 0 ? n + nx : 1) * sizeof *all, 0), *tmp[64];
  int m = 0;
  for (int i = 2; i <= ng; i++) {
    mg_graph *g = check_graph(L, i);
    int k = mg_graph_externals(g, 0, NULL);
    mg_tensor **part = k <= 64 ? tmp : lua_newuserdatauv(L, (size_t)k * sizeof *part, 0);
    k = mg_graph_externals(g, k, part);  /* the sizing call counted repeats */
    for (int j = 0; j < k; j++) {
      int dup = 0;
      for (int q = 0; q < m && !dup; q++) dup = all[q] == part[j];
      if (!dup) all[m++] = part[j];
    }
    if (part != tmp) lua_pop(L, 1);
  }
  for (int j = 0; j < nx; j++) {
    lua_rawgeti(L, 1, j + 1);
    all[n + j] = mgL_testtensor(L, -1);
    if (!all[n + j]) return mgL_error(L, "graph_externals: extra %d is not a tensor", j + 1);
    lua_pop(L, 1);
  }
  lua_createtable(L, m, 1);
  for (int j = 0; j < m; j++) {
    mg_tensor_retain(all[j]);
    mgL_pushtensor(L, S, all[j], 0);
    lua_rawseti(L, -2, j + 1);
  }
  lua_pushinteger(L, m);
  lua_setfield(L, -2, "n");
  lua_pushboolean(L, mg_tapes_track_any(S->ctx, m, all) || mg_tapes_track_any(S->ctx, nx, all + n));
  if (effect) lua_pushstring(L, effect);
  else lua_pushnil(L);
  return 3;
}

/* ---- Lua functions inside graphs ---------------------------------------------------- */

typedef struct host_ud {
  mgL_state *S;
  int ref;          /* the Lua function in the registry */
  char label[256];  /* its name in errors ("the Lua function defined at f.lua:3 ...") */
} host_ud;

static void host_free(void *p) {
  host_ud *u = p;
  if (u->S->main_L) luaL_unref(u->S->main_L, LUA_REGISTRYINDEX, u->ref);
  free(u);
}

/* The error for a function that returned n values where nout were declared. */
static int host_count_error(lua_State *L, const char *label, int n, int nout) {
  return luaL_error(L, "lua_function: %s returned %d value%s, but %d %s declared (out_types)", label, n,
                    n == 1 ? "" : "s", nout, nout == 1 ? "was" : "were");
}

/* Runs under lua_pcall: (ud, nin, in, nout, out) as light userdata/integers. */
static int host_call(lua_State *L) {
  host_ud *u = lua_touserdata(L, 1);
  int nin = (int)lua_tointeger(L, 2);
  mg_tensor **in = lua_touserdata(L, 3);
  int nout = (int)lua_tointeger(L, 4);
  mg_tensor **out = lua_touserdata(L, 5);
  lua_rawgeti(L, LUA_REGISTRYINDEX, u->ref);
  for (int i = 0; i < nin; i++) {
    mg_tensor_retain(in[i]);
    mgL_pushtensor(L, u->S, in[i], 0);
  }
  lua_call(L, nin, LUA_MULTRET);
  if (lua_gettop(L) - 5 != nout) return host_count_error(L, u->label, lua_gettop(L) - 5, nout);
  for (int k = 0; k < nout; k++) {
    out[k] = mgL_totensor(L, 6 + k, "lua_function", k + 1);
    if (!out[k]) return mgL_error(L, "lua_function: result %d: %s", k + 1, mg_last_error());
  }
  return 0;
}

static mg_status host_trampoline(void *p, int nin, mg_tensor *const *in, int nout, mg_tensor **out) {
  host_ud *u = p;
  lua_State *L = mgL_callback_thread(u->S);
  int top = lua_gettop(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, (void *)host_call);
  lua_pushlightuserdata(L, u);
  lua_pushinteger(L, nin);
  lua_pushlightuserdata(L, (void *)in);
  lua_pushinteger(L, nout);
  lua_pushlightuserdata(L, out);
  return mgL_callback_pcall(L, top, 5, out, nout);
}

/* core.call_host(fn, {inputs}, {{dtype=, shape=}...} [, label]) -> {outputs}: label names fn in
 * the errors of its results' checks. */
static int call_host(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  const char *label = luaL_optstring(L, 4, "the Lua function");  /* before anything is pushed */
  int nin;
  mg_tensor **in = tensor_list(L, 2, &nin, "lua_function");
  luaL_checktype(L, 3, LUA_TTABLE);
  int nout = (int)luaL_len(L, 3);
  if (nout > 64) return mgL_error(L, "lua_function: at most 64 results");
  mg_dtype dts[64];
  int ndims[64];
  int64_t (*shapes)[MG_MAX_DIMS] = lua_newuserdatauv(L, 64 * sizeof *shapes, 0);
  for (int k = 0; k < nout; k++) {
    lua_rawgeti(L, 3, k + 1);
    int spec = lua_gettop(L);
    if (lua_type(L, spec) == LUA_TSTRING) {
      dts[k] = check_dtype(L, spec);
      ndims[k] = 0;
    } else {
      luaL_checktype(L, spec, LUA_TTABLE);
      lua_getfield(L, spec, "dtype");
      dts[k] = check_dtype(L, -1);
      lua_getfield(L, spec, "shape");
      ndims[k] = lua_isnil(L, -1) ? 0 : read_shape(L, lua_gettop(L), shapes[k]);
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
  }
  host_ud *u = malloc(sizeof *u);
  if (!u) return mgL_error(L, "lua_function: out of memory");
  u->S = S;
  snprintf(u->label, sizeof u->label, "%s", label);
  lua_pushvalue(L, 1);
  u->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  mg_tensor **out = lua_newuserdatauv(L, (size_t)(nout > 0 ? nout : 1) * sizeof *out, 0);
  lua_State *saved = S->current_L;
  S->current_L = L;
  mg_status st = mg_call_host(S->ctx, u->label, host_trampoline, u, host_free, nin, in, nout, dts, ndims,
                              (const int64_t(*)[MG_MAX_DIMS])shapes, out);
  S->current_L = saved;
  if (st) return mgL_raise(L);
  push_list(L, S, out, nout, 1);
  return 1;
}

/* core.read_variable(v): the value now (a node while tracing). */
static int read_variable(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_tensor *v = mgL_checktensor(L, 1), *r;
  if (!mg_tensor_is_variable(v)) return mgL_error(L, "read: not a Variable");
  if (mg_trace_read_variable(S->ctx, v, &r)) return mgL_raise(L);
  mgL_pushtensor(L, S, r, 0);
  return 1;
}

/* ---- graph introspection ------------------------------------------------------------- */

static void push_meta(lua_State *L, mg_dtype dt, int ndim, const int64_t *shape) {
  lua_createtable(L, 0, 2);
  lua_pushstring(L, mg_dtype_name(dt));
  lua_setfield(L, -2, "dtype");
  lua_createtable(L, ndim, 0);
  for (int d = 0; d < ndim; d++) {
    lua_pushinteger(L, (lua_Integer)shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
  lua_setfield(L, -2, "shape");
}

/* graph:signature() -> {inputs = {{dtype, shape}...}, outputs = {...}} */
static int graph_signature(lua_State *L) {
  mg_graph *g = check_graph(L, 1);
  lua_createtable(L, 0, 2);
  for (int io = 0; io < 2; io++) {
    int n = io ? mg_graph_noutputs(g) : mg_graph_ninputs(g);
    lua_createtable(L, n, 0);
    for (int k = 0; k < n; k++) {
      mg_dtype dt;
      int nd;
      int64_t shape[MG_MAX_DIMS];
      if (io) mg_graph_output_meta(g, k, &dt, &nd, shape);
      else mg_graph_input_meta(g, k, &dt, &nd, shape);
      push_meta(L, dt, nd, shape);
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, io ? "outputs" : "inputs");
  }
  return 1;
}

/* graph:nodes() -> list of {kind=, op=, inputs={ids}, outputs={ids}} */
static int graph_nodes(lua_State *L) {
  mg_graph *g = check_graph(L, 1);
  mg_node_info info;
  int n = mg_graph_nnodes(g), k = 0;
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    if (!mg_graph_node(g, i, &info) || strcmp(info.kind, "dead") == 0) continue;
    lua_createtable(L, 0, 4);
    lua_pushstring(L, info.kind);
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, info.op);
    lua_setfield(L, -2, "op");
    lua_createtable(L, info.nin, 0);
    for (int j = 0; j < info.nin; j++) {
      lua_pushinteger(L, info.in[j]);
      lua_rawseti(L, -2, j + 1);
    }
    lua_setfield(L, -2, "inputs");
    lua_createtable(L, info.nout, 0);
    for (int j = 0; j < info.nout; j++) {
      lua_pushinteger(L, info.out0 + j);
      lua_rawseti(L, -2, j + 1);
    }
    lua_setfield(L, -2, "outputs");
    lua_rawseti(L, -2, ++k);
  }
  return 1;
}

static int push_text(lua_State *L, char *s) {
  if (!s) return mgL_error(L, "graph: out of memory");
  lua_pushstring(L, s);
  mg_free(s);
  return 1;
}

static int graph_pretty(lua_State *L) { return push_text(L, mg_graph_pretty(check_graph(L, 1))); }
static int graph_dot(lua_State *L) { return push_text(L, mg_graph_to_dot(check_graph(L, 1), luaL_optstring(L, 2, NULL))); }

/* core.graph_optimize(graph [, passes]) -> {constfold=n, cse=n, ...}: passes is
 * nil (all), an integer of MG_PASS_* bits, or a table {fuse=false, ...}. */
static int graph_optimize(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_graph *g = check_graph(L, 1);
  unsigned passes = MG_PASS_ALL;
  if (lua_isinteger(L, 2)) {
    passes = (unsigned)lua_tointeger(L, 2);
  } else if (lua_istable(L, 2)) {
    for (int i = 0; i < MG_NPASSES; i++) {
      lua_getfield(L, 2, mg_pass_name(i));
      if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) passes &= ~(1u << i);
      lua_pop(L, 1);
    }
  } else if (!lua_isnoneornil(L, 2)) {
    return mgL_error(L, "optimize: passes must be nil, an integer or a table like {fuse=false}");
  }
  int counts[MG_NPASSES] = {0};
  if (mg_graph_optimize_counts(S->ctx, g, passes, counts)) return mgL_raise(L);
  lua_createtable(L, 0, MG_NPASSES);
  for (int i = 0; i < MG_NPASSES; i++) {
    lua_pushinteger(L, counts[i]);
    lua_setfield(L, -2, mg_pass_name(i));
  }
  return 1;
}

/* core.pass_names() -> {"constfold", "cse", ...}: the optimisation passes, in order. */
static int pass_names(lua_State *L) {
  lua_createtable(L, MG_NPASSES, 0);
  for (int i = 0; i < MG_NPASSES; i++) {
    lua_pushstring(L, mg_pass_name(i));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* core.graph_split(graph, nfwd_in, nfwd_out) -> forward, backward, {src}:
 * mg_graph_split; src[k] (1-based) says where the backward's input k comes
 * from in the list (forward inputs, forward graph outputs). */
static int graph_split(lua_State *L) {
  mg_graph *g = check_graph(L, 1), *f, *b;
  int nsrc, *src;
  if (mg_graph_split(g, (int)luaL_checkinteger(L, 2), (int)luaL_checkinteger(L, 3), &f, &b, &nsrc, &src))
    return mgL_raise(L);
  push_graph(L, f);
  push_graph(L, b);
  lua_createtable(L, nsrc, 0);
  for (int k = 0; k < nsrc; k++) {
    lua_pushinteger(L, src[k] + 1);
    lua_rawseti(L, -2, k + 1);
  }
  mg_free(src);
  return 3;
}

/* core.graph_select(graph, {k, ...}) -> graph: mg_graph_select_outputs with
 * 1-based output numbers. */
static int graph_select(lua_State *L) {
  mg_graph *g = check_graph(L, 1), *c;
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)luaL_len(L, 2);
  int *which = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *which, 0);
  for (int k = 0; k < n; k++) {
    lua_rawgeti(L, 2, k + 1);
    which[k] = (int)lua_tointeger(L, -1) - 1;
    lua_pop(L, 1);
  }
  if (mg_graph_select_outputs(g, n, which, &c)) return mgL_raise(L);
  push_graph(L, c);
  return 1;
}

/* core.trace_resume(graph): mg_trace_resume (a TF1-style graph entered again). */
static int trace_resume(lua_State *L) {
  if (mg_trace_resume(mgL_getstate(L)->ctx, check_graph(L, 1))) return mgL_raise(L);
  return 0;
}

/* core.graph_owns(graph, x) -> whether x is a symbolic tensor of graph. */
static int graph_owns(lua_State *L) {
  mg_graph *g = check_graph(L, 1);
  lua_pushboolean(L, mg_tensor_graph_value(mgL_testtensor(L, 2), g) >= 0);
  return 1;
}

static int graph_nnodes(lua_State *L) {
  lua_pushinteger(L, mg_graph_nnodes(check_graph(L, 1)));
  return 1;
}

/* A Lua list of g's symbolic tensors as value ids (userdata on the stack). */
static int *value_ids(lua_State *L, mg_graph *g, int idx, int *n, const char *what) {
  luaL_checktype(L, idx, LUA_TTABLE);
  *n = (int)luaL_len(L, idx);
  int *v = lua_newuserdatauv(L, (size_t)(*n > 0 ? *n : 1) * sizeof *v, 0);
  for (int i = 0; i < *n; i++) {
    lua_rawgeti(L, idx, i + 1);
    v[i] = mg_tensor_graph_value(mgL_testtensor(L, -1), g);
    if (v[i] < 0) mgL_error(L, "prune: %s %d is not a tensor of this graph", what, i + 1);
    lua_pop(L, 1);
  }
  return v;
}

/* core.graph_prune(graph, {feeds}, {fetches}, {node indices (0-based)}) -> graph,
 * or nil and the 1-based position among graph's inputs of a placeholder needed
 * but not fed (mg_graph_prune). */
static int graph_prune(lua_State *L) {
  mg_graph *g = check_graph(L, 1), *c;
  int nin, nout, nkeep, missing;
  int *in = value_ids(L, g, 2, &nin, "feed"), *out = value_ids(L, g, 3, &nout, "fetch");
  luaL_checktype(L, 4, LUA_TTABLE);
  nkeep = (int)luaL_len(L, 4);
  int *keep = lua_newuserdatauv(L, (size_t)(nkeep > 0 ? nkeep : 1) * sizeof *keep, 0);
  for (int k = 0; k < nkeep; k++) {
    lua_rawgeti(L, 4, k + 1);
    keep[k] = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
  }
  if (mg_graph_prune(g, nin, in, nout, out, nkeep, keep, &c, &missing)) {
    if (missing < 0) return mgL_raise(L);
    lua_pushnil(L);
    lua_pushinteger(L, missing + 1);
    return 2;
  }
  push_graph(L, c);
  return 1;
}

/* ---- graph files (core/graphfile.c) --------------------------------------------------------- */

/* The strings of list `idx` (n of them, or none when nil) as a const char *[] owned by the stack. */
static const char **string_list(lua_State *L, int idx, int n, const char *what) {
  if (lua_isnoneornil(L, idx)) return NULL;
  luaL_checktype(L, idx, LUA_TTABLE);
  const char **v = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *v, 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    v[i] = lua_tostring(L, -1);  /* the list keeps the strings alive */
    if (!v[i] || lua_type(L, -1) != LUA_TSTRING) mgL_error(L, "%s: entry %d must be a string", what, i + 1);
    lua_pop(L, 1);
  }
  return v;
}

/* core.graph_export(graph, path, in_names, out_names, meta_keys, meta_vals) */
static int graph_export(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_graph *g = check_graph(L, 1);
  const char *path = luaL_checkstring(L, 2);
  const char **in = string_list(L, 3, mg_graph_ninputs(g), "export");
  const char **out = string_list(L, 4, mg_graph_noutputs(g), "export");
  int nm = lua_istable(L, 5) ? (int)luaL_len(L, 5) : 0;
  const char **keys = string_list(L, 5, nm, "export"), **vals = string_list(L, 6, nm, "export");
  if (mg_graph_export(S->ctx, g, path, in, out, nm, keys, vals)) return mgL_raise(L);
  return 0;
}

/* core.graph_load(path) -> graph */
static int graph_load(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_graph *g;
  if (mg_graph_load(S->ctx, luaL_checkstring(L, 1), &g)) return mgL_raise(L);
  push_graph(L, g);
  return 1;
}

/* core.graph_load_string(bytes [, what]) -> graph */
static int graph_load_string(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  mg_graph *g;
  if (mg_graph_load_buffer(S->ctx, (const uint8_t *)s, len, luaL_optstring(L, 2, "<string>"), &g))
    return mgL_raise(L);
  push_graph(L, g);
  return 1;
}

/* graph:names() -> {inputs = {names}, outputs = {names}, metadata = {k = v}} for a loaded graph, else nil */
static int graph_names(lua_State *L) {
  mg_graph *g = check_graph(L, 1);
  if (mg_graph_ninputs(g) > 0 ? !mg_graph_input_name(g, 0) : !mg_graph_noutputs(g) || !mg_graph_output_name(g, 0))
    return 0;
  lua_createtable(L, 0, 3);
  for (int io = 0; io < 2; io++) {
    int n = io ? mg_graph_noutputs(g) : mg_graph_ninputs(g);
    lua_createtable(L, n, 0);
    for (int k = 0; k < n; k++) {
      lua_pushstring(L, io ? mg_graph_output_name(g, k) : mg_graph_input_name(g, k));
      lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, io ? "outputs" : "inputs");
  }
  lua_newtable(L);
  for (int k = 0; k < mg_graph_nmetadata(g); k++) {
    lua_pushstring(L, mg_graph_metadata(g, mg_graph_metadata_key(g, k)));
    lua_setfield(L, -2, mg_graph_metadata_key(g, k));
  }
  lua_setfield(L, -2, "metadata");
  return 1;
}

static const luaL_Reg graph_methods[] = {
    {"signature", graph_signature}, {"nodes", graph_nodes}, {"pretty", graph_pretty},
    {"to_dot", graph_dot}, {"names", graph_names}, {NULL, NULL}};

static const luaL_Reg graph_fns[] = {
    {"trace_begin", trace_begin}, {"trace_end", trace_end},       {"trace_abort", trace_abort},
    {"set_own_sources", set_own_sources}, {"pass_names", pass_names},
    {"tracing", tracing},         {"is_symbolic", is_symbolic},   {"placeholder", placeholder},
    {"graph_run", graph_run},     {"graph_call", graph_call},     {"graph_optimize", graph_optimize},     {"graph_accepts", graph_accepts},
    {"graph_call_or", graph_call_or}, {"graph_split", graph_split}, {"graph_call_keep", graph_call_keep},
    {"graph_call_kept", graph_call_kept}, {"graph_select", graph_select},
    {"trace_resume", trace_resume}, {"graph_owns", graph_owns}, {"graph_nnodes", graph_nnodes},
    {"graph_prune", graph_prune},
    {"trace_cond", trace_cond},     {"trace_while", trace_while}, {"graph_externals", graph_externals},
    {"call_host", call_host},     {"read_variable", read_variable}, {"graph_export", graph_export},
    {"graph_load", graph_load},   {"graph_load_string", graph_load_string}, {NULL, NULL}};

void mgL_open_graph(lua_State *L, int state_idx, int module_idx) {
  luaL_newmetatable(L, MGL_KEPT);
  mgL_protect_metatable(L, -1);
  lua_pushcfunction(L, kept_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, MGL_GRAPH);
  mgL_protect_metatable(L, -1);
  lua_pushcfunction(L, graph_gc);
  lua_setfield(L, -2, "__gc");
  lua_newtable(L);
  luaL_setfuncs(L, graph_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushvalue(L, module_idx);
  lua_pushvalue(L, state_idx);
  luaL_getmetatable(L, MGL_TENSOR);
  luaL_setfuncs(L, graph_fns, 2);
  lua_pop(L, 1);
  lua_pushvalue(L, state_idx);
  luaL_getmetatable(L, MGL_TENSOR);
  lua_pushcclosure(L, host_call, 2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, (void *)host_call);
}
