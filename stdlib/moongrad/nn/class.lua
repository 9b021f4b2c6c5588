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
--
-- Dot calls: `model.compile{...}` passes the option table as self and would
-- silently configure that table; `model.fit(x, y)` passes a tensor. Every
-- method stored in a class (a function whose first parameter is `self`,
-- caught by the class's own __newindex, so subclasses and modules that add
-- methods later are covered) is wrapped once, at definition, in a check that
-- its receiver is an instance or a class; anything else raises "call it as
-- model:compile{...} (with a colon)" at the user's line. After a receiver's
-- first call the colon path pays one weak-table read, and the wrapper
-- tail-calls the method, so error levels inside it are unchanged. guard_methods applies the same rule
-- to the plain method tables outside this helper (Dataset, GradientTape).
-- Portable Lua (5.4 and LuaJIT).
local M = {}

-- ---- dot-call guards --------------------------------------------------------

-- The word for an instance in the message ("model", "layer", ...): set per
-- class with M.set_noun(Class, word), inherited along the chain.
local nouns = setmetatable({}, { __mode = "k" })
function M.set_noun(cls, word) nouns[cls] = word end
local function noun_of(cls)
  local c = cls
  while c do
    if nouns[c] then return nouns[c] end
    c = rawget(c, "super")
  end
  return "obj"
end

-- wrapper -> the method it guards (for tools that read a method's source).
local originals = setmetatable({}, { __mode = "k" })
function M.unwrap(f) return originals[f] or f end

-- At the user's line (options needs the core module, loaded by the time a
-- method is called; this file is required before it).
local function raise_user(msg) require("moongrad.options").raise(msg) end

local function dot_call_error(owner, noun, key, got, nextra)
  local args = (type(got) == "table" and getmetatable(got) == nil and nextra == 0) and "{...}" or "(...)"
  local what = type(got) == "table" and (getmetatable(got) == nil and "a table" or "an object")
    or (require("moongrad.core").is_tensor(got) and "a tensor") or (got == nil and "nil") or ("a " .. type(got))
  raise_user(string.format("%s.%s was called with a dot, so its first argument (%s) took the place of the %s: "
    .. "call it as %s:%s%s (with a colon)", owner, key, what, noun, noun, key, args))
end

local getlocal = debug and debug.getlocal   -- (a host's sandbox without it: no guards, no error)
local function is_first_param_self(f)
  return type(f) == "function" and getlocal ~= nil and getlocal(f, 1) == "self"
end

-- Receivers already checked, per test: the colon path is then one table read (a weak key:
-- instances are not kept alive by it). Only values the test accepted are stored.
local accepted = setmetatable({}, { __mode = "k" })

-- A guarded copy of method f of `owner` (a name for messages); is_receiver(x)
-- says whether x may be its self; noun is the word or the class to ask. Methods
-- with up to three fixed parameters after self get a wrapper without varargs
-- (Lua 5.4 copies a vararg call's arguments).
function M.guard(f, key, owner, noun, is_receiver)
  local ok = accepted[is_receiver]
  if not ok then ok = setmetatable({}, { __mode = "k" }); accepted[is_receiver] = ok end
  local function fail(self, ...)
    local extra = 0   -- arguments after the one that took self's place (trailing nils do not count)
    for i = 1, select("#", ...) do if select(i, ...) ~= nil then extra = i end end
    dot_call_error(owner, type(noun) == "table" and noun_of(noun) or noun, key, self, extra)
  end
  local function check(self, ...)
    if not is_receiver(self) then fail(self, ...) end
    ok[self] = true
  end
  local info = debug.getinfo(f, "u")
  local n = info and not info.isvararg and info.nparams or nil
  local g
  if n == 1 then
    g = function(self) if not ok[self] then check(self) end return f(self) end
  elseif n == 2 then
    g = function(self, a) if not ok[self] then check(self, a) end return f(self, a) end
  elseif n == 3 then
    g = function(self, a, b) if not ok[self] then check(self, a, b) end return f(self, a, b) end
  elseif n == 4 then
    g = function(self, a, b, c) if not ok[self] then check(self, a, b, c) end return f(self, a, b, c) end
  else
    g = function(self, ...) if not ok[self] then check(self, ...) end return f(self, ...) end
  end
  originals[g] = f
  return g
end

-- Wraps every method (first parameter `self`, not a metamethod) of a plain
-- method table in place.
function M.guard_methods(tbl, owner, noun, is_receiver)
  for k, f in pairs(tbl) do
    if type(k) == "string" and k:sub(1, 2) ~= "__" and is_first_param_self(f) and not originals[f] then
      tbl[k] = M.guard(f, k, owner, noun, is_receiver)
    end
  end
end

-- Instances of a class made here, or a class itself (Class:from_config(...)).
local function is_receiver(x)
  if type(x) ~= "table" then return false end
  local mt = getmetatable(x)
  if type(mt) == "table" and rawget(mt, "class_name") ~= nil then return true end
  return rawget(x, "class_name") ~= nil
end
M.is_receiver = is_receiver

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
    __newindex = function(c, k, v)
      if type(k) == "string" and k:sub(1, 2) ~= "__" and is_first_param_self(v) and not originals[v] then
        -- a base class may wrap some of its subclasses' methods (Layer: build marks the layer built)
        local hook = c.__method_hook
        if hook then
          local w = hook(k, v)
          if w ~= v then originals[w] = v; v = w end
        end
        local g = M.guard(v, k, name, c, is_receiver)
        originals[g] = originals[v] or v
        v = g
      end
      rawset(c, k, v)
    end,
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
