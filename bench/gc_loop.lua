-- gc_loop.lua — the full GC-visibility run: 200,000 tensors of 1 MiB each.
--
--   moongrad bench/gc_loop.lua [iterations]
--
-- Runs tests/gc/loop.lua in a fresh process twice: leaving every tensor to
-- the collector (no collectgarbage() call anywhere), and releasing each one at
-- once with t:free(). Prints wall time and peak RSS of both and the ratio; the
-- target is the GC run within 2x the explicit-free time and under 1 GiB peak.
-- (tests/gc/run.sh checks the memory bound with 20,000 iterations.)

local N = tonumber(arg and arg[1]) or 200000
local exe = arg and arg[-1] or "moongrad"
local here = debug.getinfo(1, "S").source:match("^@(.*)bench/[^/]*$") or "./"
local loop = here .. "tests/gc/loop.lua"

local function now()
  local p = assert(io.popen("date +%s.%N"))
  local t = tonumber(p:read("l"))
  p:close()
  return t
end

local function run(kind)
  local t0 = now()
  local p = assert(io.popen(("%q %q %d %s 2>&1"):format(exe, loop, N, kind)))
  local out = p:read("a")
  local ok = p:close()
  local secs = now() - t0
  local peak = tonumber(out:match("peak_kb=(%d+)"))
  if not ok or not peak then error("gc_loop: " .. kind .. " run failed:\n" .. out) end
  return secs, peak
end

print(("gc loop: %d tensors of 1 MiB (%.1f GiB allocated in all)"):format(N, N / 1024))
local tf, pf = run("free")
print(("  explicit t:free()     %7.2f s   peak RSS %5d MiB"):format(tf, pf // 1024))
local tg, pg = run("zeros")
print(("  collector only        %7.2f s   peak RSS %5d MiB"):format(tg, pg // 1024))
print(("  ratio %.2fx (target <= 2x), peak %s 1 GiB"):format(tg / tf, pg < 1024 * 1024 and "under" or "OVER"))
