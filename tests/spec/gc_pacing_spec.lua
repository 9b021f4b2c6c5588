-- gc_pacing_spec.lua — the collector is paced by tensor count, not only by
-- the Lua heap (lua/capi/tensor.c, count_step).
--
-- The collector sees a ~50-byte box per small tensor and, in generational
-- mode, collects when the Lua heap has grown by 20% of its size. With a big
-- live heap (a large script, the stdlib, AutoGraph loaded) that let tens of
-- thousands of garbage tensors pile up per collection, more than the engine's
-- per-thread header/storage pools (core/tensor.c, 8192 each) hold, and the
-- rest went through glibc's aligned_alloc slow path: eager 2x2 ops ran 4-8x
-- slower. Timing is too noisy for a spec, so these check the cause: how far
-- the Lua heap grows (boxes not yet collected) during a loop of small ops,
-- with a large live heap. Before the count-paced step it grew by 20% of the
-- heap (over 2 MiB here); now by about two batches of boxes (~0.5 MiB: a box
-- with a finaliser is freed one collection after its tensor).
--
-- Lua 5.4 only (tests/luajit/skip.lua): the FFI binding's tensors are cdata
-- with their own finalisers and no count-paced step.

local mg = require "moongrad"

-- Grows a large live Lua heap, then returns the peak heap growth (KiB) over
-- n eager `a + b` on 2x2 float32 tensors, and the last result.
local function growth(n)
  local keep = {}
  for i = 1, 100000 do keep[i] = { i, tostring(i) } end
  collectgarbage("collect")
  local base = collectgarbage("count")
  local a = mg.tensor({ { 1, 2 }, { 3, 4 } }, mg.float32)
  local b = mg.tensor({ { 5, 6 }, { 7, 8 } }, mg.float32)
  local peak, c = base, nil
  for _ = 1, n do
    c = a + b
    local now = collectgarbage("count")
    if now > peak then peak = now end
  end
  assert(#keep == 100000)
  return peak - base, base, c
end

describe("gc pacing by tensor count", function()
  after_each(function()
    collectgarbage("restart")
    collectgarbage("generational")
  end)

  it("bounds the garbage boxes of small eager ops with a large live heap (generational)", function()
    collectgarbage("generational")
    local grew, base, c = growth(60000)
    assert.is_true(base > 12 * 1024, ("the live heap is large: %.0f KiB"):format(base))
    assert.is_true(grew < 1024, ("the heap grew by %.0f KiB over a %.0f KiB live heap"):format(grew, base))
    assert.same({ { 6, 8 }, { 10, 12 } }, c:totable())
  end)

  it("bounds them in incremental mode too", function()
    collectgarbage("incremental")
    local grew, base = growth(60000)
    assert.is_true(grew < 1024, ("the heap grew by %.0f KiB over a %.0f KiB live heap"):format(grew, base))
  end)

  it("leaves a stopped collector stopped", function()
    collectgarbage("generational")
    collectgarbage("stop")
    local grew = growth(60000)
    collectgarbage("restart")
    -- 60000 uncollected boxes of at least 40 bytes each
    assert.is_true(grew > 60000 * 40 / 1024, ("the heap grew by only %.0f KiB"):format(grew))
    assert.is_true(collectgarbage("isrunning"))
  end)
end)
