/*
 * test_cxx_noexc.cpp — moongrad.hpp in a host built with -fno-exceptions
 * (as many game engines are): it compiles, works, and reports failures
 * through moongrad::last_error() and the error handler instead of throwing;
 * a callback that fails becomes a Lua error. Prints "N passed, N failed".
 */
#include "moongrad.hpp"

#include <cstdio>
#include <string>
#include <vector>

#if MOONGRAD_EXCEPTIONS
#error "test_cxx_noexc.cpp must be compiled with -fno-exceptions"
#endif

using moongrad::Runtime;
using moongrad::Tensor;
using moongrad::Value;
using moongrad::Values;

static int passed, failed_checks;
#define CHECK(cond)                                                                     \
  do {                                                                                  \
    if (cond) passed++;                                                                 \
    else {                                                                              \
      std::printf("not ok - %s:%d: %s\n", __FILE__, __LINE__, #cond);                   \
      failed_checks++;                                                                  \
    }                                                                                   \
  } while (0)

static bool contains(const std::string &s, const char *sub) { return s.find(sub) != std::string::npos; }
static int handled;
static std::string handled_msg;
static void on_error(const moongrad::Error &e) {
  handled++;
  handled_msg = e.what();
}

int main() {
  Runtime rt;
  CHECK(!moongrad::failed());
  rt.run("function scale(x, k) return x * k end");
  Tensor x = Tensor::from(std::vector<float>{1, 2, 3}, {3});
  Value y = rt.call("scale", x, 2.0);
  CHECK(!moongrad::failed());
  CHECK((y.tensor().to_vector<float>() == std::vector<float>{2, 4, 6}));

  // a script error: recorded, handed to the handler, and the call returns nil
  moongrad::set_error_handler(on_error);
  Value bad = rt.call("scale", x, "not a number");
  CHECK(moongrad::failed());
  CHECK(moongrad::last_error().status() == MG_ESCRIPT);
  CHECK(contains(moongrad::last_error().what(), "mul"));
  CHECK(bad.is_nil());
  CHECK(handled == 1 && handled_msg == moongrad::last_error().what());
  moongrad::clear_error();
  CHECK(!moongrad::failed());

  // wrong-type access and size mismatches fail the same way, with empty results
  CHECK(Value("text").number() == 0 && moongrad::failed());
  moongrad::clear_error();
  Tensor wrong = Tensor::from(std::vector<float>{1, 2}, {3});
  CHECK(!wrong && moongrad::last_error().status() == MG_ESHAPE);
  CHECK(wrong.numel() == 0 && wrong.shape().empty());
  moongrad::clear_error();

  // a callback's failure becomes a Lua error the script can catch
  rt.def("host_number", [](const Values &a) -> Values { return {a.at(0).number() * 10}; });
  Values r = rt.eval("local ok, e = pcall(host_number, 'x') return tostring(ok) .. ' ' .. tostring(e)");
  CHECK(!moongrad::failed());
  CHECK(r.size() == 1 && contains(r[0].string(), "false") && contains(r[0].string(), "expected a number"));
  CHECK(rt.eval("return host_number(4)")[0].number() == 40);

  // the engine still works after all of it
  CHECK(rt.eval("return mg.ones{2, 2}:sum():item()")[0].number() == 4);
  moongrad::set_error_handler(nullptr);
  std::printf("%d passed, %d failed\n", passed, failed_checks);
  return failed_checks ? 1 : 0;
}
