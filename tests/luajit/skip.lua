-- skip.lua — the specs (or single tests) that do not run under LuaJIT, and why.
--
-- tests/luajit/run.lua reads it: a file listed in `files` is skipped whole
-- (LuaJIT cannot parse it: Lua 5.4 syntax); a test whose full name contains
-- one of the `tests` texts (plain text, not a pattern) is filtered out. Every
-- skip is counted and its reason printed. The marks live here rather than in
-- the specs so that the spec files stay plain Lua 5.4 programs.
--
-- The specs are written in the subset both interpreters parse; what only
-- Lua 5.4 can say lives in files of its own (tests/spec/*lua54_spec.lua),
-- skipped whole here. What is left is what LuaJIT cannot do:
--   syntax    the // operator, <close> (the files above)
--   number    LuaJIT has one number type, doubles: int64 values beyond 2^53
--             (math.maxinteger, wrap-around past 2^63) cannot be written or
--             read back exactly, and a literal like 0.0 is an integer
--   where     the FFI binding installs no "where" hook: it would be a
--             C-to-Lua callback from every C call that makes a symbolic
--             tensor, and LuaJIT forbids callbacks from C calls made by
--             JIT-compiled code (the op path is compiled, for eager speed);
--             so a symbolic tensor that escapes its trace is not located

local BIG = "number: int64 values beyond 2^53 (LuaJIT's numbers are doubles)"
local LITERAL = "number: 0.0 / -1 are integers under LuaJIT (one number type), "
  .. "so a weak int64 meets a float64 branch (a dtype error, as 0 would be under Lua 5.4)"

return {
  files = {
    { "tests/spec/lua54_spec.lua", "syntax: the // operator and <close>, which only Lua 5.4 has" },
    { "tests/spec/autograph_corpus_lua54_spec.lua", "syntax: its corpus cases use // (tests/corpus/autograph_lua54)" },
    { "tests/spec/session_lua54_spec.lua", "syntax: a Session as a <close> variable, which only Lua 5.4 has" },
    { "tests/spec/gc_pacing_spec.lua", "binding: checks the Lua 5.4 C binding's count-paced GC step (lua/capi/tensor.c); FFI tensors are cdata" },
  },
  tests = {
    { "tests/spec/elementwise_spec.lua", "cast converts floats to ints by truncation, saturating", BIG .. " (math.maxinteger)" },
    { "tests/spec/elementwise_spec.lua", "int64 arithmetic wraps around", BIG },
    { "tests/spec/elementwise_spec.lua", "int64 values beyond 2^53 stay exact", BIG },
    { "tests/spec/elementwise_spec.lua", "pow of int64 wraps as Lua's integer multiplication does", BIG },
    { "tests/spec/autograph_corpus_spec.lua", "corpus loops.lua bisection", LITERAL .. " (lo = 0.0)" },
    { "tests/spec/autograph_corpus_spec.lua", "corpus mixed.lua early exit before a loop", LITERAL .. " (return -1)" },
    { "tests/spec/staging_spec.lua", "a symbolic tensor that escapes its trace names where it was created", "where" },
    { "tests/spec/half_dtypes_spec.lua", "run every op of the oracle's cases on bfloat16 inputs",
      "syntax: tests/oracle/cases.lua is a Lua 5.4 program (math.tointeger); the same test runs under Lua 5.4" },
  },
}
