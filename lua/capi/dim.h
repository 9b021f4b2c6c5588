/*
 * dim.h — unknown sizes while tracing, as Lua values (dim.c).
 */
#ifndef MG_CAPI_DIM_H
#define MG_CAPI_DIM_H
#include "capi.h"

#define MGL_DIM "mg.Dim"

/* Pushes size `axis` (0-based) of t: an integer, or, for an unknown size of
 * a symbolic tensor, an unknown-size object. `what` names the accessor
 * ("shape" or "#"). */
void mgL_pushsize(lua_State *L, mgL_state *S, const mg_tensor *t, int axis, const char *what);
/* Pushes t:numel(): an integer, or an unknown-size object (usable as no
 * size) when t is symbolic with an unknown size. */
void mgL_pushnumel(lua_State *L, mgL_state *S, const mg_tensor *t);
/* Reads an integer or an unknown-size object (its probe size) at idx;
 * returns 0 (and leaves *out alone) for anything else. */
int mgL_tosize(lua_State *L, int idx, int64_t *out);
/* Nonzero when the value at idx is an unknown-size object. */
int mgL_isdim(lua_State *L, int idx);
/* Pushes the error text for using the unknown size at idx as `use`. */
const char *mgL_dim_message(lua_State *L, int idx, const char *use);
/* Makes the metatable; sets core.is_unknown_size in the module at module_idx. */
void mgL_open_dim(lua_State *L, int module_idx);
#endif
