/*
 * test_cxx.cpp — the C++ wrapper (moongrad.hpp): RAII ownership, exceptions
 * on the host side, and C++ exceptions thrown inside callbacks turned into
 * Lua errors (never unwinding through Lua). Prints "N passed, N failed".
 */
#include "moongrad.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using moongrad::Error;
using moongrad::Runtime;
using moongrad::Staged;
using moongrad::Tensor;
using moongrad::Value;
using moongrad::Values;

static int failures;
#define CHECK(cond)                                                             \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                               \
    }                                                                           \
  } while (0)

static bool contains(const std::string &s, const char *sub) { return s.find(sub) != std::string::npos; }

static void tensors_and_calls() {
  Runtime rt;
  rt.run("function scale(x, k) return x * k, 'scaled', #x end");
  Tensor x = Tensor::from(std::vector<float>{1, 2, 3}, {3});
  Values r = rt.call_n(3, "scale", x, 2.0);
  CHECK(r[0].is_tensor());
  CHECK((r[0].tensor().to_vector<float>() == std::vector<float>{2, 4, 6}));
  CHECK(r[1].string() == "scaled");
  CHECK(r[2].integer() == 3);
  CHECK(r[0].tensor().shape() == std::vector<int64_t>{3});
  Value first = rt.call("scale", x, 3);
  CHECK(first.tensor().to_vector<float>()[2] == 9);
  bool threw = false;
  try {
    first.tensor().to_vector<double>();
  } catch (const Error &e) {
    threw = e.status() == MG_EDTYPE;
  }
  CHECK(threw);
  Values e = rt.eval("return mg.arange(6):reshape{2, 3}, nil, {}", 3);
  CHECK((e[0].tensor().to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  CHECK(e[1].is_nil());
  CHECK(e[2].type_name() == "table");
  rt.set("speed", 2.5f);
  CHECK(rt.get("speed").number() == 2.5);
  auto step = rt.lookup("scale");
  double total = 0;
  for (int i = 0; i < 10; i++) total += step(x, i).tensor().to_vector<float>()[0];
  CHECK(total == 45);
}

static int released;
static void count_release(void *, void *) { released++; }

static void ownership_is_raii() {
  static double buf[4] = {1, 2, 3, 4};
  int64_t shape[1] = {4};
  mg_tensor *raw = nullptr;
  released = 0;
  CHECK(mg_tensor_borrow(MG_FLOAT64, 1, shape, buf, count_release, nullptr, &raw) == MG_OK);
  {
    Tensor a = Tensor::adopt(raw);
    Tensor b = a;             // shared
    Tensor c = std::move(b);  // moved: b is empty
    CHECK(!b);
    {
      Runtime rt;
      rt.run("function keep(x) kept = x end");
      rt.call("keep", c);
      CHECK(released == 0);
    }                         // the runtime's reference goes with it
    CHECK(released == 0);
  }
  CHECK(released == 1);       // the last C++ reference released it exactly once
  Tensor empty;
  bool threw = false;
  try {
    empty.numel();
  } catch (const Error &e) {
    threw = e.status() == MG_ESTATE;
  }
  CHECK(threw);
}

static void errors_become_exceptions() {
  Runtime rt;
  try {
    rt.run("local function inner() error('kaput') end inner()", "=script");
    CHECK(false);
  } catch (const Error &e) {
    CHECK(e.status() == MG_ESCRIPT);
    CHECK(contains(e.what(), "script:1: kaput"));
    CHECK(contains(e.what(), "stack traceback"));
  }
  try {
    rt.call("no_such_function");
    CHECK(false);
  } catch (const Error &e) {
    CHECK(contains(e.what(), "'no_such_function' is not a function"));
  }
  mg_runtime_options o{};
  o.instruction_limit = 100000;
  Runtime limited(&o);
  try {
    limited.run("while true do end");
    CHECK(false);
  } catch (const Error &e) {
    CHECK(e.status() == MG_ELIMIT);
  }
  CHECK(limited.eval("return 1 + 1")[0].integer() == 2);
  Runtime spinning;   // no budget: stopped from another thread
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    spinning.interrupt();
  });
  try {
    spinning.run("while true do end");
    CHECK(false);
  } catch (const Error &e) {
    CHECK(e.status() == MG_ELIMIT);
    CHECK(contains(e.what(), "interrupted"));
  }
  stopper.join();
}

static void callback_exceptions_never_cross_lua() {
  Runtime rt;
  int calls = 0;
  rt.def("host.sum", [&](const Values &args) -> Values {
    calls++;
    double s = 0;
    for (const Value &v : args) s += v.number();   // throws moongrad::Error on a non-number
    return {s, std::string("ok ") + std::to_string(args.size())};
  });
  rt.def("host.fail", [](const Values &) -> Values { throw std::runtime_error("the host says no"); });
  rt.def("host.weird", [](const Values &) -> Values { throw 42; });
  rt.def("host.ones", [](const Values &args) -> Values {
    int64_t n = args.at(0).integer();
    return {Tensor::from(std::vector<float>((size_t)n, 1.0f), {n})};
  });
  Values r = rt.eval("local s, w = host.sum(1, 2, 3.5) return s, w", 2);
  CHECK(r[0].number() == 6.5);
  CHECK(r[1].string() == "ok 3");
  try {
    rt.run("host.fail()", "=game");
    CHECK(false);
  } catch (const Error &e) {
    CHECK(contains(e.what(), "host.fail: the host says no"));
    CHECK(contains(e.what(), "stack traceback"));
  }
  r = rt.eval("return pcall(host.sum, 1, 'x')", 2);   // caught inside Lua, as a Lua error
  CHECK(r[0].is_boolean() && !r[0].boolean());
  CHECK(contains(r[1].string(), "expected a number, got string"));
  r = rt.eval("return pcall(host.weird)", 2);
  CHECK(contains(r[1].string(), "unknown C++ exception"));
  CHECK(rt.eval("return host.ones(5):sum():item()")[0].number() == 5);
  r = rt.eval("return pcall(host.ones)", 2);          // args.at(0) throws std::out_of_range
  CHECK(!r[0].boolean());
  CHECK(calls == 2);
}

static void staged_call_into() {
  Runtime rt;
  rt.run("double_plus = mg.func(function(x) return x * 2 + 1 end)");
  std::vector<float> in{1, 2, 3}, out(3, 0);
  Tensor x = Tensor::borrow(in.data(), {3}), y = Tensor::borrow(out.data(), {3});
  Staged f = rt.lookup_staged("double_plus", {x});
  CHECK(f.noutputs() == 1);
  for (int frame = 0; frame < 3; frame++) {
    in[0] = (float)frame;
    f.call_into(x, y);
    CHECK(out[0] == 2 * frame + 1 && out[2] == 7);
  }
  Tensor wrong = Tensor::from(std::vector<double>{0, 0, 0}, {3});
  bool threw = false;
  try {
    f.call_into(x, wrong);
  } catch (const Error &e) {
    threw = e.status() == MG_EARG && contains(e.what(), "output 1 is float64 (3), the graph gives float32 (3)");
  }
  CHECK(threw);
}

int main() {
  const std::pair<const char *, void (*)()> tests[] = {
      {"tensors_and_calls", tensors_and_calls},
      {"ownership_is_raii", ownership_is_raii},
      {"errors_become_exceptions", errors_become_exceptions},
      {"callback_exceptions_never_cross_lua", callback_exceptions_never_cross_lua},
      {"staged_call_into", staged_call_into},
  };
  int passed = 0, failed = 0;
  for (auto &t : tests) {
    int before = failures;
    try {
      t.second();
    } catch (const std::exception &e) {
      std::fprintf(stderr, "  uncaught: %s\n", e.what());
      failures++;
    }
    if (failures > before) {
      std::fprintf(stderr, "not ok %s\n", t.first);
      failed++;
    } else {
      passed++;
    }
  }
  mg_thread_cache_drain();
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
