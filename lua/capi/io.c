/*
 * io.c — the file functions of `moongrad.core`: safetensors load/save,
 * atomic whole-file writes and paths/directories, over core/safetensors.c,
 * core/atomic_file.c and core/fs.c.
 *
 * These are deliberately low level (lists in, lists out): the argument
 * checking users see (mg.save's table of names, metadata, options) lives in
 * stdlib/moongrad/safetensors.lua, shared with the LuaJIT binding. No C
 * memory is held across an argument error: lists are read into userdata
 * arrays whose strings and tensors stay anchored by the lists on the stack,
 * and a loaded file is converted to Lua values with nothing left to check
 * (only a memory error could raise while it is held).
 */
#include "capi.h"
#include <stdlib.h>
#include <string.h>

/* Raises the engine's message with a prefix ("mg." or "mg.io."). */
static int io_raise(lua_State *L, const char *prefix) {
  return mgL_error(L, "%s%s", prefix, mg_last_error());
}

/* Pushes names, tensors, metadata and file dtypes of f; frees f. */
static int io_push_file(lua_State *L, mgL_state *S, mg_tensorfile *f) {
  int n = mg_tensorfile_count(f), nm = mg_tensorfile_nmeta(f);
  lua_createtable(L, n, 0);
  lua_createtable(L, n, 0);
  lua_createtable(L, 0, nm);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, mg_tensorfile_name(f, i));
    lua_rawseti(L, -5, i + 1);
    mg_tensor *t = mg_tensorfile_tensor(f, i);
    mg_tensor_retain(t);
    mgL_pushtensor(L, S, t, 1);
    lua_rawseti(L, -4, i + 1);
    lua_pushstring(L, mg_tensorfile_dtype(f, i));
    lua_rawseti(L, -2, i + 1);
  }
  for (int i = 0; i < nm; i++) {
    lua_pushstring(L, mg_tensorfile_meta_value(f, i));
    lua_setfield(L, -3, mg_tensorfile_meta_key(f, i));
  }
  mg_tensorfile_free(f);
  return 4;
}

/* core.safetensors_load(path) -> names, tensors, metadata, file_dtypes (lists in file order). */
static int io_load(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  const char *path = luaL_checkstring(L, 1);
  luaL_checkstack(L, 8, "safetensors_load");
  mg_tensorfile *f;
  if (mg_safetensors_load(path, &f)) return io_raise(L, "mg.");
  return io_push_file(L, S, f);
}

/* core.safetensors_parse(bytes [, what]) -> like safetensors_load, from a string. */
static int io_parse(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *what = luaL_optstring(L, 2, "<string>");
  luaL_checkstack(L, 8, "safetensors_parse");
  mg_tensorfile *f;
  if (mg_safetensors_parse((const uint8_t *)s, len, what, &f)) return io_raise(L, "");
  return io_push_file(L, S, f);
}

/* Reads list arg `idx` of strings into a lua_newuserdatauv'd array (anchored on the stack). */
static const char **io_strings(lua_State *L, int idx, int n, const char *what) {
  const char **a = lua_newuserdatauv(L, sizeof *a * (size_t)(n + 1), 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      mgL_error(L, "mg.save: %s %d must be a string, got %s", what, i + 1, luaL_typename(L, -1));
    a[i] = lua_tostring(L, -1);
    lua_pop(L, 1);  /* still referenced by the list at idx */
  }
  return a;
}

/* core.safetensors_save(path, names, tensors [, meta_keys, meta_values]). */
static int io_save(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  int n = (int)lua_rawlen(L, 2), nm = 0;
  if ((int)lua_rawlen(L, 3) != n) return mgL_error(L, "mg.save: %d names but %d tensors", n, (int)lua_rawlen(L, 3));
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    luaL_checktype(L, 5, LUA_TTABLE);
    nm = (int)lua_rawlen(L, 4);
    if ((int)lua_rawlen(L, 5) != nm) return mgL_error(L, "mg.save: metadata keys and values differ in number");
  }
  const char **names = io_strings(L, 2, n, "name");
  const char **keys = nm ? io_strings(L, 4, nm, "metadata key") : NULL;
  const char **vals = nm ? io_strings(L, 5, nm, "metadata value") : NULL;
  mg_tensor **ts = lua_newuserdatauv(L, sizeof *ts * (size_t)(n + 1), 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 3, i + 1);
    ts[i] = mgL_testtensor(L, -1);
    if (!ts[i]) return mgL_error(L, "mg.save: '%s' must be a tensor, got %s", names[i], luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  if (mg_safetensors_save(path, n, names, ts, nm, keys, vals)) return io_raise(L, "mg.");
  return 0;
}

/* core.write_file_atomic(path, bytes). */
static int io_write_atomic(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  if (mg_write_file_atomic(path, s, len)) return io_raise(L, "mg.io.");
  return 0;
}

/* core.read_file(path) -> the file's bytes as a string. */
static int io_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  uint8_t *buf;
  size_t len;
  if (mg_read_file(path, &buf, &len)) return io_raise(L, "mg.io.");
  lua_pushlstring(L, (const char *)buf, len);  /* only a memory error could raise here */
  mg_free(buf);
  return 1;
}

/* core.read_file_gunzip(path) -> the decompressed bytes (zlib, in process). */
static int io_read_gunzip(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  uint8_t *buf;
  size_t len;
  if (mg_read_file_gunzip(path, &buf, &len)) return io_raise(L, "");
  lua_pushlstring(L, (const char *)buf, len);
  mg_free(buf);
  return 1;
}

/* core.isatty(fd) -> whether fd (1 = stdout) is a terminal. */
static int io_isatty(lua_State *L) {
  lua_pushboolean(L, mg_isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* core.path_exists(path), core.path_isdir(path) -> bool. A path the
 * file-access policy refuses is an error here, not a quiet false. */
static int io_exists(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (mg_path_check("exists", path, 0)) return io_raise(L, "mg.io.");
  lua_pushboolean(L, mg_path_exists(path));
  return 1;
}
static int io_isdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (mg_path_check("isdir", path, 0)) return io_raise(L, "mg.io.");
  lua_pushboolean(L, mg_path_isdir(path));
  return 1;
}

/* core.mkdir(path [, parents]). */
static int io_mkdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (mg_mkdir(path, lua_toboolean(L, 2))) return io_raise(L, "mg.io.");
  return 0;
}

/* core.listdir(path) -> sorted list of names. The C buffer is copied into a
 * table before anything can raise but a memory error, which leaks it (as
 * read_file's would): the table is preallocated to keep that to the strings. */
static int io_listdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char *buf;
  size_t len;
  int n;
  if (mg_listdir(path, &buf, &len, &n)) return io_raise(L, "mg.io.");
  lua_createtable(L, n, 0);
  const char *p = buf;
  for (int i = 0; i < n; i++) {
    size_t l = strlen(p);
    lua_pushlstring(L, p, l);
    lua_rawseti(L, -2, i + 1);
    p += l + 1;
  }
  mg_free(buf);
  return 1;
}

/* core.remove(path), core.remove_tree(path). */
static int io_remove(lua_State *L) {
  if (mg_remove(luaL_checkstring(L, 1))) return io_raise(L, "mg.io.");
  return 0;
}
static int io_remove_tree(lua_State *L) {
  if (mg_remove_tree(luaL_checkstring(L, 1))) return io_raise(L, "mg.io.");
  return 0;
}

/* core.rename(from, to). */
static int io_rename(lua_State *L) {
  const char *from = luaL_checkstring(L, 1), *to = luaL_checkstring(L, 2);
  if (mg_rename(from, to)) return io_raise(L, "mg.io.");
  return 0;
}

/* Pushes JSON node n as a Lua value: null as nil, numbers as floats (the
 * stdlib turns whole ones into integers), arrays and objects as tables (a
 * null member or element is left out, as nil). */
static void json_push(lua_State *L, const mg_json *n) {
  luaL_checkstack(L, 4, "json: nested too deeply");
  switch (mg_json_type(n)) {
  case MG_JSON_FALSE: lua_pushboolean(L, 0); break;
  case MG_JSON_TRUE: lua_pushboolean(L, 1); break;
  case MG_JSON_NUMBER: lua_pushnumber(L, mg_json_number(n)); break;
  case MG_JSON_STRING: lua_pushstring(L, mg_json_string(n)); break;
  case MG_JSON_ARRAY: {
    lua_newtable(L);
    lua_Integer i = 0;
    for (const mg_json *c = mg_json_child(n); c; c = mg_json_next(c)) {
      i++;
      if (mg_json_type(c) == MG_JSON_NULL) continue;
      json_push(L, c);
      lua_rawseti(L, -2, i);
    }
    break;
  }
  case MG_JSON_OBJECT:
    lua_newtable(L);
    for (const mg_json *c = mg_json_child(n); c; c = mg_json_next(c)) {
      if (mg_json_type(c) == MG_JSON_NULL) continue;
      json_push(L, c);
      lua_setfield(L, -2, mg_json_key(c));
    }
    break;
  default: lua_pushnil(L);
  }
}

/* core.json_decode(text) -> the value. The tree is walked inside a
 * protected call and freed after it, so that a memory error cannot leak it. */
static int json_walk(lua_State *L) {
  json_push(L, (const mg_json *)lua_touserdata(L, 1));
  return 1;
}

static int io_json_decode(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  mg_json *root;
  if (mg_json_parse(text, len, &root)) return io_raise(L, "");
  lua_pushcfunction(L, json_walk);
  lua_pushlightuserdata(L, root);
  int st = lua_pcall(L, 1, 1, 0);  /* a memory error while walking must not leak the tree */
  mg_json_free(root);
  if (st != LUA_OK) return lua_error(L);
  return 1;
}

/* core.process_id(), core.process_alive(pid) -> true, false, or nil (cannot tell). */
static int io_process_id(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)mg_process_id());
  return 1;
}
static int io_process_alive(lua_State *L) {
  int a = mg_process_alive((int64_t)luaL_checkinteger(L, 1));
  if (a < 0) lua_pushnil(L);
  else lua_pushboolean(L, a);
  return 1;
}

static const luaL_Reg io_fns[] = {
    {"json_decode", io_json_decode},
    {"read_file_gunzip", io_read_gunzip},
    {"isatty", io_isatty},
    {"process_id", io_process_id},
    {"process_alive", io_process_alive},
    {"safetensors_load", io_load},
    {"safetensors_parse", io_parse},
    {"safetensors_save", io_save},
    {"write_file_atomic", io_write_atomic},
    {"read_file", io_read},
    {"path_exists", io_exists},
    {"path_isdir", io_isdir},
    {"mkdir", io_mkdir},
    {"listdir", io_listdir},
    {"remove", io_remove},
    {"remove_tree", io_remove_tree},
    {"rename", io_rename},
    {NULL, NULL}};

void mgL_open_io(lua_State *L, int state_idx, int module_idx) {
  lua_pushvalue(L, module_idx);
  lua_pushvalue(L, state_idx);
  luaL_getmetatable(L, MGL_TENSOR);  /* upvalue 2: what mgL_testtensor compares with */
  luaL_setfuncs(L, io_fns, 2);
  lua_pop(L, 1);
}
