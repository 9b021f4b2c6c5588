-- run.lua — the busted specs under LuaJIT (the FFI binding), for tests/run.sh.
--
--   lua5.4 tests/luajit/run.lua ROOT BUILD
--
-- First checks that the FFI binding presents the same moongrad.core surface as
-- the C module (tests/luajit/surface.lua under both interpreters, diffed: one
-- test) and that dead tensors' buffers are released under LuaJIT (tests/gc's
-- loops: two tests). Then runs every tests/spec/*_spec.lua with `luajit busted`, one
-- process per file, with tests/luajit/compat.lua as helper; files and tests
-- listed in tests/luajit/skip.lua are skipped, counted and their reason
-- printed (a whole file's tests are counted with `lua5.4 busted --list`).
-- Prints one line per file and closes with "N passed, N failed, N skipped".
-- It runs under lua5.4 so that it can list the files LuaJIT cannot parse.

local ROOT, BUILD = assert(arg[1], "ROOT"), assert(arg[2], "BUILD")
local TIMEOUT = tonumber(os.getenv("MG_TEST_TIMEOUT")) or 600
local BUSTED = "/usr/bin/busted"
local skip = dofile(ROOT .. "/tests/luajit/skip.lua")

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local JIT_ENV = "env LUA_PATH=" .. q(ROOT .. "/lua/ffi/?.lua;" .. BUILD .. "/luajit/?.lua;" .. ROOT .. "/stdlib/?.lua;"
  .. ROOT .. "/stdlib/?/init.lua;" .. ROOT .. "/?.lua;;") .. " LUA_CPATH=';;'"

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

local passed, failed, skipped = 0, 0, 0

-- ---- the surface --------------------------------------------------------------
local s54 = run("lua5.4 " .. q(ROOT .. "/tests/luajit/surface.lua"))
local sjit = run(JIT_ENV .. " luajit " .. q(ROOT .. "/tests/luajit/surface.lua"))
if s54 == sjit and #s54 > 0 then
  passed = passed + 1
  print("ok - moongrad.core has the same surface under luajit (lua/ffi) as under lua5.4 (lua/capi)")
else
  failed = failed + 1
  print("not ok - moongrad.core surfaces differ (< lua5.4, > luajit):")
  local a, b = {}, {}
  for _, l in ipairs(lines(s54)) do a[l] = true end
  for _, l in ipairs(lines(sjit)) do b[l] = true end
  for l in pairs(a) do if not b[l] then print("  < " .. l) end end
  for l in pairs(b) do if not a[l] then print("  > " .. l) end end
end

-- ---- memory: dead boxes' buffers are released (no finaliser per box) ----------------
-- tests/gc's loops under LuaJIT: 5,000 tensors of 1 MiB with no collectgarbage()
-- must keep the peak RSS under 256 MiB, and a training loop's RSS must stay flat.
local out = run(JIT_ENV .. " luajit " .. q(ROOT .. "/tests/gc/loop.lua") .. " 5000 op")
local peak = tonumber(out:match("peak_kb=(%d+)"))
if peak and peak < 256 * 1024 then
  passed = passed + 1
  print(("ok - luajit: 5000 tensors of 1 MiB, peak RSS %d MiB < 256 MiB"):format(peak // 1024))
else
  failed = failed + 1
  print("not ok - luajit: 5000 tensors of 1 MiB: " .. out)
end
local mlp, code = run(JIT_ENV .. " luajit " .. q(ROOT .. "/tests/gc/mlp_rss.lua") .. " 2000")
if code == 0 then
  passed = passed + 1
  print("ok - luajit: 2000 training steps, RSS growth < 20 MB (" .. mlp:gsub("\n", "") .. ")")
else
  failed = failed + 1
  print("not ok - luajit: training loop RSS: " .. mlp)
end

-- ---- the specs ------------------------------------------------------------------
local skip_file, skip_tests = {}, {}
for _, f in ipairs(skip.files) do skip_file[f[1]] = f[2] end
for _, t in ipairs(skip.tests) do
  skip_tests[t[1]] = skip_tests[t[1]] or {}
  table.insert(skip_tests[t[1]], { text = t[2], why = t[3], used = false })
end

local specs = lines((run("cd " .. q(ROOT) .. " && ls tests/spec/*_spec.lua")))
for _, spec in ipairs(specs) do
  if skip_file[spec] then
    local listing = run("cd " .. q(ROOT) .. " && lua5.4 " .. BUSTED .. " --list " .. q(spec))
    local n = 0
    -- one line per test, "file:line: name" (file: where `it` was called, maybe a shared runner)
    for _, l in ipairs(lines(listing)) do if l:find("^[^:]+%.lua:%d+: ") then n = n + 1 end end
    n = math.max(n, 1)
    skipped = skipped + n
    print(("%s: 0 passed, 0 failed, %d skipped (the whole file: %s)"):format(spec, n, skip_file[spec]))
  else
    local helper = "--helper=" .. q(ROOT .. "/tests/luajit/compat.lua")
    local filters, nskip, reasons = {}, 0, {}
    local listing = run("cd " .. q(ROOT) .. " && " .. JIT_ENV .. " luajit " .. BUSTED .. " " .. helper .. " --list " .. q(spec))
    for _, rule in ipairs(skip_tests[spec] or {}) do
      local hits = 0
      for _, l in ipairs(lines(listing)) do
        if l:find(rule.text, 1, true) then hits = hits + 1 end
      end
      if hits > 0 then
        rule.used = true
        nskip = nskip + hits
        filters[#filters + 1] = "--filter-out=" .. q(rule.text:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
        reasons[rule.why] = (reasons[rule.why] or 0) + hits
      end
    end
    local cmd = "cd " .. q(ROOT) .. " && " .. JIT_ENV .. " timeout -k 10 " .. TIMEOUT .. " luajit " .. BUSTED .. " "
      .. helper .. " -o TAP " .. table.concat(filters, " ") .. " " .. q(spec)
    local out, code = run(cmd)
    local p, f, s, plan = 0, 0, 0, false
    for _, l in ipairs(lines(out)) do
      if l:find("^ok %d+ %- # SKIP") then s = s + 1
      elseif l:find("^ok %d+ %- ") then p = p + 1
      elseif l:find("^not ok %d+") then f = f + 1
      elseif l:find("^1%.%.%d+$") then plan = true end
    end
    if not plan or (code ~= 0 and f == 0) then
      print(("%s: luajit busted did not finish (exit %s):"):format(spec, tostring(code)))
      local t = lines(out)
      for i = math.max(1, #t - 30), #t do print("  " .. t[i]) end
      f = f + 1
    elseif f > 0 then
      local show = false
      for _, l in ipairs(lines(out)) do
        if l:find("^not ok") then show = true; print(l)
        elseif l:find("^ok ") then show = false
        elseif show and l:find("^#") then print(l) end
      end
    end
    passed, failed, skipped = passed + p, failed + f, skipped + s + nskip
    print(("%s: %d passed, %d failed%s"):format(spec, p, f, (s + nskip) > 0 and (", %d skipped"):format(s + nskip) or ""))
    for why, n in pairs(reasons) do print(("    %d skipped: %s"):format(n, why)) end
  end
end

for spec, rules in pairs(skip_tests) do
  for _, rule in ipairs(rules) do
    if not rule.used and not skip_file[spec] then
      print(("note: tests/luajit/skip.lua: %q matches no test of %s any more"):format(rule.text, spec))
    end
  end
end

print(("%d passed, %d failed, %d skipped"):format(passed, failed, skipped))
os.exit(failed == 0 and 0 or 1)
