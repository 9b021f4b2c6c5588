-- autograph_corpus_spec.lua — the AutoGraph corpus (tests/corpus/autograph),
-- run by tests/spec/autograph_corpus.lua (see there for the three ways each
-- function runs). The cases that use 5.4-only syntax (//) are in
-- tests/corpus/autograph_lua54, run by autograph_corpus_lua54_spec.lua.

local corpus = require "tests.spec.autograph_corpus"

local total = corpus.run(corpus.ROOT .. "/tests/corpus/autograph/", describe, it, assert)

describe("corpus size", function()
  it("has at least 50 functions", function() assert.is_true(total >= 50, "only " .. total) end)
end)
