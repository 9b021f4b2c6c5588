-- moongrad.nn.class: the small class helper behind layers, models,
-- optimizers, losses, metrics and callbacks.
--
-- A class is a table that is the metatable of its instances. Its __index is
-- a function so that classes can declare computed properties (Keras's
-- `layer.weights`, `optimizer.learning_rate`): a key missing from the
-- instance is looked up along the class chain, then in the chain's getters
-- (`Class.getters.name = function(self) ... end`). Assigning a key that has a
-- setter (`Class.setters.name`) calls it; other new keys go to the instance
-- after an optional `__track(key, value)` hook (layers use it to record
-- sublayers in assignment order, so weight order never depends on `pairs`).
-- Metamethods are not inherited by Lua, so `extend` copies them down.
-- `__members` (the class itself) tells the REPL's Tab completion where an
-- instance's methods and getters are, since it cannot call __index.
-- Portable Lua (5.4 and LuaJIT).
local M = {}

local METAMETHODS = { "__call", "__tostring", "__add", "__sub", "__mul", "__div", "__unm", "__len", "__eq",
  "__concat", "__close" }

local function lookup_getter(cls, k)
  local c = cls
  while c do
    local g = rawget(c, "getters")
    if g and g[k] then return g[k] end
    c = rawget(c, "super")
  end
  return nil
end

local function lookup_setter(cls, k)
  local c = cls
  while c do
    local s = rawget(c, "setters")
    if s and s[k] then return s[k] end
    c = rawget(c, "super")
  end
  return nil
end

local function make_class(name, parent)
  local cls = { class_name = name, super = parent, getters = {}, setters = {} }
  cls.__members = cls   -- for the REPL's completion, which runs no __index function (lua/repl.c)
  cls.__index = function(obj, k)
    local v = cls[k]
    if v ~= nil then return v end
    local g = lookup_getter(cls, k)
    if g then return g(obj) end
    return nil
  end
  cls.__newindex = function(obj, k, v)
    local s = lookup_setter(cls, k)
    if s then return s(obj, v) end
    local track = cls.__track
    if track then track(obj, k, v) end
    rawset(obj, k, v)
  end
  if parent then
    for _, mm in ipairs(METAMETHODS) do
      if rawget(cls, mm) == nil and parent[mm] ~= nil then cls[mm] = parent[mm] end
    end
  end
  return setmetatable(cls, {
    __index = parent,
    __call = function(c, ...) return c.new(c, ...) end,
    __tostring = function() return "class " .. name end,
  })
end

local Object = make_class("Object", nil)
M.Object = Object

-- Class:new(...): an instance initialised by Class:__init(...).
function Object.new(cls, ...)
  local obj = setmetatable({}, cls)
  obj:__init(...)
  return obj
end

function Object:__init() end

-- Class:extend(name): a subclass; its metamethods start as the parent's.
function Object.extend(cls, name)
  if type(name) ~= "string" then error("extend: expected a class name (string), got " .. type(name), 2) end
  return make_class(name, cls)
end

-- isinstance(obj, Class): obj's class is Class or derives from it.
function M.isinstance(obj, cls)
  if type(obj) ~= "table" then return false end
  local c = getmetatable(obj)
  while c do
    if c == cls then return true end
    c = rawget(c, "super")
  end
  return false
end

-- The class of an instance (nil for anything else).
function M.class_of(obj)
  if type(obj) ~= "table" then return nil end
  local c = getmetatable(obj)
  if type(c) == "table" and rawget(c, "class_name") then return c end
  return nil
end

return M
