/*
 * embed.h — what the three files of the embedding API share (not installed).
 *
 *   embed.c          runtimes, running code, values, calls, host callbacks, staged calls
 *   embed_budget.c   the budget: limits around each host call, the count hook, interrupts,
 *                    finalizers bounded by the budget
 *   embed_sandbox.c  the libraries a runtime opens: the sandbox (its threat model is in
 *                    doc/embedding.md), the built-in library's private environment, require
 *
 * Functions shared between them are named mgE_*.
 */
#ifndef MG_EMBED_H
#define MG_EMBED_H

#include "moongrad.h"

#include <lua.h>

#define EMBED_ERRMAX 8192

struct mg_runtime {
  lua_State *L;
  lua_State *cur;            /* the thread running a host callback: nested calls use it */
  mg_alloc_fn alloc;
  void *alloc_ud;
  size_t heap, peak, memory_limit, tensor_limit;
  uint64_t instruction_limit;
  double time_limit;
  mg_limits *limits;         /* budget, interrupt flag and tensor memory account (core/limits.c) */
  double grace_start;        /* when library code was first let finish after a limit (embed_budget.c) */
  uint64_t grace_used;
  int depth;                 /* host calls in progress (nested through callbacks) */
  int limit_hit;             /* the last failed allocation was refused by memory_limit */
  int closing;               /* mg_runtime_free is running the finalizers */
  mg_print_fn print;
  void *print_ud;
  int warn_on, warn_cont;    /* Lua's warn(): "@on" seen; a message is being continued */
  size_t warn_len;
  char warn_buf[512];
  size_t out_len;            /* a sandbox library's io.stdout: the line being written */
  char out_buf[512];
  int sandbox;
  char *allowed;             /* sandbox: realpath of allowed_dir (host allocator), or NULL: no file access */
  size_t allowed_size;
  char err[EMBED_ERRMAX];
};

/* The runtime of a Lua state: the allocator's user data (no registry lookup). */
static inline mg_runtime *mgE_rt(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return (mg_runtime *)ud;
}

/* ---- embed_budget.c ---------------------------------------------------------------- */
/* Arms the count hook on L (every runtime has it: the budget, interrupts). */
void mgE_budget_open(mg_runtime *rt);
/* Around each host call: the outermost one starts the budget; every one makes
 * the runtime's limits current on the thread (returning the previous ones). */
mg_limits *mgE_budget_enter(mg_runtime *rt);
void mgE_budget_leave(mg_runtime *rt, mg_limits *prev);
/* Whether a limit stopped this call (the hook keeps raising until it ends). */
int mgE_budget_stopped(const mg_runtime *rt);
/* Runs the finalizers of the state under the budget (mg_runtime_free). */
void mgE_budget_close(mg_runtime *rt);
/* setmetatable/debug.setmetatable for unsandboxed runtimes: a Lua __gc runs
 * in a coroutine of its own, where the count hook can stop it. */
void mgE_budget_wrap_finalizers(lua_State *L);
/* xpcall whose handler is skipped once a limit fired (handlers run with hooks off). */
int mgE_xpcall(lua_State *L);

/* ---- embed_sandbox.c --------------------------------------------------------------- */
/* Opens the libraries of a runtime (sandboxed or not) and the built-in
 * library's loader; the stdlib is then loaded with mgE_require_builtin. */
void mgE_open_libs(lua_State *L, const mg_runtime_options *o);
/* Pushes the built-in module `name` (loading it once, in the library's own
 * environment in a sandbox); raises when there is none. */
void mgE_require_builtin(lua_State *L, const char *name);
/* The sandbox's file-access policy (mg_path_policy_fn). */
mg_status mgE_path_policy(void *ud, const char *fname, const char *path, int flags);
/* Whether a chunk name is one of the built-in library's own chunks. */
int mgE_is_builtin_chunk(const char *source);
/* print() to the host's callback, and warnings: the host's callback when it set one. */
int mgE_print(lua_State *L);

#endif
