-- moongrad.data.prefetch: ds:prefetch(n, {thread=true}).
--
-- A pipeline made only of from_tensor_slices, shuffle, take, skip, repeat_
-- and at most one batch (with only take/skip/repeat_ after it) has no Lua
-- callbacks, so it is compiled into a plan for core/prefetch.c: a C thread
-- runs it and keeps up to n elements gathered ahead, while the Lua thread
-- trains on the previous ones. The plan mirrors the Lua iterators step for
-- step, so the elements are identical to the Lua path's (a spec checks it)
-- and the shuffle stages' iteration counters are kept in step after each
-- element. Any other pipeline (map, filter, generators, ...) is read n
-- elements ahead synchronously, in the Lua thread: that only reorders the
-- work, it does not overlap it. {thread=false} forces the synchronous path;
-- under LuaJIT (no C module moongrad.prefetch) it is the only one.
-- Portable Lua.
local core = require("moongrad.core")
local Dataset = require("moongrad.data.dataset")
local structure = require("moongrad.data.structure")

local have_c, cmod = pcall(require, "moongrad.prefetch")
if not have_c or type(cmod) ~= "table" then cmod = nil end

Dataset.AUTOTUNE = -1
local AUTOTUNE_SIZE = 4

-- The C plan for the pipeline under a prefetch node, or nil when it has Lua parts.
local function compile(node)
  local stages, shuffles, batched = {}, {}, false
  local d = node.input
  while d and d.kind ~= "from_tensor_slices" do
    local k = d.kind
    if k == "shuffle" then   -- (walking down: a shuffle seen before the batch is above it)
      table.insert(stages, 1, { kind = "shuffle", n = d.buffer_size, seed = d.seed, epoch = d.epoch, flag = d.reshuffle })
      table.insert(shuffles, 1, d)
    elseif k == "batch" then
      if batched or #shuffles > 0 then return nil end   -- C shuffles rows, not batches
      batched = true
      table.insert(stages, 1, { kind = "batch", n = d.batch_size, flag = d.drop_remainder })
    elseif k == "take" or k == "skip" or k == "repeat" then
      table.insert(stages, 1, { kind = k, n = d.count })
    else
      return nil
    end
    d = d.input
  end
  if not d or #d.sources > 16 or #shuffles > 8 then return nil end
  for _, t in ipairs(d.sources) do
    if core.is_symbolic and core.is_symbolic(t) then return nil end
  end
  local sources = {}
  for i, t in ipairs(d.sources) do sources[i] = core.contiguous(t) end
  return { sources = sources, stages = stages, shuffles = shuffles, template = d.template }
end

local function threaded_iter(node, plan)
  local pf = cmod.new(plan.sources, plan.stages, node.buffer)
  local function sync_epochs()
    local e = pf:epochs()
    for i, s in ipairs(plan.shuffles) do s.epoch = e[i] end
  end
  sync_epochs()
  local ended = false
  return function()
    if ended then return nil end
    local leaves = { pf:next() }
    sync_epochs()
    if #leaves == 0 then
      ended = true
      pf:close()   -- joins the worker now rather than at the next collection
      return nil
    end
    return (structure.unflatten(plan.template, leaves))
  end
end

local function sync_iter(node)
  local up, queue, head, tail, done = node.input:_iter(), {}, 1, 0, false
  return function()
    while not done and tail - head + 1 <= node.buffer do
      local e = up()
      if e == nil then done = true else tail = tail + 1; queue[tail] = e end
    end
    if head > tail then return nil end
    local e = queue[head]
    queue[head] = nil
    head = head + 1
    return e
  end
end

-- ds:prefetch(n, {thread=true}): keeps n elements ready ahead of the consumer
-- (mg.data.AUTOTUNE: 4).
function Dataset:prefetch(n, opts)
  Dataset._check_self(self, "prefetch")
  if n == Dataset.AUTOTUNE then n = AUTOTUNE_SIZE end
  if type(n) ~= "number" or n ~= math.floor(n) or n < 1 then
    error("Dataset:prefetch: buffer_size must be a positive integer or mg.data.AUTOTUNE, got " .. tostring(n), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("Dataset:prefetch: opts must be a table like {thread=false}, got " .. type(opts), 2)
  end
  local want_thread = not (opts and opts.thread == false)
  return Dataset._new("prefetch", self, self.card, function(node)
    local plan = want_thread and cmod and compile(node) or nil
    node.threaded = plan ~= nil
    if plan then return threaded_iter(node, plan) end
    return sync_iter(node)
  end, { buffer = n, want_thread = want_thread })
end

-- Whether a C thread can run this pipeline's prefetch (for tests and curious users).
function Dataset:prefetch_is_threaded()
  return self.kind == "prefetch" and self.want_thread and cmod ~= nil and compile(self) ~= nil
end

return Dataset
