-- moongrad.datasets (mg.datasets): data sets read from files installed on
-- the machine (nothing is downloaded). mg.datasets.fashion_mnist.load_data();
-- mg.datasets.fortunes.load_data() (the Debian package fortunes' quotations);
-- mg.datasets.idx reads IDX files. Loaded on first use.
-- Portable Lua (5.4 and LuaJIT).
local modules = { fashion_mnist = "moongrad.datasets.fashion_mnist", idx = "moongrad.datasets.idx",
  fortunes = "moongrad.datasets.fortunes" }

-- (__members: the names, for the REPL's completion and help, which do not call __index to find them.)
return setmetatable({}, { __members = { fashion_mnist = true, idx = true, fortunes = true }, __index = function(t, k)
  local name = modules[k]
  if not name then return nil end
  local m = require(name)
  rawset(t, k, m)
  return m
end })
