-- fuzz_diff/main.lua: the command line of the differential program fuzzer.
--
--   lua5.4 tests/fuzz_diff/main.lua --suite              the fixed seeds of `make test`
--   lua5.4 tests/fuzz_diff/main.lua --seconds 60 [--start S] [--report FILE]
--   lua5.4 tests/fuzz_diff/main.lua --seeds 1-200 [--shrink]
--   lua5.4 tests/fuzz_diff/main.lua --show SEED          the program in every dialect
--   --lj: the LuaJIT profile (no `//`, no float32-typed values); implied under LuaJIT.
--
-- The suite runs suite.lua's seeds; a seed passes when every mismatch it shows is listed
-- for it in suite.lua's `expected` (known defects, each naming its finding), and an
-- expected mismatch that no longer shows is reported ("now agrees: delete the entry")
-- without failing, so fixes can land before the list is edited. Its last line is
-- "fuzz_diff: N passed, N failed". A timed run goes through seeds from --start (default:
-- from the clock) until the time is spent, shrinks the first few mismatches of each kind
-- (kind, mode, normalised error) and prints or appends their reports; it prints
-- "# begin SEED" before each program so a driver can name the seed of a hang
-- (tests/fuzz_diff/fuzz.sh). Run from the repository root with the paths of
-- `make print-luapath`; tests/ is added to package.path here.
package.path = "tests/?.lua;" .. package.path
local gen = require("fuzz_diff.gen")
local run = require("fuzz_diff.run")
local shrink = require("fuzz_diff.shrink")
local render = require("fuzz_diff.render")

local args = {}
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a:sub(1, 2) == "--" then
      local k = a:sub(3)
      local v = arg[i + 1]
      if v and v:sub(1, 2) ~= "--" then args[k] = v; i = i + 2 else args[k] = true; i = i + 1 end
    else
      i = i + 1
    end
  end
end

local LJ = args.lj and true or (jit ~= nil)
local gen_opts = { lj = LJ }

local function key_of(m)
  return m.kind .. ":" .. m.mode .. (m.kind == "error" and (":" .. m.errclass) or "")
end

local function check_seed(seed)
  local prog = gen.generate(seed, gen_opts)
  local ok, r = pcall(run.check, prog)
  if not ok then r = { status = "crash", reason = tostring(r), mismatches = {} } end
  return prog, r
end

local function shrink_report(seed, prog, m)
  local small, sm, tries = shrink.shrink(prog, m, tonumber(args.budget) or 500)
  local ok, text = pcall(shrink.report, seed, prog, small, sm or m, tries, gen_opts)
  if not ok then text = "== fuzz_diff: seed " .. seed .. ": report failed: " .. tostring(text) end
  return text
end

local function append_file(path, text)
  local f = assert(io.open(path, "a"))
  f:write(text, "\n")
  f:close()
end

local function parse_range(s)
  local a, b = s:match("^(%d+)%-(%d+)$")
  if a then return tonumber(a), tonumber(b) end
  return tonumber(s), tonumber(s)
end

-- ---- --show ----------------------------------------------------------------------------------
if args.show then
  local prog = gen.generate(tonumber(args.show), gen_opts)
  local ctx = run.prepare(prog)
  print("-- t dialect\n" .. ctx.text_t)
  print("-- ref dialect\n" .. ctx.text_ref)
  if ctx.text_lua then print("-- lua dialect\n" .. ctx.text_lua) end
  local r = run.check_ctx(ctx, {})
  print("status: " .. r.status .. " " .. (r.reason or ""))
  for _, m in ipairs(r.mismatches) do print(m.kind .. " in " .. m.mode .. ": " .. m.detail) end
  os.exit(0)
end

-- ---- --suite ---------------------------------------------------------------------------------
if args.suite then
  local suite = require("fuzz_diff.suite")
  local passed, failed, xpass = 0, 0, 0
  local t0 = os.time()
  local seeds = LJ and suite.luajit_seeds or suite.seeds
  for _, seed in ipairs(seeds) do
    local prog, r = check_seed(seed)
    local expected = suite.expected[(LJ and "lj:" or "") .. seed] or {}
    local unexpected, seen = {}, {}
    for _, m in ipairs(r.mismatches) do
      local k = m.kind .. ":" .. m.mode
      local ok = false
      for _, e in ipairs(expected) do
        if e.key == k or e.key == key_of(m) then ok = true; seen[e] = true end
      end
      if not ok then unexpected[#unexpected + 1] = m end
    end
    if r.status == "crash" or r.status == "invalid" then
      failed = failed + 1
      print(string.format("not ok seed %d: %s: %s", seed, r.status, r.reason))
    elseif r.status == "skip" then
      failed = failed + 1    -- a suite seed must exercise something: pick another
      print(string.format("not ok seed %d: skipped (%s): replace it in suite.lua", seed, r.reason))
    elseif #unexpected > 0 then
      failed = failed + 1
      print(string.format("not ok seed %d:", seed))
      for _, m in ipairs(unexpected) do print("  " .. m.kind .. " in " .. m.mode .. ": " .. m.detail) end
      if args.shrink then print(shrink_report(seed, prog, unexpected[1])) end
    else
      passed = passed + 1
      for _, e in ipairs(expected) do
        if not seen[e] then
          xpass = xpass + 1
          print(string.format("note: seed %d now agrees in %s (finding %s): delete its entry from "
            .. "tests/fuzz_diff/suite.lua", seed, e.key, e.finding))
        end
      end
    end
  end
  print(string.format("fuzz_diff: %d seeds in %d s%s", #seeds, os.time() - t0,
    xpass > 0 and string.format(" (%d expected mismatches now agree)", xpass) or ""))
  print(string.format("fuzz_diff: %d passed, %d failed", passed, failed))
  os.exit(failed == 0 and 0 or 1)
end

-- ---- --seeds / --seconds ---------------------------------------------------------------------
local counts = { ok = 0, mismatch = 0, skip = 0, invalid = 0, crash = 0 }
local shrunk = {}
local per_key = tonumber(args["per-kind"]) or 2
local t0 = os.time()
local first, last
if args.seeds then first, last = parse_range(args.seeds)
else
  first = tonumber(args.start) or (os.time() % 1000000) * 1000
  last = math.huge
end
local limit = tonumber(args.seconds)
-- kinds already shrunk by earlier workers of the same run (fuzz.sh): one key per line
if args.seen then
  local f = io.open(args.seen, "r")
  if f then
    for line in f:lines() do shrunk[line] = (shrunk[line] or 0) + 1 end
    f:close()
  end
end
local seed = first
local n = 0
while seed <= last do
  if limit and os.time() - t0 >= limit then break end
  print("# begin " .. seed)
  io.stdout:flush()
  local prog, r = check_seed(seed)
  n = n + 1
  counts[r.status] = (counts[r.status] or 0) + 1
  if r.status == "invalid" or r.status == "crash" then
    print(string.format("%s seed %d: %s", r.status, seed, r.reason))
  elseif r.status == "mismatch" then
    local keys = {}
    for _, m in ipairs(r.mismatches) do keys[#keys + 1] = key_of(m) end
    print(string.format("mismatch seed %d: %s", seed, table.concat(keys, " | ")))
    if args.shrink or limit then
      for _, m in ipairs(r.mismatches) do
        local k = key_of(m)
        if args.key and not k:find(args.key, 1, true) then goto next end
        shrunk[k] = (shrunk[k] or 0) + 1
        if shrunk[k] <= per_key then
          if args.seen then append_file(args.seen, k) end
          local text = shrink_report(seed, prog, m)
          print(text)
          if args.report then append_file(args.report, text .. "\n") end
          break     -- one report per program
        end
        ::next::
      end
    end
  end
  io.stdout:flush()
  seed = seed + 1
end
print(string.format("# done %d", seed - 1))
print(string.format("fuzz_diff: %d programs in %d s: %d agree, %d mismatch, %d skipped (margins), %d invalid, %d crashed",
  n, os.time() - t0, counts.ok, counts.mismatch, counts.skip, counts.invalid, counts.crash))
os.exit((counts.mismatch + counts.invalid + counts.crash) == 0 and 0 or 1)
