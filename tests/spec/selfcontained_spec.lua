-- selfcontained_spec.lua — the library needs no Lua C module, program or
-- shell at run time (issue 15): model JSON is parsed by the engine's cJSON
-- (no lua-cjson), IDX .gz files are decompressed in process by zlib (no
-- gzip), and the progress bar asks isatty (no `test -t 1`). Each test takes
-- the old way away (hides the cjson module, makes io.popen and os.execute
-- fail) and checks that the work still gets done. Portable Lua (5.4 and LuaJIT).
local mg = require "moongrad"
local core = require "moongrad.core"
local h = require "tests.spec.helpers"
local nn = mg.nn

-- Runs fn with io.popen and os.execute replaced by functions that fail and
-- count their calls; returns fn's results and the count.
local function without_programs(fn)
  local popen, execute, calls = io.popen, os.execute, 0
  io.popen = function() calls = calls + 1; error("no programs here") end
  os.execute = function() calls = calls + 1; error("no programs here") end
  local ok, a, b = pcall(fn)
  io.popen, os.execute = popen, execute
  assert(ok, a)
  return a, b, calls
end

-- Runs fn with the lua-cjson module unavailable.
local function without_cjson(fn)
  local loaded, preload = package.loaded.cjson, package.preload.cjson
  package.loaded.cjson = nil
  package.preload.cjson = function() error("lua-cjson is not installed here") end
  local ok, err = pcall(fn)
  package.loaded.cjson, package.preload.cjson = loaded, preload
  assert(ok, err)
end

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  mg.io.mkdir(p)
  return p
end

describe("JSON through the engine's cJSON", function()
  it("decodes without lua-cjson: numbers, strings, nesting, nulls, unicode", function()
    without_cjson(function()
      local json = require "moongrad.nn.json"
      local v = json.decode(' {"a": [1, 2.5, -3e2, {"b": null, "c": "x\\"\\u00e9"}], "t": true, "f": false} ')
      assert.same({ 1, 2.5, -300, { c = 'x"\195\169' } }, v.a)
      assert.is_true(v.t)
      assert.is_false(v.f)
      if math.type then assert.equal("integer", math.type(v.a[1])) end
      h.fails(function() json.decode('{"a": 1') end, "json", "invalid JSON")
      h.fails(function() json.decode('{"a": 1} trailing') end, "json", "unexpected text after the value")
      h.fails(function() json.decode(42) end, "json", "string")
    end)
  end)

  it("nn.load_model works without lua-cjson", function()
    local dir = tmpdir()
    mg.random.seed(1)
    local m = nn.Sequential { nn.Input { shape = { 3 } }, nn.Dense(4, { activation = "relu" }), nn.Dense(2) }
    m:compile { optimizer = "adam", loss = "mse" }
    m:save(dir .. "/m")
    without_cjson(function()
      local m2 = nn.load_model(dir .. "/m")
      h.near(m2:predict(mg.ones { 2, 3 }), m:predict(mg.ones { 2, 3 }), 0)
      assert.is_truthy(m2.compiled)
    end)
    mg.io.remove_tree(dir)
  end)
end)

describe("IDX .gz files through zlib", function()
  local idx = require "moongrad.datasets.idx"
  -- a small IDX file (uint8, shape 2x3), gzip-compressed by the gzip program
  -- (made here, before the programs are taken away)
  local function make_gz(dir, name, bytes, members)
    local raw = dir .. "/" .. name
    local f = assert(io.open(raw, "wb"))
    f:write(bytes)
    f:close()
    if members == 2 then   -- two gzip members, as `cat a.gz b.gz` makes
      local half = math.floor(#bytes / 2)
      local a, b = assert(io.open(raw .. ".a", "wb")), assert(io.open(raw .. ".b", "wb"))
      a:write(bytes:sub(1, half)); a:close()
      b:write(bytes:sub(half + 1)); b:close()
      assert(os.execute("gzip -c '" .. raw .. ".a' > '" .. raw .. ".gz' && gzip -c '" .. raw .. ".b' >> '" .. raw .. ".gz'"))
    else
      assert(os.execute("gzip -c '" .. raw .. "' > '" .. raw .. ".gz'"))
    end
    return raw .. ".gz"
  end
  local IDX = "\0\0\8\2\0\0\0\2\0\0\0\3" .. "\1\2\3\4\5\6"

  it("decompresses in process, one member or several", function()
    local dir = tmpdir()
    local one, two = make_gz(dir, "one-idx", IDX, 1), make_gz(dir, "two-idx", IDX, 2)
    local t1, t2, calls = without_programs(function()
      return idx.decode(idx.read_bytes(one), "one"), idx.decode(idx.read_bytes(two), "two")
    end)
    assert.equal(0, calls)
    assert.same({ { 1, 2, 3 }, { 4, 5, 6 } }, t1:totable())
    assert.same({ { 1, 2, 3 }, { 4, 5, 6 } }, t2:totable())
    mg.io.remove_tree(dir)
  end)

  it("a file that is not gzip, or is cut short, is an error naming it", function()
    local dir = tmpdir()
    local gz = make_gz(dir, "cut-idx", string.rep(IDX, 50), 1)
    local data = mg.io.read_file(gz)
    mg.io.write_file_atomic(dir .. "/cut.gz", data:sub(1, #data - 20))
    mg.io.write_file_atomic(dir .. "/plain.gz", "not gzip at all")
    without_programs(function()
      h.fails(function() idx.read_bytes(dir .. "/cut.gz") end, "idx", "cut.gz", "not a valid gzip file")
      h.fails(function() idx.read_bytes(dir .. "/plain.gz") end, "idx", "plain.gz", "not a gzip file")
      h.fails(function() core.read_file_gunzip(dir .. "/none.gz") end, "read_file_gunzip", "none.gz")
    end)
    mg.io.remove_tree(dir)
  end)
end)

describe("the progress bar's terminal test", function()
  it("asks isatty, not a shell", function()
    local progress = require "moongrad.nn.progress"
    package.loaded["moongrad.nn.progress"] = nil   -- a fresh module: its answer is cached
    local saved = os.getenv
    local fresh
    local answer, _, calls = without_programs(function()
      fresh = require "moongrad.nn.progress"
      return fresh.isatty()
    end)
    package.loaded["moongrad.nn.progress"] = progress
    assert.equal(0, calls)
    assert.equal(os.getenv("MG_PROGRESS") == "tty" or (os.getenv("MG_PROGRESS") ~= "lines" and core.isatty(1)), answer)
    assert.equal(saved, os.getenv)
  end)
end)
