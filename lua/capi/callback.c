/*
 * callback.c — calling Lua back from engine code.
 *
 * Custom gradients, cond/while group backwards (autodiff.c) and
 * mg.lua_function host calls (graph.c) all run a Lua function from inside a
 * core callback. Each pushes a C closure and its arguments and ends here: the
 * call runs under lua_pcall, so a Lua error becomes an engine error instead of
 * a longjmp through core frames, and the tensors the callback was filling are
 * released, so the engine never sees partial results.
 */
#include "capi.h"

lua_State *mgL_callback_thread(mgL_state *S) {
  return S->current_L ? S->current_L : S->main_L;
}

mg_status mgL_callback_pcall(lua_State *L, int top, int nargs, mg_tensor **out, int nout) {
  mg_status st = MG_OK;
  if (lua_pcall(L, nargs, 0, 0) != LUA_OK) {
    st = mg_seterror(MG_EARG, "%s", lua_tostring(L, -1));
    for (int i = 0; i < nout; i++) {
      mg_tensor_release(out[i]);
      out[i] = NULL;
    }
  }
  lua_settop(L, top);
  return st;
}
