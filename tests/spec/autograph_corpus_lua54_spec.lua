-- autograph_corpus_lua54_spec.lua — the AutoGraph corpus cases that use Lua
-- 5.4's // (tests/corpus/autograph_lua54), run as autograph_corpus_spec.lua
-- runs the rest. LuaJIT cannot parse them: tests/luajit/skip.lua skips this file.

local corpus = require "tests.spec.autograph_corpus"

local total = corpus.run(corpus.ROOT .. "/tests/corpus/autograph_lua54/", describe, it, assert)

describe("corpus size (5.4-only cases)", function()
  it("has the four cases of idiv.lua", function() assert.equal(4, total) end)
end)
