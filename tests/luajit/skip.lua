-- skip.lua — the specs (or single tests) that do not run under LuaJIT, and why.
--
-- tests/luajit/run.lua reads it: a file listed in `files` is skipped whole
-- (LuaJIT cannot parse it: Lua 5.4 syntax); a test whose full name contains
-- one of the `tests` texts (plain text, not a pattern) is filtered out. Every
-- skip is counted and its reason printed. The marks live here rather than in
-- the specs so that the spec files stay plain Lua 5.4 programs.
--
-- Reasons, in short:
--   syntax    the file uses //, bitwise operators, <close> or 5.4 escapes
--   number    the test depends on Lua 5.4's two number types: under LuaJIT a
--             number with no fraction is an integer, so mg.tensor(3.0) is
--             int64 (and cannot be watched by a tape), an integral float
--             parameter makes an int64 Variable, and exact int64 values
--             beyond 2^53 do not exist
--   stdlib    needs a Lua 5.4 library function the stdlib relies on
--   autograph staged code is loaded into _G with the function's _ENV
--             upvalue; LuaJIT functions have no _ENV upvalue (their
--             environment is getfenv(f)), so globals of a function that has
--             its own environment (busted's assert in a spec) are not found,
--             and globals are not guarded: autograph/init.lua and
--             stdlib/moongrad/func.lua need getfenv/setfenv under LuaJIT
--   where     the FFI binding installs no "where" hook (it would be a
--             C-to-Lua callback inside every op while tracing), so a
--             symbolic tensor that escapes its trace is not located

local NUMBER = "number: an integral float literal is an integer under LuaJIT (one number type)"
local WATCH = NUMBER .. "; mg.tensor(<integral>) is int64 and a tape cannot watch it"

return {
  files = {
    { "tests/spec/autograph_corpus_spec.lua", "syntax: its corpus files use // (tests/corpus/autograph)" },
    { "tests/spec/autograph_runtime_spec.lua", "syntax: //" },
    { "tests/spec/autograph_spec.lua", "syntax: //" },
    { "tests/spec/autograph_syntax_spec.lua", "syntax: Lua 5.4 string escapes (\\u{...})" },
    { "tests/spec/bad_input_spec.lua", "syntax: one test uses <close> (the other 108 pass under LuaJIT when it is removed)" },
    { "tests/spec/elementwise_spec.lua", "syntax: // and bitwise operators" },
    { "tests/spec/matmul_spec.lua", "syntax: //" },
    { "tests/spec/nn_ops_spec.lua", "syntax: //" },
  },
  tests = {
    { "tests/spec/autodiff_spec.lua", "watches a constant: d(x*x)/dx at 3 is 6", WATCH },
    { "tests/spec/autodiff_spec.lua", "nested tapes: second derivative of x*x", WATCH },
    { "tests/spec/autodiff_spec.lua", "third derivative with three tapes", WATCH },
    { "tests/spec/autodiff_spec.lua", "a single tensor source gives a tensor, a list gives a list", WATCH },
    { "tests/spec/autodiff_spec.lua", "a source never used is nil (or zeros when asked)", WATCH },
    { "tests/spec/autodiff_spec.lua", "a tensor that was never watched gives nil", WATCH },
    { "tests/spec/autodiff_spec.lua", "a non-persistent tape answers once, then says why not", WATCH },
    { "tests/spec/autodiff_spec.lua", "a persistent tape keeps recording across gradient calls", WATCH },
    { "tests/spec/autodiff_spec.lua", "records from creation; stop() and start() pause and resume", WATCH },
    { "tests/spec/autodiff_spec.lua", "stop_recording(fn) returns fn's results", WATCH },
    { "tests/spec/autodiff_spec.lua", "a constant-only result has no gradient", WATCH },
    { "tests/spec/autodiff_spec.lua", "stop_recording pauses only this tape", WATCH },
    { "tests/spec/autodiff_spec.lua", "record(fn) records while fn runs", WATCH },
    { "tests/spec/autodiff_spec.lua", "errors of gradient() an integer source", WATCH },
    { "tests/spec/autodiff_spec.lua", "errors of gradient() a bad unconnected_gradients value", WATCH },
    { "tests/spec/autodiff_spec.lua", "missing or malformed sources, mismatched output_gradients", WATCH },
    { "tests/spec/autodiff_spec.lua", "jacobian for a table of sources gives a table of jacobians", WATCH },
    { "tests/spec/autodiff_spec.lua", "have a name, trainable flag and dtype", NUMBER .. "; mg.Variable(3) is float32" },
    { "tests/spec/autodiff_spec.lua", "log1pexp in a tape", WATCH },
    { "tests/spec/autodiff_spec.lua", "log1pexp through mg.grad", WATCH },
    { "tests/spec/autodiff_spec.lua", "several inputs: backward returns one gradient each", WATCH },
    { "tests/spec/autodiff_spec.lua", "an error in the backward function surfaces as a Lua error", WATCH },
    { "tests/spec/autodiff_spec.lua", "value_and_grad returns the value too", WATCH },
    { "tests/spec/reduce_spec.lua", "sum wraps int64 overflow", NUMBER .. "; int64 values beyond 2^53" },
    { "tests/spec/reduce_spec.lua", "mean keeps large int64 values exact", NUMBER .. "; int64 values beyond 2^53" },
    { "tests/spec/reduce_spec.lua", "give rows that sum to 1", NUMBER .. "; the spec compares integer-typed expectations exactly" },
    { "tests/spec/reduce_spec.lua", "work along any axis and on strided views", NUMBER .. "; the spec compares integer-typed expectations exactly" },
    { "tests/spec/reduce_spec.lua", "handle long rows (threads)", NUMBER .. "; the spec compares integer-typed expectations exactly" },
    { "tests/spec/staging_spec.lua", "staged == eager: a corpus of functions", "autograph: the corpus asserts inside staged functions" },
    { "tests/spec/staging_spec.lua", "a changed global retraces and its new value is used", "autograph: globals are not guarded without _ENV" },
    { "tests/spec/staging_spec.lua", "a symbolic tensor that escapes its trace names where it was created", "where" },
    { "tests/spec/nn_losses_spec.lua", "categorical and sparse categorical cross-entropy", NUMBER .. "; integral logits are int64" },
    { "tests/spec/nn_losses_spec.lua", "uses a softmax layer's logits, staying finite", NUMBER .. "; integral logits are int64" },
    { "tests/spec/nn_losses_spec.lua", "gives gradients through the fused op", WATCH },
    { "tests/spec/nn_losses_spec.lua", "optimizers SGD, with momentum and Nesterov", NUMBER .. "; integral parameters are int64 Variables" },
    { "tests/spec/nn_losses_spec.lua", "optimizers Adam and AdamW", NUMBER .. "; integral parameters are int64 Variables" },
    { "tests/spec/nn_losses_spec.lua", "optimizers RMSprop and Adagrad", NUMBER .. "; integral parameters are int64 Variables" },
    { "tests/spec/nn_losses_spec.lua", "clip by norm, value and global norm", NUMBER .. "; integral parameters are int64 Variables" },
    { "tests/spec/nn_losses_spec.lua", "learning rates are settable and schedules follow the step", NUMBER .. "; integral parameters are int64 Variables" },
    { "tests/spec/nn_losses_spec.lua", "stage with mg.func without retracing when the rate changes", NUMBER .. "; integral parameters are int64 Variables" },
    { "tests/spec/nn_training_spec.lua", "apply_gradients takes {grad, var} pairs", NUMBER .. "; integral parameters are int64 Variables" },
    { "tests/spec/nn_layers_spec.lua", "recurrent layers give the same values and gradients eagerly and staged",
      "stdlib: an index tensor is made with math.type(...) == 'integer', false under LuaJIT, so it is float32" },
    { "tests/spec/nn_config_spec.lua", "datasets read IDX files, gzip-compressed or not", "stdlib: datasets/idx.lua needs string.unpack" },
  },
}
