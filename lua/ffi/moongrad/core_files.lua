-- moongrad.core for LuaJIT, continued: files, paths and directories (as lua/capi/io.c), over the
-- internals of lua/ffi/moongrad/core.lua.
--
-- safetensors load/parse/save, atomic writes, reading (gunzipped) files, JSON decoding, processes,
-- and the path and directory functions over core/fs.c. None of it is on a per-op path and none of
-- it runs Lua callbacks; it is a file of its own so that core.lua keeps to tensors and ops. This
-- file returns a function: core.lua calls it once, last, with its module table M and `shared`, the
-- internals it hands over; each is copied into a local here before any function is made, so the
-- functions below reach them as upvalues, as they did inside core.lua.

return function(M, shared)
  local lib = shared.lib
  local type, error = type, error
  local format = string.format
  local new, fstring = shared.ffi.new, shared.ffi.string
  local is_int, last_error, uerror = shared.is_int, shared.last_error, shared.uerror
  local push, testtensor, typename = shared.push, shared.testtensor, shared.typename

  -- ---- files: safetensors and atomic writes (as lua/capi/io.c) ----------------------

  -- names, tensors, metadata, file dtypes of a parsed file (freed here).
  local function push_tensorfile(f)
    local names, list, meta, dtypes = {}, {}, {}, {}
    for i = 0, lib.mg_tensorfile_count(f) - 1 do
      names[i + 1] = fstring(lib.mg_tensorfile_name(f, i))
      local t = lib.mg_tensorfile_tensor(f, i)
      lib.mg_tensor_retain(t)
      list[i + 1] = push(t, true)
      dtypes[i + 1] = fstring(lib.mg_tensorfile_dtype(f, i))
    end
    for i = 0, lib.mg_tensorfile_nmeta(f) - 1 do
      meta[fstring(lib.mg_tensorfile_meta_key(f, i))] = fstring(lib.mg_tensorfile_meta_value(f, i))
    end
    lib.mg_tensorfile_free(f)
    return names, list, meta, dtypes
  end

  local function check_string(v, argn, fname)
    if type(v) ~= "string" then
      uerror(format("bad argument #%d to '%s' (string expected, got %s)", argn, fname, typename(v)), 3)
    end
    return v
  end

  function M.safetensors_load(path)
    check_string(path, 1, "safetensors_load")
    local fp = new("mg_tensorfile *[1]")
    if lib.mg_safetensors_load(path, fp) ~= 0 then uerror("mg." .. last_error(), 2) end
    return push_tensorfile(fp[0])
  end

  function M.safetensors_parse(s, what)
    check_string(s, 1, "safetensors_parse")
    local fp = new("mg_tensorfile *[1]")
    if lib.mg_safetensors_parse(s, #s, what or "<string>", fp) ~= 0 then uerror(last_error(), 2) end
    return push_tensorfile(fp[0])
  end

  -- A const char *[n] over the strings of list (kept alive by the list).
  local function string_array(list, n, what)
    local a = new("const char *[?]", n + 1)
    for i = 1, n do
      local v = list[i]
      if type(v) ~= "string" then uerror(format("mg.save: %s %d must be a string, got %s", what, i, typename(v)), 3) end
      a[i - 1] = v
    end
    return a
  end

  function M.safetensors_save(path, names, tensors, keys, vals)
    check_string(path, 1, "safetensors_save")
    if type(names) ~= "table" or type(tensors) ~= "table" then
      uerror("bad argument to 'safetensors_save' (tables of names and tensors expected)", 2)
    end
    local n, nm = #names, keys and #keys or 0
    if #tensors ~= n then uerror(format("mg.save: %d names but %d tensors", n, #tensors), 2) end
    if nm > 0 and (type(vals) ~= "table" or #vals ~= nm) then
      uerror("mg.save: metadata keys and values differ in number", 2)
    end
    local na = string_array(names, n, "name")
    local ka, va = string_array(keys or {}, nm, "metadata key"), string_array(vals or {}, nm, "metadata value")
    local ta = new("mg_tensor *[?]", n + 1)
    for i = 1, n do
      local h = testtensor(tensors[i])
      if not h then uerror(format("mg.save: '%s' must be a tensor, got %s", names[i], typename(tensors[i])), 2) end
      ta[i - 1] = h
    end
    if lib.mg_safetensors_save(path, n, na, ta, nm, ka, va) ~= 0 then uerror("mg." .. last_error(), 2) end
  end

  function M.write_file_atomic(path, s)
    check_string(path, 1, "write_file_atomic")
    check_string(s, 2, "write_file_atomic")
    if lib.mg_write_file_atomic(path, s, #s) ~= 0 then uerror("mg.io." .. last_error(), 2) end
  end

  function M.read_file(path)
    check_string(path, 1, "read_file")
    local bp, lp = new("uint8_t *[1]"), new("size_t[1]")
    if lib.mg_read_file(path, bp, lp) ~= 0 then uerror("mg.io." .. last_error(), 2) end
    local s = fstring(bp[0], lp[0])
    lib.mg_free(bp[0])
    return s
  end

  function M.read_file_gunzip(path)
    check_string(path, 1, "read_file_gunzip")
    local bp, lp = new("uint8_t *[1]"), new("size_t[1]")
    if lib.mg_read_file_gunzip(path, bp, lp) ~= 0 then uerror(last_error(), 2) end
    local s = fstring(bp[0], lp[0])
    lib.mg_free(bp[0])
    return s
  end

  function M.isatty(fd)
    if type(fd) ~= "number" or not is_int(fd) then
      uerror("bad argument #1 to 'isatty' (number has no integer representation)", 2)
    end
    return lib.mg_isatty(fd) ~= 0
  end

  -- ---- paths and directories (as lua/capi/io.c, over core/fs.c) ----------------------

  -- core.json_decode(text): as lua/capi/io.c, walking the engine's parse tree.
  local function json_value(n)
    local ty = lib.mg_json_type(n)
    if ty == lib.MG_JSON_FALSE then return false
    elseif ty == lib.MG_JSON_TRUE then return true
    elseif ty == lib.MG_JSON_NUMBER then return lib.mg_json_number(n)
    elseif ty == lib.MG_JSON_STRING then return fstring(lib.mg_json_string(n))
    elseif ty == lib.MG_JSON_ARRAY or ty == lib.MG_JSON_OBJECT then
      local t, i, c = {}, 0, lib.mg_json_child(n)
      while c ~= nil do
        i = i + 1
        if lib.mg_json_type(c) ~= lib.MG_JSON_NULL then
          if ty == lib.MG_JSON_ARRAY then t[i] = json_value(c) else t[fstring(lib.mg_json_key(c))] = json_value(c) end
        end
        c = lib.mg_json_next(c)
      end
      return t
    end
    return nil
  end
  function M.json_decode(text)
    check_string(text, 1, "json_decode")
    local rp = new("mg_json *[1]")
    if lib.mg_json_parse(text, #text, rp) ~= 0 then uerror(last_error(), 2) end
    local ok, v = pcall(json_value, rp[0])
    lib.mg_json_free(rp[0])
    if not ok then error(v, 0) end
    return v
  end

  function M.process_id() return tonumber(lib.mg_process_id()) end
  function M.process_alive(pid)
    if type(pid) ~= "number" or not is_int(pid) then
      uerror("bad argument #1 to 'process_alive' (number has no integer representation)", 2)
    end
    local a = lib.mg_process_alive(pid)
    if a < 0 then return nil end
    return a == 1
  end

  function M.path_exists(path) return lib.mg_path_exists(check_string(path, 1, "path_exists")) ~= 0 end
  function M.path_isdir(path) return lib.mg_path_isdir(check_string(path, 1, "path_isdir")) ~= 0 end

  function M.mkdir(path, parents)
    check_string(path, 1, "mkdir")
    if lib.mg_mkdir(path, parents and 1 or 0) ~= 0 then uerror("mg.io." .. last_error(), 2) end
  end

  function M.listdir(path)
    check_string(path, 1, "listdir")
    local bp, lp, np = new("char *[1]"), new("size_t[1]"), new("int[1]")
    if lib.mg_listdir(path, bp, lp, np) ~= 0 then uerror("mg.io." .. last_error(), 2) end
    local out, p = {}, bp[0]
    for i = 1, np[0] do
      local s = fstring(p)
      out[i] = s
      p = p + #s + 1
    end
    lib.mg_free(bp[0])
    return out
  end

  function M.remove(path)
    check_string(path, 1, "remove")
    if lib.mg_remove(path) ~= 0 then uerror("mg.io." .. last_error(), 2) end
  end

  function M.remove_tree(path)
    check_string(path, 1, "remove_tree")
    if lib.mg_remove_tree(path) ~= 0 then uerror("mg.io." .. last_error(), 2) end
  end

  function M.rename(from, to)
    check_string(from, 1, "rename")
    check_string(to, 2, "rename")
    if lib.mg_rename(from, to) ~= 0 then uerror("mg.io." .. last_error(), 2) end
  end
end
