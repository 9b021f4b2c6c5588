-- session_lua54_spec.lua — a Session as a <close> variable (Lua 5.4 syntax: LuaJIT skips this
-- file, tests/luajit/skip.lua); the rest of mg.Session is in session_spec.lua.

local mg = require "moongrad"

describe("mg.Session <close>", function()
  it("closes the session at the end of its scope", function()
    local g = mg.Graph()
    local c = g:as_default(function() return mg.constant(5.0) * mg.constant(6.0) end)
    local kept
    do
      local sess <close> = mg.Session { graph = g }
      kept = sess
      assert.equal(30, sess:run(c):item())
    end
    assert.is_true(kept.closed)
    assert.has_error(function() kept:run(c) end)
  end)
end)
