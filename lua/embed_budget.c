/*
 * embed_budget.c — the budget of a runtime: what stops a script, and when.
 *
 * Each runtime owns an mg_limits object (core/limits.c): the instruction
 * and time budget of the host call in progress, an interrupt flag
 * (mg_runtime_interrupt, any thread) and the tensor memory account. It is
 * current on the thread for the whole host call, so the engine checks it
 * where Lua cannot: before each kernel, at each iteration of a staged
 * while loop, between the chunks of long kernels. Lua code is checked by a
 * count hook every runtime has (every 1,000 instructions: a few percent of
 * a hook call's cost), which charges the instructions to the same budget
 * and raises once any limit is reached.
 *
 * Once a limit fires it stays fired until the host call returns: the hook
 * is re-armed to fire on every instruction, so a script's pcall cannot
 * swallow the error for long. The built-in library's own code is the one
 * exception: it is let run a little longer (at most GRACE_INSTRUCTIONS and
 * GRACE_SECONDS per host call), so that the error paths it already has for
 * ordinary errors (ending a trace, putting back the environments tracing
 * swapped, restoring flags) run for budget errors too, and the runtime is
 * left as it was before the call. User code called from there is stopped at
 * once, and engine work refuses to start (the limits are sticky), so the
 * grace cannot be used to do work.
 *
 * Finalizers run with hooks off (Lua's GC disables them), so a looping Lua
 * __gc could not be stopped. In an unsandboxed runtime setmetatable gives a
 * Lua __gc to a trampoline that runs it in a fresh coroutine, where hooks
 * work (the sandbox refuses __gc on tables altogether). mg_runtime_free
 * runs the remaining finalizers under the runtime's budget, or a default
 * second when it has none, so it always returns.
 */
#include "embed.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#define BUDGET_HOOK_COUNT 1000
#define GRACE_INSTRUCTIONS 1000000
#define GRACE_SECONDS 0.02
#define CLOSE_SECONDS 1.0          /* finalizers at mg_runtime_free with no time budget */

static void budget_hook(lua_State *L, lua_Debug *ar);

static void budget_arm(lua_State *L, int count) { lua_sethook(L, budget_hook, LUA_MASKCOUNT, count); }

/* Whether the frame of ar is the built-in library's, with grace left. */
static int budget_grace(mg_runtime *rt, lua_State *L, lua_Debug *ar, int count) {
  double now = mg_monotonic();
  if (rt->grace_start == 0) rt->grace_start = now;
  if (rt->grace_used >= GRACE_INSTRUCTIONS || now - rt->grace_start > GRACE_SECONDS) return 0;
  if (!lua_getinfo(L, "S", ar) || !mgE_is_builtin_chunk(ar->source)) return 0;
  rt->grace_used += (uint64_t)count;
  budget_arm(L, 100);   /* look again soon: back in user code, it raises */
  return 1;
}

static void budget_hook(lua_State *L, lua_Debug *ar) {
  mg_runtime *rt = mgE_rt(L);
  if (!rt->depth || ar->event != LUA_HOOKCOUNT) return;
  int count = lua_gethookcount(L);
  if (!mg_limits_stopped(rt->limits)) {
    if (count != BUDGET_HOOK_COUNT) budget_arm(L, BUDGET_HOOK_COUNT);  /* a thread armed by an earlier call */
    if (mg_limits_charge(rt->limits, (uint64_t)count) == MG_OK) return;
  }
  if (budget_grace(rt, L, ar, count)) return;
  budget_arm(L, 1);   /* fire again at once if a pcall catches it */
  char msg[96];
  luaL_error(L, "%s", mg_limits_message(rt->limits, msg, sizeof msg));
}

void mgE_budget_open(mg_runtime *rt) { budget_arm(rt->L, BUDGET_HOOK_COUNT); }

/* The Lua collector frees garbage tensors when the memory account is full. */
static int budget_reclaim(void *ud) {
  mg_runtime *rt = ud;
  lua_gc(rt->cur ? rt->cur : rt->L, LUA_GCCOLLECT);
  return 0;
}

mg_limits *mgE_budget_enter(mg_runtime *rt) {
  if (rt->depth++ == 0) {
    mg_limits_start(rt->limits, rt->instruction_limit, rt->time_limit);
    mg_limits_set_memory(rt->limits, rt->tensor_limit, budget_reclaim, rt);
    rt->grace_start = 0;
    rt->grace_used = 0;
    rt->limit_hit = 0;
  }
  return mg_limits_enter(rt->limits);
}

void mgE_budget_leave(mg_runtime *rt, mg_limits *prev) {
  mg_limits_enter(prev);
  if (--rt->depth == 0 && mg_limits_stopped(rt->limits)) {
    budget_arm(rt->L, BUDGET_HOOK_COUNT);   /* disarm the every-instruction hook */
    if (rt->cur) budget_arm(rt->cur, BUDGET_HOOK_COUNT);
  }
}

int mgE_budget_stopped(const mg_runtime *rt) { return mg_limits_stopped(rt->limits) != MG_STOP_NONE; }

void mg_runtime_set_budget(mg_runtime *rt, uint64_t instruction_limit, double time_limit) {
  rt->instruction_limit = instruction_limit;
  rt->time_limit = time_limit;
}

void mg_runtime_interrupt(mg_runtime *rt) {
  if (rt) mg_limits_interrupt(rt->limits);
}

/* ---- finalizers -------------------------------------------------------------------- */

/* The __gc the collector calls (hooks off): runs the user's finalizer
 * (upvalue 1) in a new coroutine, which inherits the count hook. An error or
 * a budget stop ends it; Lua reports the error as a warning. */
static int budget_gc_trampoline(lua_State *L) {
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 2);
  int nres, st = lua_resume(co, L, 1, &nres);
  if (st == LUA_OK || st == LUA_YIELD) return 0;   /* a yield leaves it suspended: it ran once */
  lua_xmove(co, L, 1);
  return lua_error(L);
}

/* setmetatable(t, mt) (upvalue 1: the original, setmetatable or
 * debug.setmetatable): a Lua function __gc of mt is replaced, in mt, by a
 * trampoline holding it, before the object is marked for finalization. */
static int budget_setmetatable(lua_State *L) {
  if (lua_type(L, 2) == LUA_TTABLE && lua_getfield(L, 2, "__gc") == LUA_TFUNCTION &&
      lua_tocfunction(L, -1) != budget_gc_trampoline) {
    lua_pushcclosure(L, budget_gc_trampoline, 1);
    lua_setfield(L, 2, "__gc");
  }
  lua_settop(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 2, 1);
  return 1;
}

void mgE_budget_wrap_finalizers(lua_State *L) {
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, budget_setmetatable, 1);
  lua_setglobal(L, "setmetatable");
  if (lua_getglobal(L, "debug") == LUA_TTABLE) {
    lua_getfield(L, -1, "setmetatable");
    lua_pushcclosure(L, budget_setmetatable, 1);
    lua_setfield(L, -2, "setmetatable");
  }
  lua_pop(L, 1);
}

void mgE_budget_close(mg_runtime *rt) {
  rt->closing = 1;
  rt->depth = 1;   /* the hook counts again: the finalizers get the budget of one call */
  mg_limits_start(rt->limits, rt->instruction_limit, rt->time_limit > 0 ? rt->time_limit : CLOSE_SECONDS);
  rt->grace_start = 0;
  rt->grace_used = 0;
  mg_limits *prev = mg_limits_enter(rt->limits);
  budget_arm(rt->L, BUDGET_HOOK_COUNT);
  lua_close(rt->L);
  mg_limits_enter(prev);
  mg_limits_set_memory(rt->limits, 0, NULL, NULL);   /* buffers still alive keep the account, not the runtime */
  rt->depth = 0;
}

/* ---- xpcall -------------------------------------------------------------------------- */

/* An error raised by a hook (the budget) runs the message handlers with
 * hooks off, so a Lua handler that loops would never be stopped: xpcall's
 * handler is skipped once a limit has fired. */
static int budget_xpcall_handler(lua_State *L) {
  if (mgE_budget_stopped(mgE_rt(L))) return 1;   /* the error as it is */
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

int mgE_xpcall(lua_State *L) {
  luaL_checkany(L, 2);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, budget_xpcall_handler, 1);
  lua_replace(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}
