-- moongrad.data.dataset: the Dataset class (TF's tf.data.Dataset).
--
-- A dataset is an immutable node of a pipeline: a source (tensor slices,
-- a range, a generator) or a transform holding its input. Iterating one
-- builds a chain of Lua closures, one per node, each pulling elements from
-- the one below (`node:_iter()` returns a function giving the next element
-- or nil at the end). Transforms live in their own modules (transforms,
-- shuffle, batching, prefetch, sources), which add methods to this class.
-- Elements are described in data/structure.lua. Portable Lua.
local structure = require("moongrad.data.structure")

--- mg.data.Dataset: an input pipeline (TF's tf.data.Dataset), immutable: each method returns a new one.
--- Sources: Dataset.from_tensor_slices(x, y), Dataset.range(n), Dataset.from_generator(fn);
--- transforms: ds:map(fn), ds:filter(fn), ds:shuffle(n), ds:batch(n), ds:repeat_(n), ds:prefetch(n), ...
--- Example:
---   local ds = mg.data.Dataset.from_tensor_slices(mg.arange(6), mg.arange(6) * 10):shuffle(6, {seed = 1}):batch(4)
---   for x, y in ds:iter() do print(x, y) end
local Dataset = {}
Dataset.__index = Dataset

-- TF's cardinality constants.
Dataset.INFINITE = -1
Dataset.UNKNOWN = -2

--- mg.data.is_dataset(x) -> whether x is a Dataset.
function Dataset.is_dataset(x) return getmetatable(x) == Dataset end

-- A new node: kind, input (or nil), card (cardinality), iter (a function(node) -> next()).
function Dataset._new(kind, input, card, iter, fields)
  local d = setmetatable(fields or {}, Dataset)
  d.kind, d.input, d.card, d._make = kind, input, card, iter
  return d
end

function Dataset:_iter() return self._make(self) end

--- ds:cardinality() -> the number of elements, or mg.data.INFINITE_CARDINALITY (-1) / UNKNOWN_CARDINALITY (-2).
function Dataset:cardinality() return self.card end

-- for x, y in ds:iter() do ... end: a tuple element comes unpacked (x, y);
-- a single tensor or a dict comes as one value. ds:iter{packed=true} gives
-- every element as one value (a tuple as the table {x, y}).
function Dataset:iter(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("Dataset:iter: opts must be a table like {packed=true}, got " .. type(opts), 2)
  end
  local nxt = self:_iter()
  if opts and opts.packed then return nxt end
  return function() return structure.unpacked(nxt()) end
end

-- The elements as a Lua list (at most n of them; an infinite dataset needs n).
function Dataset:as_table(n)
  if n == nil and self.card == Dataset.INFINITE then
    error("Dataset:as_table: the dataset is infinite; give n, the number of elements wanted", 2)
  end
  local out = {}
  local nxt = self:_iter()
  while n == nil or #out < n do
    local e = nxt()
    if e == nil then break end
    out[#out + 1] = e
  end
  return out
end
Dataset.take_few = Dataset.as_table

-- The element structure of the first element, as text (empty datasets: "empty").
function Dataset:element_spec()
  local e = self:_iter()()
  if e == nil then return "empty" end
  return structure.describe(e)
end

function Dataset:__tostring()
  local c = self.card
  local cs = c == Dataset.INFINITE and "infinite" or c == Dataset.UNKNOWN and "unknown" or tostring(c)
  return string.format("Dataset<%s, cardinality %s>", self.kind, cs)
end

-- Argument checks shared by the methods: errors name the method and the argument.
function Dataset._check_count(method, name, n, allow_nil, allow_minus1)
  if n == nil and allow_nil then return end
  if type(n) ~= "number" or n ~= math.floor(n) or (n < 0 and not (allow_minus1 and n == -1)) then
    error(string.format("Dataset:%s: %s must be a non-negative integer%s, got %s", method, name,
      allow_minus1 and " (or -1)" or (allow_nil and " (or nil)" or ""), tostring(n)), 3)
  end
end

function Dataset._check_self(self, method)
  if not Dataset.is_dataset(self) then
    error(string.format("Dataset:%s: call it with ':' on a dataset (got %s)", method, type(self)), 3)
  end
end

return Dataset
