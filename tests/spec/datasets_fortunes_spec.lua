-- datasets_fortunes_spec.lua — mg.datasets.fortunes: the cookie-file format (records between
-- "%" lines, .dat/.u8 files skipped, empty records dropped) on files made here, the error that
-- names the Debian package, and the installed package when it is there.
local mg = require("moongrad")
local h = require("tests.spec.helpers")
local F = mg.datasets.fortunes

local tmpdir
local function dir()
  if not tmpdir then
    tmpdir = os.tmpname()
    os.remove(tmpdir)
    mg.io.mkdir(tmpdir)
  end
  return tmpdir
end
local function write(name, text)
  local f = assert(io.open(dir() .. "/" .. name, "wb"))
  f:write(text)
  f:close()
end

teardown(function() if tmpdir then mg.io.remove_tree(tmpdir) end end)

describe("mg.datasets.fortunes", function()
  it("reads the records of every cookie file, skipping .dat and .u8", function()
    write("alpha", "one line\n%\ntwo\n  lines\n%\n%\n   \n%\nlast, no newline")
    write("beta", "%\r\nbeta one\r\n%\r\n")
    write("alpha.dat", "\0\0binary")
    write("alpha.u8", "not read\n%\n")
    local by, names = F.load_data { path = dir() }
    assert.same({ "alpha", "beta" }, names)
    assert.same({ "one line", "two\n  lines", "last, no newline" }, by.alpha)
    assert.same({ "beta one" }, by.beta)
  end)
  it("reads only the files asked for, names sorted", function()
    write("gamma", "g\n%\n")
    local by, names = F.load_data { path = dir(), files = { "gamma", "beta" } }
    assert.same({ "beta", "gamma" }, names)
    assert.is_nil(by.alpha)
    assert.same({ "g" }, by.gamma)
  end)
  it("names the Debian package when the data is not there", function()
    h.fails(function() F.load_data { path = dir() .. "/absent" } end, "holds no fortune files",
      "install the Debian package fortunes")
    h.fails(function() F.load_data { path = dir(), files = { "nope" } } end, "nope is missing",
      "install the Debian package fortunes")
  end)
  it("checks its options", function()
    h.fails(function() F.load_data { pth = dir() } end, "fortunes.load_data: unknown option 'pth'")
    h.fails(function() F.load_data { files = "art" } end, "files")
  end)
  it("reads the installed package (fortunes)", function()
    if not mg.io.isdir(F.default_dir) then
      pending("the Debian package fortunes is not installed")
      return
    end
    local by, names = F.load_data { files = { "love" } }
    assert.same({ "love" }, names)
    assert.is_true(#by.love > 100)
    for _, q in ipairs(by.love) do assert.is_nil(q:match("^%%$")) end
  end)
end)
