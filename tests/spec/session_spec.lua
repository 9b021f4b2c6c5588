-- session_spec.lua — TF1's explicit graph and session (stdlib/moongrad/graph_mode.lua):
-- mg.Graph/as_default, placeholders and feeds, fetch structures, pruning, the compile
-- cache, Variables and their initializer, cond/while, mg.gradients, opt:minimize, errors.
-- (<close> on a Session: session_lua54_spec.lua.)

local mg = require "moongrad"

local function val(t) return t:item() end
local function near(a, b, tol) return math.abs(a - b) <= (tol or 1e-5) * math.max(1, math.abs(b)) end

describe("mg.Graph and mg.Session", function()
  it("runs the issue's example: constants, globals, several fetches and feeds", function()
    local g = mg.Graph()
    g:as_default(function()
      _G.gm_a = mg.constant(5.0); _G.gm_b = mg.constant(6.0); _G.gm_c = _G.gm_a * _G.gm_b
      _G.gm_x = mg.placeholder(mg.float32, { -1, 784 })
      _G.gm_y = (_G.gm_x * mg.cast(_G.gm_c, "float32")):sum()
    end)
    local sess = mg.Session { graph = g }
    local c = sess:run(_G.gm_c)
    -- (LuaJIT has one number type: 5.0 is an integer there, so the dtype is checked on Lua 5.4)
    if not rawget(_G, "jit") then assert.equal("float32", c.dtype) end
    assert.equal(30, val(c))
    local batch = mg.ones { 2, 784 }
    local r = sess:run({ _G.gm_c, _G.gm_y }, { [_G.gm_x] = batch })
    assert.equal(30, val(r[1]))
    assert.equal(30 * 2 * 784, val(r[2]))
    sess:close()
    _G.gm_a, _G.gm_b, _G.gm_c, _G.gm_x, _G.gm_y = nil, nil, nil, nil, nil
  end)

  it("works with locals captured as upvalues, and is not eager inside as_default", function()
    local g = mg.Graph()
    local a, x, y, eager_inside
    g:as_default(function()
      eager_inside = mg.executing_eagerly()
      a = mg.constant({ 1, 2, 3 }, "float32")
      x = mg.placeholder("float32", { 3 })
      y = a + x
    end)
    assert.is_false(eager_inside)
    assert.is_true(mg.executing_eagerly())
    local sess = mg.Session { graph = g }
    assert.same({ 11, 22, 33 }, sess:run(y, { [x] = { 10, 20, 30 } }):totable())
  end)

  it("returns the fetches' structure: a single value, a list, named and nested tables", function()
    local g = mg.Graph()
    local a, b, x
    g:as_default(function()
      a = mg.constant(2.0); b = mg.constant(3.0)
      x = mg.placeholder("float32", {})
    end)
    local sess = mg.Session { graph = g }
    local r = sess:run({ sum = a, nested = { a, { b } } })
    assert.equal(2, val(r.sum)); assert.equal(2, val(r.nested[1])); assert.equal(3, val(r.nested[2][1]))
    local s = sess:run({ p = x, q = b }, { [x] = 7 })
    assert.equal(7, val(s.p)); assert.equal(3, val(s.q))
  end)

  it("enters a graph again: later nodes use earlier tensors", function()
    local g = mg.Graph()
    local a = g:as_default(function() return mg.constant(4.0) end)
    local b = g:as_default(function() return a * a end)
    assert.equal(16, val(mg.Session { graph = g }:run(b)))
  end)

  it("compiles each (fetches, feed set) once: repeated runs do not retrace", function()
    local g = mg.Graph()
    local x, y, z
    g:as_default(function()
      x = mg.placeholder("float32", { -1 })
      y = (x * 2):sum(); z = (x + 1):sum()
    end)
    local sess = mg.Session { graph = g }
    for i = 1, 5 do assert.equal(2 * i, val(sess:run(y, { [x] = mg.ones { i } }))) end
    assert.equal(1, sess.ncompiled)   -- one graph for every batch size (unknown size)
    sess:run({ y, z }, { [x] = mg.ones { 3 } })
    sess:run({ y, z }, { [x] = mg.ones { 4 } })
    assert.equal(2, sess.ncompiled)
    sess:run(z, { [x] = mg.ones { 3 } })
    assert.equal(3, sess.ncompiled)
  end)

  it("runs only what the fetches need: an unfetched assign does not run, a fetched one does", function()
    local g = mg.Graph()
    local v, inc, dbl, init
    g:as_default(function()
      v = mg.Variable(1.0)
      inc = v:assign_add(1.0)
      dbl = v * 2
      init = mg.global_variables_initializer()
    end)
    local sess = mg.Session { graph = g }
    sess:run(init)
    assert.equal(2, val(sess:run(dbl)))     -- reads v; inc is not fetched
    assert.equal(1, val(v))
    assert.equal(2, val(sess:run(inc)))
    assert.equal(3, val(sess:run(inc)))
    assert.equal(6, val(sess:run(dbl)))
    assert.equal(3, val(v))                 -- shared with eager code
    v:assign(10)                            -- eager assign, seen by the graph
    assert.equal(20, val(sess:run(dbl)))
    sess:run(init)                          -- TF1: the initializer resets it
    assert.equal(1, val(v))
  end)

  it("Variables with a graph-computed initial value need the initializer; fetching a Variable reads it", function()
    local g = mg.Graph()
    local w
    g:as_default(function() w = mg.Variable(mg.full({ 2 }, 3.0)) end)
    local sess = mg.Session { graph = g }
    assert.same({ 0, 0 }, sess:run(w):totable())
    sess:run(mg.global_variables_initializer(g))
    assert.same({ 3, 3 }, sess:run(w):totable())
    assert.same({ 3, 3 }, w:totable())
  end)

  it("mg.cond and mg.while_loop build cond/while nodes", function()
    local g = mg.Graph()
    local p, c, w
    g:as_default(function()
      p = mg.placeholder("float32", {})
      c = mg.cond(mg.greater(p, 0), function() return p * 10 end, function() return p * 100 end)
      w = mg.while_loop(function(i, s) return mg.less(i, p) end, function(i, s) return i + 1, s + i end,
        { mg.constant(0.0), mg.constant(0.0) })
    end)
    local sess = mg.Session { graph = g }
    assert.equal(20, val(sess:run(c, { [p] = 2 })))
    assert.equal(-300, val(sess:run(c, { [p] = -3 })))
    local r = sess:run(w, { [p] = 5 })
    assert.equal(5, val(r[1])); assert.equal(10, val(r[2]))
    assert.equal(6, val(sess:run(w, { [p] = 4 })[2]))
  end)

  it("mg.gradients gives symbolic gradients equal to eager mg.grad", function()
    local g = mg.Graph()
    local x, w, y, gr
    local w0 = mg.tensor({ { 0.5, -1.0 }, { 2.0, 0.25 } }, "float32")
    g:as_default(function()
      x = mg.placeholder("float32", { -1, 2 })
      w = mg.Variable(w0)
      y = mg.sum(mg.tanh(mg.matmul(x, w)) ^ 2)
      gr = mg.gradients(y, { x, w })
    end)
    local X = mg.tensor({ { 1, 2 }, { -0.5, 0.3 }, { 0.1, 0.2 } }, "float32")
    local sess = mg.Session { graph = g }
    local r = sess:run(gr, { [x] = X })
    local ex = mg.grad(function(xx, ww) return mg.sum(mg.tanh(mg.matmul(xx, ww)) ^ 2) end, { argnums = { 1, 2 } })(X, w0)
    local a, b = r[1]:totable(), ex[1]:totable()
    for i = 1, 3 do for j = 1, 2 do assert.is_true(near(a[i][j], b[i][j])) end end
    a, b = r[2]:totable(), ex[2]:totable()
    for i = 1, 2 do for j = 1, 2 do assert.is_true(near(a[i][j], b[i][j])) end end
  end)

  it("mg.gradients: grad_ys, a gradient of a gradient, nil for what is not connected", function()
    local g = mg.Graph()
    local x, z, dy, d2, dyg, dz
    g:as_default(function()
      x = mg.placeholder("float32", {})
      z = mg.placeholder("float32", {})
      local y = x * x * x
      dy = mg.gradients(y, x)[1]
      d2 = mg.gradients(dy, { x })[1]
      dyg = mg.gradients({ y }, { x }, { mg.constant(2.0, "float32") })[1]
      dz = mg.gradients(y, { x, z })
    end)
    local r = mg.Session { graph = g }:run({ dy, d2, dyg }, { [x] = 2 })
    assert.equal(12, val(r[1])); assert.equal(12, val(r[2])); assert.equal(24, val(r[3]))
    assert.is_nil(dz[2])
  end)

  it("placeholders: nil or -1 for an unknown size; one batch size for unknown leading sizes", function()
    local g = mg.Graph()
    local a, b, d
    g:as_default(function()
      a = mg.placeholder("float32", { nil, 2 }, "a")
      b = mg.placeholder("float32", { -1, 2 }, "b")
      d = a - b
    end)
    local sess = mg.Session { graph = g }
    assert.same({ 3, 2 }, sess:run(d, { [a] = mg.ones { 3, 2 }, [b] = mg.ones { 3, 2 } }).shape)
    local ok, e = pcall(sess.run, sess, d, { [a] = mg.ones { 3, 2 }, [b] = mg.ones { 4, 2 } })
    assert.is_false(ok)
    assert.matches("unknown leading %(batch%) size", e)
  end)

  it("opt:minimize(loss) is an op: a loop of sess:run trains a linear regression as eager SGD does", function()
    local X = mg.tensor({ { 1 }, { 2 }, { 3 }, { 4 } }, "float32")
    local Y = X * 2 + 1
    local g = mg.Graph()
    local x, y, w, b, loss, train
    g:as_default(function()
      x = mg.placeholder("float32", { -1, 1 }); y = mg.placeholder("float32", { -1, 1 })
      w = mg.Variable(mg.zeros { 1, 1 }); b = mg.Variable(mg.zeros { 1 })
      loss = mg.mean(mg.square(mg.matmul(x, w) + b - y))
      train = mg.optim.SGD { learning_rate = 0.05 }:minimize(loss)
    end)
    local sess = mg.Session { graph = g }
    sess:run(mg.global_variables_initializer(g))
    local feeds = { [x] = X, [y] = Y }
    local first = val(sess:run(loss, feeds))
    for _ = 1, 100 do assert.is_nil(sess:run(train, feeds)) end
    local last = val(sess:run(loss, feeds))
    assert.is_true(last < first / 100)
    -- the same training eagerly
    local ew, eb = mg.Variable(mg.zeros { 1, 1 }), mg.Variable(mg.zeros { 1 })
    local eopt = mg.optim.SGD { learning_rate = 0.05 }
    for _ = 1, 100 do
      eopt:minimize(function() return mg.mean(mg.square(mg.matmul(X, ew) + eb - Y)) end, { ew, eb })
    end
    assert.is_true(near(val(w), val(ew), 1e-4))
    assert.is_true(near(val(b), val(eb), 1e-4))
    assert.is_true(sess.ncompiled <= 3)
  end)

  it("feeds an intermediate tensor (what is upstream of it does not run) and fetches a placeholder", function()
    local g = mg.Graph()
    local x, h, y
    g:as_default(function()
      x = mg.placeholder("float32", { -1, 2 })
      h = x * 3
      y = h:sum()
    end)
    local sess = mg.Session { graph = g }
    assert.equal(4, val(sess:run(y, { [h] = mg.ones { 2, 2 } })))   -- x is not needed
    local r = sess:run({ y, y, x }, { [x] = mg.ones { 1, 2 } })
    assert.equal(6, val(r[1])); assert.equal(6, val(r[2])); assert.same({ { 1, 1 } }, r[3]:totable())
  end)

  it("inlines staged functions and builds Keras layers (weights set by the initializer)", function()
    local sq = mg.func(function(t) return t * t end)
    local d = mg.nn.Dense(3, { kernel_initializer = "ones", bias_initializer = "zeros" })
    local g = mg.Graph()
    local x, f, out
    g:as_default(function()
      x = mg.placeholder("float32", { -1, 2 })
      f = sq(x)
      out = d(x)
    end)
    local sess = mg.Session { graph = g }
    sess:run(mg.global_variables_initializer(g))
    local r = sess:run({ f, out }, { [x] = mg.tensor({ { 1, 2 } }, "float32") })
    assert.same({ { 1, 4 } }, r[1]:totable())
    assert.same({ { 3, 3, 3 } }, r[2]:totable())
    assert.same({ { 1, 1, 1 }, { 1, 1, 1 } }, d.kernel:totable())   -- the layer's Variable, shared
  end)

  it("leaves the graph usable after an error inside as_default", function()
    local g = mg.Graph()
    local x = g:as_default(function() return mg.placeholder("float32", {}) end)
    local ok = pcall(g.as_default, g, function()
      return mg.cond(mg.greater(x, 0), function() error("boom") end, function() return x end)
    end)
    assert.is_false(ok)
    assert.is_true(mg.executing_eagerly())
    local y = g:as_default(function() return x + 1 end)
    assert.equal(3, val(mg.Session { graph = g }:run(y, { [x] = 2 })))
  end)

  it("runs a graph made elsewhere (Graph.from_graph: the hook for loaded graph files) by names", function()
    local gm = require("moongrad.graph_mode")
    local f = mg.func(function(x, y) return x * y, x + y end)
    local cf = f:concrete(mg.ones { 2 }, mg.ones { 2 })
    local g = gm.from_graph(cf.graph_obj, { inputs = { "x", "y" }, outputs = { "prod", "sum" } })
    local sess = mg.Session { graph = g }
    local r = sess:run({ p = "prod", s = { "sum" } }, { x = mg.tensor({ 2, 3 }, "float32"), y = { 4, 5 } })
    assert.same({ 8, 15 }, r.p:totable()); assert.same({ 6, 8 }, r.s[1]:totable())
    assert.has_error(function() sess:run("nope", { x = { 1, 1 }, y = { 1, 1 } }) end)
    local ok, e = pcall(sess.run, sess, "sum", { x = { 1, 1 } })
    assert.is_false(ok); assert.matches("input 'y' of graph 'loaded_graph' is not fed", e)
  end)

  it("runs a graph file loaded by mg.load_graph, by its names", function()
    local f = mg.func(function(x, y) return x * y, x + y end)
    local path = os.tmpname()
    mg.export(f, path, { signature = { mg.TensorSpec { shape = { -1 }, dtype = "float32", name = "x" },
      mg.TensorSpec { shape = { -1 }, dtype = "float32", name = "y" } } })
    local loaded = mg.load_graph(path)
    os.remove(path)
    local sess = mg.Session { graph = loaded }
    local names = loaded.output_names
    local r = sess:run(names, { x = mg.tensor({ 2, 3 }, "float32"), y = mg.tensor({ 4, 5 }, "float32") })
    assert.same({ 8, 15 }, r[1]:totable()); assert.same({ 6, 8 }, r[2]:totable())
  end)

  it("checks the options of Graph and Session (unknown names raise)", function()
    assert.has_error(function() mg.Graph { nmae = "g" } end, nil)
    local ok, e = pcall(mg.Graph, { nmae = "g" })
    assert.is_false(ok); assert.matches("Graph: unknown option 'nmae'", e)
    ok, e = pcall(mg.Session, { grpah = mg.Graph() })
    assert.is_false(ok); assert.matches("Session: unknown option 'grpah'", e)
    ok, e = pcall(mg.Graph, { name = 3 })
    assert.is_false(ok); assert.matches("name", e)
  end)

  it("raises clear errors", function()
    local g, g2 = mg.Graph(), mg.Graph()
    local x, y, other
    g:as_default(function()
      x = mg.placeholder("float32", { -1, 3 }, "images")
      y = (x * 2):sum()
    end)
    g2:as_default(function() other = mg.constant(1.0) end)
    local sess = mg.Session { graph = g }
    local function err(f, ...)
      local ok, e = pcall(f, ...)
      assert.is_false(ok)
      return tostring(e)
    end
    assert.matches("placeholder 'images' %(float32 %(%-1,3%)%) is needed by the fetches but not fed", err(sess.run, sess, y))
    assert.matches("not a tensor of this session's graph", err(sess.run, sess, other))
    assert.matches("an eager tensor", err(sess.run, sess, mg.ones { 2 }))
    assert.matches("placeholder 'images' is float32 %(%-1,3%), fed shape %(2,4%)",
      err(sess.run, sess, y, { [x] = mg.ones { 2, 4 } }))
    assert.matches("placeholder 'images' is float32 %(%-1,3%), fed a float64 tensor",
      err(sess.run, sess, y, { [x] = mg.ones({ 2, 3 }, "float64") }))
    assert.matches("has no value outside it: fetch it with a Session", err(function() return y + 1 end))
    assert.matches("only inside a Graph's as_default", err(mg.placeholder, "float32", { 2 }))
    assert.matches("only inside a Graph's as_default", err(mg.gradients, y, { x }))
    sess:close()
    assert.matches("the session is closed", err(sess.run, sess, y, { [x] = mg.ones { 1, 3 } }))
  end)
end)
