-- io_spec.lua — mg.save / mg.load (safetensors), mg.io.write_file_atomic and
-- mg.io.read_file: round trips, files made by Python's safetensors
-- (tests/fixtures/safetensors, written by make_fixtures.py there), byte-exact
-- output, and hostile files, each with the message it must give.
local mg = require "moongrad"
local h = require "tests.spec.helpers"

local FIX = "tests/fixtures/safetensors/"

local function tmpfile()
  local p = os.tmpname()
  os.remove(p)
  return p
end

-- 8 bytes little-endian (portable: no bitwise operators).
local function le64(n)
  local b = {}
  for i = 1, 8 do
    b[i] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(b)
end

-- A safetensors image from a header text and data bytes, loaded from a file.
local function image(header, data) return le64(#header) .. header .. (data or "") end
local function load_bytes(bytes)
  local p = tmpfile()
  mg.io.write_file_atomic(p, bytes)
  local ok, a, b, c = pcall(mg.load, p)
  os.remove(p)
  if not ok then error(a, 0) end
  return a, b, c
end
local function bad(bytes, ...)
  return h.fails(function() load_bytes(bytes) end, "mg.load: ", ...)
end
local F32x2 = string.rep("\0", 8)   -- two float32 zeros

-- An image of one tensor 'w' over F32x2 with the entry
-- {"dtype":"F32","shape":[2],"data_offsets":[0,8]}, some fields' JSON text replaced.
local function w_image(fields)
  local f = { dtype = '"F32"', shape = "[2]", data_offsets = "[0,8]" }
  for k, v in pairs(fields) do f[k] = v end
  return image(string.format('{"w":{"dtype":%s,"shape":%s,"data_offsets":%s}}', f.dtype, f.shape, f.data_offsets), F32x2)
end

describe("mg.save / mg.load", function()
  it("round-trips every dtype, 0-d and empty tensors, views and metadata", function()
    local p = tmpfile()
    local x = mg.arange(12):reshape{3, 4}:astype("float32") * 0.5
    mg.save(p, {
      x = x, xt = x:transpose(), d = mg.tensor({1.25, -3}, "float64"), i = mg.tensor({-7, 8}, "int32"),
      l = mg.tensor({-1, 2, 3}, "int64"), u = mg.tensor({0, 200, 255}, "uint8"), b = mg.tensor{true, false},
      s = mg.tensor(2.5), e = mg.zeros{0, 3}, v = mg.Variable(mg.tensor{1.5, 2.5}),
    }, {format = "mg", note = "two\nlines \"quoted\""})
    local t, meta, names = mg.load(p)
    os.remove(p)
    h.near(t.x, x:totable())
    h.near(t.xt, x:transpose():totable())
    assert.same({3, 4}, t.x.shape)
    assert.same({4, 3}, t.xt.shape)
    h.near(t.d, {1.25, -3})
    assert.equal("float64", t.d.dtype)
    assert.same({-7, 8}, t.i:totable())
    assert.equal("int32", t.i.dtype)
    assert.same({-1, 2, 3}, t.l:totable())
    assert.equal("int64", t.l.dtype)
    assert.same({0, 200, 255}, t.u:totable())
    assert.same({true, false}, t.b:totable())
    assert.equal("bool", t.b.dtype)
    assert.same({}, t.s.shape)
    assert.equal(2.5, t.s:item())
    assert.same({0, 3}, t.e.shape)
    h.near(t.v, {1.5, 2.5})
    assert.same({format = "mg", note = "two\nlines \"quoted\""}, meta)
    -- file order: by dtype as Python writes it (I64 F64 F32 I32 U8 BOOL), then by name
    assert.same({"l", "d", "e", "s", "v", "x", "xt", "i", "u", "b"}, names)
  end)

  it("returns an empty metadata table and works with no tensors", function()
    local p = tmpfile()
    mg.save(p, {})
    local t, meta, names = mg.load(p)
    os.remove(p)
    assert.same({}, meta)
    assert.same({}, names)
    assert.is_nil(next(t))
  end)

  it("replaces an existing file and leaves no temp files beside it", function()
    local dir = tmpfile()
    assert(os.execute("mkdir " .. dir))
    local p = dir .. "/w.safetensors"
    mg.save(p, {a = mg.ones{2}})
    mg.save(p, {a = mg.zeros{3}})
    h.near(mg.load(p).a, {0, 0, 0})
    local ls = io.popen("ls -A " .. dir):read("*a")
    os.execute("rm -rf " .. dir)
    assert.equal("w.safetensors\n", ls)
  end)

  it("names mg.save, the key and the bad value in argument errors", function()
    local p = tmpfile()
    h.fails(function() mg.save(42, {}) end, "mg.save: path must be a string, got number")
    h.fails(function() mg.save(p, mg.ones{2}) end, "mg.save: expected a table of {name = tensor}, got tensor")
    h.fails(function() mg.save(p, {w = "hello"}) end, "mg.save: the value of 'w' must be a tensor, got string")
    h.fails(function() mg.save(p, {mg.ones{2}}) end, "mg.save: tensor names must be strings, got the number key 1")
    h.fails(function() mg.save(p, {w = mg.ones{2}}, {epoch = 3}) end,
      "mg.save: metadata 'epoch' must be a string, got number")
    h.fails(function() mg.save(p, {w = mg.ones{2}}, "meta") end, "mg.save: metadata must be a table of strings, got string")
    h.fails(function() mg.save(p, {__metadata__ = mg.ones{2}}) end, "mg.save: \"__metadata__\" is reserved")
    h.fails(function() mg.save(p, {["\255bad"] = mg.ones{2}}) end, "mg.save: the tensor name", "not valid UTF-8")
    local f = mg.ones{2}
    f:free()
    h.fails(function() mg.save(p, {w = f}) end, "mg.save: ")
    h.fails(function() mg.save("/nonexistent-dir/x.safetensors", {w = mg.ones{2}}) end,
      "mg.save: cannot create a temp file in '/nonexistent-dir'")
    assert.is_nil(io.open(p, "rb"))  -- nothing was written by the failed calls
    h.fails(function() mg.load(7) end, "mg.load: path must be a string, got number")
    h.fails(function() mg.load("/nonexistent-file.safetensors") end,
      "mg.load: cannot open '/nonexistent-file.safetensors'")
  end)
end)

describe("files made by Python's safetensors", function()
  it("loads every dtype of dtypes.safetensors with its values (F16/BF16 as float16/bfloat16)", function()
    local t, meta, names = mg.load(FIX .. "dtypes.safetensors")
    assert.same({format = "pt", note = "made by make_fixtures.py"}, meta)
    assert.same({"i64", "f64", "empty", "f32", "scalar", "i32", "bf16", "f16", "u8", "bool"}, names)
    h.near(t.f32, {{-2.5, -1.5, -0.5}, {0.5, 1.5, 2.5}})
    assert.equal("float32", t.f32.dtype)
    h.near(t.f64, {1 / 3, -2e300, 5e-310}, 1e-15)
    assert.equal("float64", t.f64.dtype)
    assert.same({{-2147483648, 0}, {7, 2147483647}}, t.i32:totable())
    local i64 = t.i64:totable()
    assert.equal(-(2 ^ 62), i64[1])
    assert.equal(-1, i64[2])
    if math.type then assert.equal(9007199254740993, i64[3]) end  -- exact in Lua 5.4 integers
    assert.same({0, 1, 254, 255}, t.u8:totable())
    assert.same({true, false, true}, t.bool:totable())
    assert.equal("float16", t.f16.dtype)
    local f16 = t.f16:totable()
    h.near({f16[1], f16[2], f16[3], f16[4], f16[5]}, {1.5, -2, 2 ^ -24, 65504, 0}, 0)
    assert.equal(math.huge, f16[6])
    assert.equal("bfloat16", t.bf16.dtype)
    h.near(t.bf16, {1, -2.5, 3.140625, 9.969209968386869e37}, 1e-7)  -- 1e38 truncated to bf16
    assert.same({}, t.scalar.shape)
    assert.equal(3.25, t.scalar:item())
    assert.same({0, 3}, t.empty.shape)
  end)

  it("writes the same bytes as Python for the same tensors", function()
    local p = tmpfile()
    mg.save(p, {
      w = mg.arange(12):reshape{3, 4}:astype("float32") * 0.5,
      b = mg.tensor({1, -2, 3}, "int64"),
      mask = mg.tensor{{true, false}, {false, true}},
      step = mg.tensor(7, "int32"),
      none = mg.zeros({2, 0}, "float64"),
      px = mg.tensor({0, 128, 255}, "uint8"),
    }, {format = "mg"})
    local ours, theirs = mg.io.read_file(p), mg.io.read_file(FIX .. "same_as_mg.safetensors")
    os.remove(p)
    assert.equal(#theirs, #ours)
    assert.equal(theirs, ours)
  end)

  it("loads I8 as int8 (the file numpy wrote when the engine lacked it)", function()
    local t = mg.load(FIX .. "unsupported_i8.safetensors")
    assert.equal("int8", t.q.dtype)
    assert.same({-1, 2}, t.q:totable())
  end)

  it("names the tensor and the dtype the engine lacks", function()
    h.fails(function()
      load_bytes(image('{"q":{"dtype":"U16","shape":[1],"data_offsets":[0,2]}}', "\0\0"))
    end, "tensor 'q': dtype U16 is not supported")
  end)
end)

describe("hostile safetensors files", function()
  it("rejects short files and lying header lengths", function()
    bad("abc", "3 bytes is too short")
    bad(le64(1000) .. "{}", "the header length 1000 is larger than the 2 bytes that follow it")
    bad(le64(2 ^ 62) .. "{}", "is larger than the 2 bytes")
    bad(le64(0), "the header is not a JSON object")
  end)

  it("rejects headers that are not one well-formed JSON object", function()
    bad(image("[1,2]"), "not a JSON object")
    bad(image("\"abc\""), "not a JSON object")
    bad(image("{\"a\":"), "the header is not valid JSON")
    bad(image("{} x"), "the header has bytes after its JSON object")
    bad(image("{\"\255\":1}"), "the header is not valid UTF-8")
    bad(image(string.rep("[", 5000)), "not a JSON object")
    bad(image("{\"a\":" .. string.rep("[", 5000) .. "}"), "not valid JSON")  -- nesting limit
  end)

  it("checks every field of an entry", function()
    bad(image('{"w":1}'), "tensor 'w': the entry must be an object, got a number")
    bad(image('{"w":{"dtype":"F32","shape":[2]}}'), "tensor 'w': missing field \"data_offsets\"")
    bad(image('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}', F32x2), "tensor 'w': unknown field \"x\"")
    bad(image('{"w":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}', F32x2),
      "the key \"dtype\" occurs twice")
    bad(w_image { dtype = '7' }, "tensor 'w': dtype must be a string, got a number")
  end)

  it("names unknown and unsupported dtypes", function()
    bad(w_image { dtype = '"F33"' }, "tensor 'w': unknown dtype \"F33\"")
    bad(w_image { dtype = '"U16"', shape = '[4]' }, "tensor 'w': dtype U16 is not supported")
    bad(w_image { dtype = '"F8_E4M3"', shape = '[8]' }, "dtype F8_E4M3 is not supported")
  end)

  it("rejects bad and absurd shapes", function()
    bad(w_image { shape = '[-2]' }, "shape entry 1 is not a non-negative integer")
    bad(w_image { shape = '[1.5]' }, "shape entry 1 is not a non-negative integer")
    bad(w_image { shape = '2' }, "shape must be an array, got a number")
    bad(w_image { shape = '[1,1,1,1,1,1,1,1,2]' },
      "tensor 'w': 9 dimensions, at most 8")
    bad(w_image { shape = '[4294967296,4294967296]' },
      "tensor 'w': the shape's element count is absurdly large")
    bad(w_image { shape = '[1e300]' }, "shape entry 1 is not a non-negative integer")
  end)

  it("rejects offsets out of range, of the wrong size, or overlapping", function()
    bad(w_image { data_offsets = '[8,0]' }, "data_offsets [8, 0] end before they begin")
    bad(w_image { shape = '[4]', data_offsets = '[0,16]' },
      "tensor 'w': data_offsets [0, 16] run past the data area (8 bytes)")
    bad(w_image { shape = '[3]' },
      "tensor 'w': data_offsets span 8 bytes but 3 F32 elements need 12")
    bad(w_image { data_offsets = '[0]' }, "data_offsets must be an array of two integers")
    bad(w_image { data_offsets = '[-8,0]' }, "data_offsets must be non-negative integers")
    bad(image('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
      F32x2), "tensors 'a' and 'b' overlap in the data area")
  end)

  it("rejects duplicate names and bad metadata", function()
    bad(image('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
      F32x2), "the tensor name \"w\" occurs twice in the header")
    bad(image('{"__metadata__":{"a":1}}'), "\"__metadata__\" value of \"a\" must be a string, got a number")
    bad(image('{"__metadata__":[]}'), "\"__metadata__\" must be an object of strings, got an array")
    bad(image('{"__metadata__":{"a":"x","a":"y"}}'), "the key \"a\" occurs twice")
  end)

  it("accepts what the format allows: padding, holes between tensors, odd offsets", function()
    local data = string.rep("\0", 3) .. le64(0):sub(1, 4) .. "\1\0\0\0\0\0\0\0"
    local t = load_bytes(image('{"a":{"dtype":"F32","shape":[],"data_offsets":[3,7]},'
      .. '"b":{"dtype":"I64","shape":[1],"data_offsets":[7,15]}}   ', data))
    assert.equal(0, t.a:item())
    assert.same({1}, t.b:totable())
  end)

  it("parses from a string with mg.core.safetensors_parse, without a file", function()
    local names, list, meta, dtypes = mg.core.safetensors_parse(
      image('{"__metadata__":{"k":"v"},"h":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}', "\0\60"), "mem")
    assert.same({"h"}, names)
    assert.same({"F16"}, dtypes)
    assert.same({k = "v"}, meta)
    assert.same({1}, list[1]:totable())
    h.fails(function() mg.core.safetensors_parse("xy", "mem") end, "mem: 2 bytes is too short")
  end)
end)

describe("mg.io", function()
  it("writes and reads whole files, binary-safe", function()
    local p = tmpfile()
    local s = "a\0b\255\n" .. string.rep("x", 100000)
    mg.io.write_file_atomic(p, s)
    assert.equal(s, mg.io.read_file(p))
    mg.io.write_file_atomic(p, "")
    assert.equal("", mg.io.read_file(p))
    os.remove(p)
  end)

  it("gives clear errors", function()
    h.fails(function() mg.io.read_file("/nonexistent-file") end, "mg.io.read_file: cannot open '/nonexistent-file'")
    h.fails(function() mg.io.read_file("/") end, "mg.io.read_file: '/' is not a regular file")
    h.fails(function() mg.io.read_file(1) end, "mg.io.read_file: path must be a string, got number")
    h.fails(function() mg.io.write_file_atomic("/nonexistent-dir/f", "x") end,
      "mg.io.write_file_atomic: cannot create a temp file in '/nonexistent-dir'")
    h.fails(function() mg.io.write_file_atomic("/tmp/x", 5) end, "mg.io.write_file_atomic: contents must be a string, got number")
    h.fails(function() mg.io.write_file_atomic("/tmp/", "x") end, "names a directory")
  end)

  it("removes temp files that killed writers left, and keeps those of live ones", function()
    local dir = tmpfile()
    assert(os.execute("mkdir " .. dir))
    local dead = io.popen("sh -c 'echo $$'"):read("*l")   -- a process that has exited
    local stale = dir .. "/.f.json.tmp." .. dead .. ".0"
    local live = dir .. "/.f.json.tmp.1.0"                -- pid 1 always runs
    local other = dir .. "/.g.json.tmp." .. dead .. ".0"  -- another target's: not ours to touch
    for _, q in ipairs({stale, live, other}) do mg.io.write_file_atomic(q, "partial") end
    mg.io.write_file_atomic(dir .. "/f.json", "{}")
    local ls = io.popen("ls -A " .. dir):read("*a")
    os.execute("rm -rf " .. dir)
    assert.equal(".f.json.tmp.1.0\n.g.json.tmp." .. dead .. ".0\nf.json\n", ls)
  end)
end)

describe("mg.io paths and directories", function()
  local function fresh()
    local d = tmpfile()
    mg.io.mkdir(d)
    return d
  end
  local function touch(p, s) mg.io.write_file_atomic(p, s or "x") end

  it("tells files from directories, and lists a directory sorted without . and ..", function()
    local d = fresh()
    assert.is_true(mg.io.exists(d))
    assert.is_true(mg.io.isdir(d))
    assert.same({}, mg.io.listdir(d))
    for _, n in ipairs({ "b", "a'q \"x", "-n", ".hidden", "c d" }) do touch(d .. "/" .. n) end
    mg.io.mkdir(d .. "/sub")
    assert.same({ "-n", ".hidden", "a'q \"x", "b", "c d", "sub" }, mg.io.listdir(d))
    assert.is_true(mg.io.exists(d .. "/a'q \"x"))
    assert.is_false(mg.io.isdir(d .. "/a'q \"x"))
    assert.is_true(mg.io.isdir(d .. "/sub/"))
    assert.is_false(mg.io.exists(d .. "/none"))
    assert.is_false(mg.io.isdir(d .. "/none"))
    assert.is_false(mg.io.exists(""))
    mg.io.remove_tree(d)
    assert.is_false(mg.io.exists(d))
  end)

  it("mkdir: an existing directory is fine, parents on request, clear errors otherwise", function()
    local d = fresh()
    mg.io.mkdir(d)                                   -- exists already: fine
    mg.io.mkdir(d .. "/a/b//c/", { parents = true })
    assert.is_true(mg.io.isdir(d .. "/a/b/c"))
    mg.io.mkdir(d .. "/a/b/c", { parents = true })   -- again: fine
    h.fails(function() mg.io.mkdir(d .. "/x/y") end, "mg.io.mkdir: cannot create directory '" .. d .. "/x/y'",
      "No such file or directory")
    touch(d .. "/f")
    h.fails(function() mg.io.mkdir(d .. "/f") end, "mg.io.mkdir: cannot create directory '" .. d .. "/f'",
      "exists and is not a directory")
    h.fails(function() mg.io.mkdir(d .. "/f/g", { parents = true }) end,
      "mg.io.mkdir: cannot create directory '" .. d .. "/f/g': '" .. d .. "/f' exists and is not a directory")
    h.fails(function() mg.io.mkdir("") end, "mg.io.mkdir: the path is empty")
    h.fails(function() mg.io.mkdir(5) end, "mg.io.mkdir: path must be a string, got number")
    h.fails(function() mg.io.mkdir(d, { parent = true }) end, "mg.io.mkdir: unknown option 'parent'")
    h.fails(function() mg.io.mkdir(d, true) end, "mg.io.mkdir: options must be a table")
    -- raised at the caller's line, not inside the library
    h.fails(function() mg.io.mkdir(d .. "/f") end, "io_spec.lua:")
    h.fails(function() mg.io.listdir(false) end, "io_spec.lua:")
    h.fails(function() mg.io.mkdir(d, 1) end, "io_spec.lua:")
    mg.io.remove_tree(d)
  end)

  it("remove: a file or an empty directory; rename: atomic replace", function()
    local d = fresh()
    touch(d .. "/f", "one")
    touch(d .. "/g", "two")
    mg.io.rename(d .. "/g", d .. "/f")                -- replaces f
    assert.equal("two", mg.io.read_file(d .. "/f"))
    assert.same({ "f" }, mg.io.listdir(d))
    mg.io.mkdir(d .. "/s")
    touch(d .. "/s/x")
    mg.io.rename(d .. "/s", d .. "/t")                -- directories too
    assert.same({ "x" }, mg.io.listdir(d .. "/t"))
    h.fails(function() mg.io.remove(d .. "/t") end, "mg.io.remove: cannot remove '" .. d .. "/t'", "not empty")
    mg.io.remove(d .. "/t/x")
    mg.io.remove(d .. "/t")
    mg.io.remove(d .. "/f")
    assert.same({}, mg.io.listdir(d))
    h.fails(function() mg.io.remove(d .. "/f") end, "mg.io.remove: cannot remove '" .. d .. "/f'",
      "No such file or directory")
    h.fails(function() mg.io.rename(d .. "/none", d .. "/z") end,
      "mg.io.rename: cannot rename '" .. d .. "/none' to '" .. d .. "/z'", "No such file or directory")
    h.fails(function() mg.io.rename(d, nil) end, "mg.io.rename: the target path must be a string, got nil")
    h.fails(function() mg.io.listdir(d .. "/none") end, "mg.io.listdir: cannot open directory '" .. d .. "/none'",
      "No such file or directory")
    touch(d .. "/f")
    h.fails(function() mg.io.listdir(d .. "/f") end, "mg.io.listdir: cannot open directory", "Not a directory")
    mg.io.remove(d .. "/f")
    mg.io.remove(d)
    assert.is_false(mg.io.exists(d))
  end)

  it("remove_tree removes nested trees, refuses / and friends, and never follows a link", function()
    local d, outside = fresh(), fresh()
    touch(outside .. "/keep", "precious")
    mg.io.mkdir(outside .. "/inner")
    touch(outside .. "/inner/keep2")
    mg.io.mkdir(d .. "/t/a/b", { parents = true })
    touch(d .. "/t/a/b/deep")
    touch(d .. "/t/top")
    assert(os.execute("ln -s '" .. outside .. "' '" .. d .. "/t/link'"))
    assert(os.execute("ln -s '" .. outside .. "' '" .. d .. "/t/a/b/link2'"))
    assert(os.execute("ln -s '" .. outside .. "/inner' '" .. d .. "/top-link'"))
    assert.is_true(mg.io.isdir(d .. "/t/link"))       -- isdir follows the link
    mg.io.remove_tree(d .. "/t")
    assert.is_false(mg.io.exists(d .. "/t"))
    -- a link given itself (even with a trailing slash) is removed as a link
    mg.io.remove_tree(d .. "/top-link/")
    assert.same({}, mg.io.listdir(d))
    assert.same({ "inner", "keep" }, mg.io.listdir(outside))
    assert.same({ "keep2" }, mg.io.listdir(outside .. "/inner"))
    assert.equal("precious", mg.io.read_file(outside .. "/keep"))
    touch(d .. "/file")
    mg.io.remove_tree(d .. "/file")                    -- a plain file is fine too
    for _, p in ipairs({ "/", "//", ".", "..", d .. "/.", d .. "/..", "./" }) do
      h.fails(function() mg.io.remove_tree(p) end, "mg.io.remove_tree: refusing to remove '" .. p .. "'")
    end
    h.fails(function() mg.io.remove_tree("") end, "mg.io.remove_tree: the path is empty")
    h.fails(function() mg.io.remove_tree(d .. "/none") end, "mg.io.remove_tree: cannot remove '" .. d .. "/none'",
      "No such file or directory")
    h.fails(function() mg.io.remove_tree({}) end, "mg.io.remove_tree: path must be a string, got table")
    mg.io.remove_tree(d)
    mg.io.remove_tree(outside)
    assert.is_false(mg.io.exists(outside))
  end)

  it("remove_tree reports what it cannot remove", function()
    local d = fresh()
    mg.io.mkdir(d .. "/ro")
    touch(d .. "/ro/f")
    assert(os.execute("chmod 555 '" .. d .. "/ro'"))
    if pcall(touch, d .. "/ro/g") then   -- root writes anyway: nothing to see here
      mg.io.remove_tree(d)
      pending("running as root: a read-only directory does not stop it")
      return
    end
    h.fails(function() mg.io.remove_tree(d) end, "mg.io.remove_tree: cannot remove '" .. d .. "/ro/f'",
      "Permission denied")
    assert.is_true(mg.io.exists(d .. "/ro/f"))
    assert(os.execute("chmod 755 '" .. d .. "/ro'"))
    mg.io.remove_tree(d)
    assert.is_false(mg.io.exists(d))
  end)
end)
