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
local function pack(...) return { n = select("#", ...), ... } end
local gen_opts = { lj = LJ }
if args.avoid then
  -- --avoid F1,I4: steer around known defects in a long run (gen.avoid)
  gen_opts.avoid = {}
  for id in tostring(args.avoid):gmatch("[^,]+") do gen_opts.avoid[id] = true end
end

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

-- ---- --classify A-B: the finding of every mismatch of seeds A..B -----------------------------
if args.classify then
  local findings = require("fuzz_diff.findings")
  local a, b = parse_range(args.classify)
  local tally = {}
  for seed = a, b do
    local _, r = check_seed(seed)
    for _, m in ipairs(r.mismatches) do
      local id = findings.classify(m, r.ctx)
      tally[id] = (tally[id] or 0) + 1
      if id == "new" or args.all then
        print(string.format("seed %d: %s %s in %s: %s", seed, id, m.kind, m.mode, m.detail:sub(1, 200)))
      end
    end
  end
  for id, n in pairs(tally) do print(string.format("%s: %d", id, n)) end
  os.exit(0)
end

-- ---- --pick: choose the suite's seeds -------------------------------------------------------
-- Runs seeds A..B and picks N of them greedily by the features they add (findings.lua), taking
-- a seed with mismatches only for features no clean seed covers and once per finding; prints a
-- suite.lua (seeds and the expected list) for this interpreter's profile.
if args.pick then
  local findings = require("fuzz_diff.findings")
  local a, b = parse_range(args.from or "1-2000")
  local want = tonumber(args.pick)
  local rows = {}
  for seed = a, b do
    local t = os.clock()
    local prog, r = check_seed(seed)
    if r.status == "ok" or r.status == "mismatch" then
      local ids = {}
      for _, m in ipairs(r.mismatches) do ids[#ids + 1] = findings.classify(m, r.ctx) end
      rows[#rows + 1] = { seed = seed, r = r, feats = findings.features(prog, r.ctx, r), ids = ids,
        time = os.clock() - t }
      for i, id in ipairs(ids) do
        if id == "new" then
          io.stderr:write(string.format("seed %d: unclassified %s in %s: %s\n", seed, r.mismatches[i].kind,
            r.mismatches[i].mode, r.mismatches[i].detail:sub(1, 160)))
        end
      end
    end
  end
  local covered, chosen, taken, finding_seen = {}, {}, {}, {}
  local function gain(row)
    local g = 0
    for k in pairs(row.feats) do if not covered[k] then g = g + 1 end end
    return g
  end
  local function take(row)
    chosen[#chosen + 1] = row
    taken[row] = true
    for k in pairs(row.feats) do covered[k] = true end
    for _, id in ipairs(row.ids) do finding_seen[id] = true end
  end
  -- one seed per known finding (the smallest program showing it, all of its mismatches known)
  for _, row in ipairs(rows) do
    local known, new = true, false
    for _, id in ipairs(row.ids) do
      if id == "new" then known = false end
      if not finding_seen[id] then new = true end
    end
    if #row.ids > 0 and known and new and #chosen < want then take(row) end
  end
  -- then by features: clean seeds first, a failing one only when no clean seed adds the feature
  for pass = 1, 2 do
    while #chosen < want do
      local best, bg = nil, 0
      for _, row in ipairs(rows) do
        local clean = #row.ids == 0
        local known = true
        for _, id in ipairs(row.ids) do if id == "new" then known = false end end
        if not taken[row] and known and (clean or pass == 2) then
          local g = gain(row)
          if g > bg or (g == bg and best and g > 0 and row.time < best.time) then best, bg = row, g end
        end
      end
      if not best then break end
      take(best)
    end
  end
  -- then the fastest clean seeds, for breadth
  table.sort(rows, function(x, y) return x.time < y.time end)
  for _, row in ipairs(rows) do
    if #chosen >= want then break end
    if not taken[row] and #row.ids == 0 then take(row) end
  end
  table.sort(chosen, function(x, y) return x.seed < y.seed end)
  local total = 0
  local seeds, expected = {}, {}
  for _, row in ipairs(chosen) do
    total = total + row.time
    seeds[#seeds + 1] = tostring(row.seed)
    if #row.ids > 0 then
      local seen = {}
      local lines = {}
      for i, m in ipairs(row.r.mismatches) do
        local k = m.kind .. ":" .. m.mode .. " " .. row.ids[i]
        if not seen[k] then
          seen[k] = true
          lines[#lines + 1] = string.format("%q", k)
        end
      end
      expected[#expected + 1] = string.format("  [\"%s%d\"] = { %s },", LJ and "lj:" or "", row.seed, table.concat(lines, ", "))
    end
  end
  local nfeat = 0
  for _ in pairs(covered) do nfeat = nfeat + 1 end
  io.stderr:write(string.format("picked %d seeds covering %d features, %.1f s of CPU\n", #chosen, nfeat, total))
  print("seeds = { " .. table.concat(seeds, ", ") .. " }")
  print("expected = {\n" .. table.concat(expected, "\n") .. "\n}")
  os.exit(0)
end

-- ---- --suite ---------------------------------------------------------------------------------
if args.suite then
  local suite = require("fuzz_diff.suite")
  local findings = require("fuzz_diff.findings")
  local passed, failed, xpass = 0, 0, 0
  local t0 = os.time()
  -- The self-test: the fuzzer must catch faults injected into moongrad, and shrink them.
  local function selftest(name, body)
    local ok, err = pcall(body)
    run.hooks = {}
    if ok then passed = passed + 1 else
      failed = failed + 1
      print("not ok selftest " .. name .. ": " .. tostring(err))
    end
  end
  local mg = require("moongrad")
  local function find(pred)
    for seed = 1, 300 do
      local prog = gen.generate(seed, gen_opts)
      if pred(prog) then return seed, prog end
    end
    error("no seed in 1..300 has the feature")
  end
  selftest("a staged result off by one is a value mismatch, and shrinks", function()
    run.hooks.wrap = function(fn, how)
      local w = run.wrap(fn, how)
      if how ~= "staged" then return w end
      return function(...)
        local r = pack(w(...))
        if mg.is_tensor(r[1]) then r[1] = r[1] + 1 end
        return (table.unpack or unpack)(r, 1, r.n)
      end
    end
    local seed, prog = find(function(p) return gen.size(p) >= 6 end)
    local r = run.check(prog)
    local m
    for _, x in ipairs(r.mismatches) do if x.kind == "value" and x.mode == "staged" then m = x end end
    assert(m, "seed " .. seed .. ": no value mismatch in staged")
    local small, sm = shrink.shrink(prog, m, 200)
    assert(sm and shrink.matches(sm, m), "the shrunk program lost the mismatch")
    assert(gen.size(small) < gen.size(prog), string.format("not shrunk (%d statements)", gen.size(small)))
  end)
  selftest("a wrong op gradient is caught by finite differences", function()
    local real = mg.tanh
    local bad = mg.custom_gradient(function(x)
      local y = real(x)
      return y, function(dy) return dy * (1 - y * y) * 1.5 end
    end)
    mg.tanh = bad
    local ok, err = pcall(function()
      local found = false
      for seed = 1, 300 do
        local prog = gen.generate(seed, gen_opts)
        local uses = false
        for _, fn in ipairs(gen.functions(prog)) do
          gen.walk_block(fn.body, nil, function(e)
            gen.each_expr(e, function(x) if x.tag == "unary" and x.fn == "tanh" then uses = true end end)
          end)
        end
        if uses then
          local r = run.check(prog)
          for _, x in ipairs(r.mismatches) do if x.kind == "fd" then found = true end end
          if found then break end
        end
      end
      assert(found, "no fd mismatch in seeds 1..300 with tanh's gradient made wrong")
    end)
    mg.tanh = real
    if not ok then error(err, 0) end
  end)
  local seeds = LJ and suite.luajit_seeds or suite.seeds
  local anywhere_seen = {}
  for _, seed in ipairs(seeds) do
    local prog, r = check_seed(seed)
    -- an entry "kind:mode finding" expects a mismatch of that kind in that mode that
    -- findings.lua attributes to that finding
    local expected = suite.expected[(LJ and "lj:" or "") .. seed] or {}
    local unexpected, seen = {}, {}
    for _, m in ipairs(r.mismatches) do
      local entry = m.kind .. ":" .. m.mode .. " " .. findings.classify(m, r.ctx)
      local ok = false
      for _, e in ipairs(expected) do
        if e == entry then ok = true; seen[e] = true end
      end
      for _, e in ipairs(suite.anywhere or {}) do
        if e == entry then ok = true; anywhere_seen[e] = true end
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
      for _, m in ipairs(unexpected) do
        print("  " .. m.kind .. " in " .. m.mode .. " (finding " .. findings.classify(m, r.ctx) .. "): " .. m.detail)
      end
      if args.shrink then print(shrink_report(seed, prog, unexpected[1])) end
    else
      passed = passed + 1
      for _, e in ipairs(expected) do
        if not seen[e] then
          xpass = xpass + 1
          print(string.format("note: seed %d now agrees (%s): delete this entry from the expected list in "
            .. "tests/fuzz_diff/suite.lua", seed, e))
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
