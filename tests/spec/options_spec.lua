-- options_spec.lua — the shared option checker (stdlib/moongrad/options.lua): unknown names,
-- types, ranges and fixed sets raise errors naming the function, the option and what is valid,
-- at the caller's line.
local options = require "moongrad.options"
local h = require "tests.spec.helpers"
local fails = h.fails

describe("options.check", function()
  local spec = {
    persistent = "boolean",
    momentum = { "number", min = 0, max = 1 },
    rate = { "number", above = 0, below = 1 },
    mode = { "string", one_of = { "same", "valid" } },
    steps = { "integer", min = 1 },
    init = "number|tensor",
    even = { "integer", check = function(v) if v % 2 ~= 0 then return "must be even, got " .. v end end },
  }

  it("accepts nil, an empty table and valid values", function()
    assert.same({}, options.check("f", nil, spec))
    local o = { persistent = true, momentum = 1, rate = 0.5, mode = "same", steps = 3, init = 2, even = 4 }
    assert.equal(o, options.check("f", o, spec))
  end)

  it("names an unknown option, suggests the near one and lists the valid ones", function()
    local e = fails(function() options.check("GradientTape", { persistant = true }, spec) end,
      "GradientTape: unknown option 'persistant'", "did you mean 'persistent'", "valid options: even, init, mode")
    assert.truthy(e:find("options_spec.lua:", 1, true), e)   -- the caller's line, not options.lua
    fails(function() options.check("f", { 3 }, spec) end, "unknown option [1]", "named, not positional")
    fails(function() options.check("f", { x = 1 }, {}) end, "it takes no options")
  end)

  it("checks types, ranges (closed and open), integers and fixed sets", function()
    fails(function() options.check("BatchNormalization", { momentum = 2 }, spec) end,
      "BatchNormalization: option 'momentum' must be in [0, 1], got 2")
    fails(function() options.check("f", { momentum = 0 / 0 }, spec) end, "got nan")
    fails(function() options.check("f", { rate = 0 }, spec) end, "'rate' must be in (0, 1), got 0")
    fails(function() options.check("f", { rate = 1 }, spec) end, "must be in (0, 1)")
    fails(function() options.check("f", { steps = 1.5 }, spec) end, "'steps' must be an integer, got 1.5")
    fails(function() options.check("f", { steps = 0 }, spec) end, "'steps' must be in [1, inf), got 0")
    fails(function() options.check("f", { mode = "SAME" }, spec) end, [[must be one of "same", "valid", got "SAME"]])
    fails(function() options.check("f", { persistent = 1 }, spec) end, "'persistent' must be boolean, got 1")
    fails(function() options.check("f", { init = "x" }, spec) end, "must be number or tensor")
    fails(function() options.check("f", { even = 3 }, spec) end, "'even' must be even, got 3")
    fails(function() options.check("f", 5, spec) end, "f: options must be a table, got 5")
  end)

  it("checks single values", function()
    assert.equal(3, options.value("arange", "step", 3, "number"))
    fails(function() options.value("Dense", "units", 0, { "integer", min = 1 }) end, "Dense: units must be in [1, inf), got 0")
  end)
end)

describe("the option tables of autodiff and staging", function()
  local mg = require "moongrad"
  it("GradientTape, Variable, gradient, grad and value_and_grad", function()
    fails(function() return mg.GradientTape { persistant = true } end, "GradientTape: unknown option 'persistant'",
      "did you mean 'persistent'")
    fails(function() return mg.GradientTape { persistent = 1 } end, "'persistent' must be boolean")
    fails(function() return mg.Variable(1.0, { trainble = false }) end, "Variable: unknown option 'trainble'")
    fails(function() return mg.Variable(1.0, { dtype = "float" }) end, "'dtype' must be one of")
    local t = mg.GradientTape()
    local x = mg.tensor(1.0, "float32")
    t:watch(x)
    local y = x * x
    fails(function() return t:gradient(y, x, { unconnected = "zero" }) end, "gradient: unknown option 'unconnected'")
    fails(function() return mg.grad(function(v) return v end, { argnum = 1 }) end, "unknown option 'argnum'")
    fails(function() return mg.grad(function(v) return v end, { argnums = 0 }) end, "'argnums' must be 1 or more")
    assert.truthy(mg.grad(function(a, b) return a * b end, { argnums = 2 })(mg.tensor(3.0, "float32"), mg.tensor(2.0, "float32")))
  end)

  it("mg.func: names, ranges, fixed sets and the passes table", function()
    local id = function(v) return v end
    fails(function() return mg.func(id, { on_retrace = "warm" }) end, [[must be one of "warn", "error", got "warm"]])
    fails(function() return mg.func(id, { max_traces = -1 }) end, "'max_traces' must be in [1, inf), got -1")
    fails(function() return mg.func(id, { max_traces = 1.5 }) end, "'max_traces' must be an integer")
    fails(function() return mg.func(id, { passes = { "cse" } }) end, 'entry [1] = "cse" is not a pass',
      "passes: constfold, cse, dce, algebra, fuse")
    fails(function() return mg.func(id, { passes = { cse = 0 } }) end, "'cse' must be true or false")
    fails(function() return mg.func(id, { autograph = "yes" }) end, [[must be true, false or "warn"]])
    fails(function() return mg.func(id, { nmae = "f" }) end, "func: unknown option 'nmae'", "did you mean 'name'")
    local f = mg.func(function(v) return v * 1 + 0 end, { passes = { algebra = false }, name = "ok" })
    assert.equal(2, f(mg.tensor(2)):item())
  end)

  it("mg.while_loop", function()
    fails(function()
      return mg.while_loop(function(i) return i < 3 end, function(i) return i + 1 end, { 0 }, { max_iterations = 3 })
    end, "while_loop: unknown option 'max_iterations'")
    fails(function()
      return mg.while_loop(function(i) return i < 3 end, function(i) return i + 1 end, { 0 }, { maximum_iterations = -2 })
    end, "'maximum_iterations' must be in [0, inf)")
  end)
end)
