-- The LuaRocks package: `luarocks make` in a checkout builds the C module
-- moongrad.core against the system's BLIS (plus cJSON and zlib) and installs
-- it with the Lua modules (stdlib/moongrad, autograph). Build type "make":
-- the Makefile's `rock` and `rock-install` targets (tests/install/run.sh runs
-- them as LuaRocks would).
rockspec_format = "3.0"
package = "moongrad"
version = "0.1.0-1"
source = {
  url = "moongrad-0.1.0.tar.gz",
  dir = "moongrad-0.1.0",
}
description = {
  summary = "Tensors, automatic differentiation and neural networks for Lua 5.4",
  detailed = [[
moongrad is a C11 tensor and autodiff engine with a Keras-style library:
eager tensors, GradientTape, staged functions (mg.func) with AutoGraph,
and mg.nn. This rock installs the Lua 5.4 module (require "moongrad").]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  BLIS = { library = "blis" },
  LAPACK = { library = "lapack" },
  CJSON = { header = "cjson/cJSON.h", library = "cjson" },
  ZLIB = { header = "zlib.h", library = "z" },
  PROTOBUF_C = { header = "protobuf-c/protobuf-c.h", library = "protobuf-c" },
}
build = {
  type = "make",
  build_target = "rock",
  build_variables = {
    LUA_INCDIR = "$(LUA_INCDIR)",
    BLIS_LIBDIR = "$(BLIS_LIBDIR)",
  },
  install_target = "rock-install",
  install_variables = {
    LUADIR = "$(LUADIR)",
    LIBDIR = "$(LIBDIR)",
  },
}
