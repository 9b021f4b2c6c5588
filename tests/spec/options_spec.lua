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
