-- io_atomic_spec.lua — mg.save is atomic: a child process (the moongrad
-- program) saves a large tensor in a loop and is SIGKILLed at random moments,
-- several times; after each kill the file must still load completely, with
-- the values of one whole save, and the temp files the killed writers left
-- must not break later saves (the next save of the same target removes them:
-- their pids are dead). $MOONGRAD is the program (tests/run.sh exports it).
local mg = require "moongrad"

local MOONGRAD = os.getenv("MOONGRAD") or "build/bin/moongrad"
local N = 16 * 1024 * 1024   -- float32 elements: 64 MB a save, so a kill mostly lands mid-write

local CHILD = [[
local mg = require("moongrad")
local path, n, k = arg[1], tonumber(arg[2]), tonumber(arg[3])
while true do
  k = k + 1
  mg.save(path, {w = mg.full({n}, k, "float32"), b = mg.full({1000}, -k, "int64")}, {k = tostring(k)})
  if arg[4] then io.open(arg[4], "w"):close(); arg[4] = nil end  -- tells the test one save is done
end
]]

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

local function listdir(dir)
  local names = {}
  for name in sh("ls -A '" .. dir .. "'"):gmatch("[^\n]+") do names[#names + 1] = name end
  return names
end

describe("mg.save under SIGKILL", function()
  it("leaves the previous file whole, and stale temp files are cleaned up", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir '" .. dir .. "'"))
    local script, path, mark = dir .. "/child.lua", dir .. "/ckpt.safetensors", dir .. "/saved"
    local f = assert(io.open(script, "w"))
    f:write(CHILD)
    f:close()
    math.randomseed(os.time())
    local kills, stale_seen, last_k = 8, 0, 0
    for i = 1, kills do
      -- The shell starts the writer (counting on from the last k), waits for
      -- its first complete save (the marker file), lets it
      -- run a random while more, kills it and reaps it (so its pid is dead).
      os.remove(mark)
      local delay = string.format("%.3f", 0.05 + math.random() * 0.6)
      sh("'" .. MOONGRAD .. "' '" .. script .. "' '" .. path .. "' " .. N .. " " .. last_k .. " '" .. mark .. "' >/dev/null 2>&1 & pid=$!; "
        .. "n=0; while [ ! -e '" .. mark .. "' ] && [ $n -lt 12000 ]; do sleep 0.01; n=$((n+1)); done; "
        .. "sleep " .. delay .. "; kill -9 $pid; wait $pid")
      local t, meta = mg.load(path)
      local k = tonumber(meta.k)
      assert.is_truthy(k, "round " .. i .. ": metadata k missing")
      assert.is_true(k > last_k, "round " .. i .. ": an older file came back")
      assert.same({N}, t.w.shape)
      assert.equal(k, t.w:min():item(), "round " .. i .. ": a mixed file")
      assert.equal(k, t.w:max():item(), "round " .. i .. ": a mixed file")
      assert.equal(-k, t.b:max():item())
      assert.equal(-k, t.b:min():item())
      last_k = k
      for _, name in ipairs(listdir(dir)) do
        if name:find("^%.ckpt%.safetensors%.tmp%.") then stale_seen = stale_seen + 1 end
      end
    end
    -- At least one kill hit a save in progress (else this test proved nothing).
    assert.is_true(stale_seen > 0, "no kill landed mid-save in " .. kills .. " tries")
    -- A later save works and removes the dead writers' temp files.
    mg.save(path, {w = mg.ones{2}}, {k = "final"})
    local t, meta = mg.load(path)
    assert.equal("final", meta.k)
    assert.same({1, 1}, t.w:totable())
    assert.same({"child.lua", "ckpt.safetensors", "saved"}, (function()
      local names = listdir(dir)
      table.sort(names)
      return names
    end)())
    assert.is_true(last_k >= kills)   -- every round completed a save before its kill
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)
