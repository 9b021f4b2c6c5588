-- moongrad.data.shuffle: ds:shuffle(buffer_size, {seed=, reshuffle_each_iteration=true}).
--
-- TF's buffer semantics: the buffer is filled from the input up to
-- buffer_size elements; each output is a uniformly drawn buffer entry,
-- whose slot is then taken by the last entry (the buffer refills from the
-- input on the next call). buffer_size >= the dataset's size is a full
-- uniform shuffle; 1 is no shuffle. The draws come from data/rng.lua
-- seeded with (seed, k), where k counts the iterations of this dataset
-- when reshuffle_each_iteration is true (each repeat_ or new ds:iter()
-- reshuffles) and stays 0 otherwise. No seed: one is drawn from
-- mg.random when shuffle() is called, so mg.random.seed makes runs
-- reproducible. core/prefetch.c runs the same algorithm. Portable Lua.
local Dataset = require("moongrad.data.dataset")
local rng = require("moongrad.data.rng")

--- ds:shuffle(buffer_size, {seed=, reshuffle_each_iteration=true}) -> a Dataset of the elements in random order,
--- drawn from a buffer of buffer_size elements (TF's algorithm).
--- Example:
---   local ds = mg.data.Dataset.range(10):shuffle(10, {seed = 1})
function Dataset:shuffle(buffer_size, opts)
  Dataset._check_self(self, "shuffle")
  if type(buffer_size) ~= "number" or buffer_size ~= math.floor(buffer_size) or buffer_size < 1 then
    error("Dataset:shuffle: buffer_size must be a positive integer, got " .. tostring(buffer_size), 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("Dataset:shuffle: opts must be a table like {seed=1}, got " .. type(opts), 2) end
  local seed = opts.seed
  if seed == nil then seed = rng.fresh_seed()
  elseif type(seed) ~= "number" or seed ~= math.floor(seed) or seed < 0 or seed > rng.MAX_SEED then
    error("Dataset:shuffle: seed must be an integer in 0 .. 2^53-1, got " .. tostring(seed), 2)
  end
  local reshuffle = opts.reshuffle_each_iteration ~= false
  return Dataset._new("shuffle", self, self.card, function(node)
    local k = node.epoch
    if reshuffle then node.epoch = k + 1 end
    local g = rng.new(seed, k)
    local up, buf, n, done = node.input:_iter(), {}, 0, false
    return function()
      while not done and n < buffer_size do
        local e = up()
        if e == nil then done = true else n = n + 1; buf[n] = e end
      end
      if n == 0 then return nil end
      local j = rng.index(g, n) + 1
      local out = buf[j]
      buf[j] = buf[n]
      buf[n] = nil
      n = n - 1
      return out
    end
  end, { buffer_size = buffer_size, seed = seed, reshuffle = reshuffle, epoch = 0 })
end

return Dataset
