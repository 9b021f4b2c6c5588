-- moongrad.nn.progress: Keras's progress bar.
--
--   1875/1875 [==============================] - 12s 6ms/step - loss: 0.3500 - accuracy: 0.8700
--
-- On a terminal the line is redrawn in place (carriage return), at most
-- every `interval` seconds and at the end; elsewhere (a pipe, a file, or
-- verbose=2) only the final line of each epoch is printed. Whether stdout
-- is a terminal is asked once of isatty(1) (core.isatty: no shell, which a
-- host may not have); MG_PROGRESS=tty or MG_PROGRESS=lines overrides it.
-- Portable Lua (5.4 and LuaJIT).
local class = require("moongrad.nn.class")
local core = require("moongrad.core")

local M = {}

local tty_cache

-- Is stdout a terminal?
function M.isatty()
  if tty_cache ~= nil then return tty_cache end
  local force = os.getenv and os.getenv("MG_PROGRESS")
  if force == "tty" then tty_cache = true
  elseif force == "lines" then tty_cache = false
  else
    tty_cache = core.isatty(1)
  end
  return tty_cache
end

-- 0.3500 or 1.2346e-04, Keras's rule.
function M.format_value(v)
  if type(v) ~= "number" then return tostring(v) end
  if v ~= v then return "nan" end
  if math.abs(v) > 1e-3 or v == 0 then return string.format("%.4f", v) end
  return string.format("%.4e", v)
end

local function format_time(t)
  if t >= 3600 then
    return string.format("%d:%02d:%02d", math.floor(t / 3600), math.floor(t % 3600 / 60), math.floor(t % 60))
  elseif t >= 60 then
    return string.format("%d:%02d", math.floor(t / 60), math.floor(t % 60))
  end
  return string.format("%ds", math.floor(t + 0.5))
end

local function per_step(t, unit)
  if t >= 1 then return string.format("%.0fs/%s", t, unit) end
  if t >= 1e-3 then return string.format("%.0fms/%s", t * 1e3, unit) end
  return string.format("%.0fus/%s", t * 1e6, unit)
end

local Progbar = class.Object:extend("Progbar")
M.Progbar = Progbar

-- Progbar(target, {width=30, verbose=1, interval=0.05, unit_name="step", out=io.stdout})
function Progbar:__init(target, opts)
  opts = require("moongrad.options").check("Progbar", opts, { width = { "integer", min = 1 },
    verbose = { "integer", one_of = { 0, 1, 2 } }, interval = { "number", min = 0 }, unit_name = "string",
    out = "any" })
  self.target = target
  self.width = opts.width or 30
  self.verbose = opts.verbose or 1
  self.interval = opts.interval or 0.05
  self.unit_name = opts.unit_name or "step"
  self.out = opts.out or io.stdout
  self.dynamic = self.verbose == 1 and M.isatty()
  self.start = core.clock()
  self.last_update = 0
  self.prev_len = 0
end

local function values_text(values)
  local parts = {}
  for _, kv in ipairs(values or {}) do
    parts[#parts + 1] = " - " .. kv[1] .. ": " .. M.format_value(kv[2])
  end
  return table.concat(parts)
end

-- The line for step `current` (finished when current == target).
function Progbar:line(current, values, now)
  local elapsed = now - self.start
  local target = self.target
  local done = target and current >= target
  local per = current > 0 and elapsed / current or 0
  if not self.dynamic then
    local head = target and string.format("%d/%d", current, target) or tostring(current)
    return string.format("%s - %s %s%s", head, format_time(elapsed), per_step(per, self.unit_name), values_text(values))
  end
  local bar
  if target then
    local digits = #tostring(target)
    local w = math.floor(self.width * current / target)
    bar = string.format("%" .. digits .. "d/%d [", current, target)
    if w > 0 then
      bar = bar .. string.rep("=", w - 1) .. (done and "=" or ">")
    end
    bar = bar .. string.rep(".", self.width - w) .. "]"
  else
    bar = string.format("%7d/Unknown", current)
  end
  local info
  if done or not target then
    info = string.format(" - %s %s", format_time(elapsed), per_step(per, self.unit_name))
  else
    info = " - ETA: " .. format_time(per * (target - current))
  end
  return bar .. info .. values_text(values)
end

-- update(current, values): values is a list of {name, number}; `finalize`
-- ends the line.
function Progbar:update(current, values, finalize)
  if self.verbose == 0 then return end
  local now = core.clock()
  finalize = finalize or (self.target and current >= self.target)
  if self.dynamic then
    if not finalize and now - self.last_update < self.interval then return end
    self.last_update = now
    local text = self:line(current, values, now)
    local pad = self.prev_len > #text and string.rep(" ", self.prev_len - #text) or ""
    self.prev_len = #text
    self.out:write("\r", text, pad, finalize and "\n" or "")
    self.out:flush()
  elseif finalize then
    self.out:write(self:line(current, values, now), "\n")
    self.out:flush()
  end
end

-- Whether update(current) would draw now (callers skip computing values otherwise).
function Progbar:wants(current)
  if self.verbose == 0 then return false end
  if self.target and current >= self.target then return true end
  return self.dynamic and core.clock() - self.last_update >= self.interval
end

return M
