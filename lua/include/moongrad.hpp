/*
 * moongrad.hpp — a header-only C++17 wrapper over moongrad.h.
 *
 * RAII owners for the two handles (Tensor holds one reference, Runtime owns a
 * runtime), a Value for what crosses the boundary, and exceptions instead of
 * status codes on the host's side of the boundary: every failed call throws
 * moongrad::Error carrying the status and the runtime's message (with the
 * Lua traceback). In the other direction, callbacks registered with
 * Runtime::def may throw: the trampoline catches everything and turns it into
 * a Lua error, so no C++ exception ever unwinds through Lua's C frames.
 *
 * Built with -fno-exceptions (game engines often are), nothing throws:
 * a failed call records its Error as moongrad::last_error() (this thread's),
 * calls the handler set with moongrad::set_error_handler if any, and returns
 * an empty value (an empty Tensor, nil Values, 0); check
 * moongrad::last_error().status() (or failed()) after the calls that matter.
 * A callback that fails that way becomes a Lua error, as a thrown one does.
 *
 *   moongrad::Runtime rt;
 *   rt.run("function scale(x, k) return x * k end");
 *   auto x = moongrad::Tensor::from(std::vector<float>{1, 2, 3}, {3});
 *   auto y = rt.call("scale", x, 2.0).tensor();
 *   std::vector<float> v = y.to_vector<float>();   // {2, 4, 6}
 */
#ifndef MOONGRAD_HPP
#define MOONGRAD_HPP

#include "moongrad.h"

#include <array>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define MOONGRAD_EXCEPTIONS 1
#else
#define MOONGRAD_EXCEPTIONS 0
#endif

namespace moongrad {

class Error : public std::runtime_error {
 public:
  Error(mg_status status, const std::string &message) : std::runtime_error(message), status_(status) {}
  mg_status status() const noexcept { return status_; }

 private:
  mg_status status_;
};

using ErrorHandler = void (*)(const Error &);

namespace detail {
inline Error &last_error_slot() {
  static thread_local Error e(MG_OK, "");
  return e;
}
inline ErrorHandler &handler_slot() {
  static ErrorHandler h = nullptr;
  return h;
}
/* The one place a failure leaves the wrapper: thrown, or (-fno-exceptions)
 * recorded for last_error() and handed to the handler; the caller then
 * returns an empty value. */
inline void fail(mg_status st, const std::string &message) {
#if MOONGRAD_EXCEPTIONS
  throw Error(st, message);
#else
  last_error_slot() = Error(st, message);
  if (handler_slot()) handler_slot()(last_error_slot());
#endif
}
inline bool check(mg_status st) {
  if (st == MG_OK) return true;
  fail(st, mg_last_error());
  return false;
}
template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr mg_dtype value = MG_FLOAT32; };
template <> struct dtype_of<double> { static constexpr mg_dtype value = MG_FLOAT64; };
template <> struct dtype_of<int32_t> { static constexpr mg_dtype value = MG_INT32; };
template <> struct dtype_of<int64_t> { static constexpr mg_dtype value = MG_INT64; };
template <> struct dtype_of<uint8_t> { static constexpr mg_dtype value = MG_UINT8; };
template <> struct dtype_of<int8_t> { static constexpr mg_dtype value = MG_INT8; };
template <> struct dtype_of<int16_t> { static constexpr mg_dtype value = MG_INT16; };
template <> struct dtype_of<bool> { static constexpr mg_dtype value = MG_BOOL; };
}  // namespace detail

/* The error of this thread's last failed call (status MG_OK if none since
 * clear_error()); what -fno-exceptions builds check. */
inline const Error &last_error() noexcept { return detail::last_error_slot(); }
inline bool failed() noexcept { return detail::last_error_slot().status() != MG_OK; }
inline void clear_error() { detail::last_error_slot() = Error(MG_OK, ""); }
/* Called with each failure in -fno-exceptions builds (nullptr: none). */
inline void set_error_handler(ErrorHandler h) noexcept { detail::handler_slot() = h; }

/* One reference to an engine tensor. Copies share the tensor (retain), moves
 * transfer the reference, destruction releases it. */
class Tensor {
 public:
  Tensor() noexcept = default;
  Tensor(const Tensor &o) noexcept : t_(o.t_) {
    if (t_) mg_tensor_retain(t_);
  }
  Tensor(Tensor &&o) noexcept : t_(std::exchange(o.t_, nullptr)) {}
  Tensor &operator=(Tensor o) noexcept {
    std::swap(t_, o.t_);
    return *this;
  }
  ~Tensor() { mg_tensor_release(t_); }

  /* Takes over a reference the caller owns (from a "new reference" call). */
  static Tensor adopt(mg_tensor *t) noexcept {
    Tensor r;
    r.t_ = t;
    return r;
  }
  /* Shares a borrowed tensor: takes a reference of its own. */
  static Tensor share(mg_tensor *t) noexcept {
    if (t) mg_tensor_retain(t);
    return adopt(t);
  }
  /* A new tensor holding a copy of data (row-major). */
  template <class T> static Tensor from(const T *data, const std::vector<int64_t> &shape) {
    mg_tensor *t = nullptr;
    detail::check(mg_tensor_from_data(detail::dtype_of<T>::value, (int)shape.size(), shape.data(), data, &t));
    return adopt(t);
  }
  template <class T> static Tensor from(const std::vector<T> &data, const std::vector<int64_t> &shape) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    if (n != (int64_t)data.size()) {
      detail::fail(MG_ESHAPE, "Tensor::from: " + std::to_string(data.size()) + " values for " +
                                  std::to_string(n) + " elements");
      return Tensor();
    }
    return from(data.data(), shape);
  }
  /* A tensor over the caller's memory, no copy: the memory must outlive every
   * reference to the tensor (scripts may keep one). */
  template <class T> static Tensor borrow(T *data, const std::vector<int64_t> &shape) {
    mg_tensor *t = nullptr;
    detail::check(mg_tensor_borrow(detail::dtype_of<T>::value, (int)shape.size(), shape.data(), data, nullptr,
                                   nullptr, &t));
    return adopt(t);
  }

  mg_tensor *get() const noexcept { return t_; }
  /* Gives up the reference to the caller (who must release it). */
  mg_tensor *release() noexcept { return std::exchange(t_, nullptr); }
  explicit operator bool() const noexcept { return t_ != nullptr; }

  mg_dtype dtype() const { return live() ? mg_tensor_dtype(t_) : MG_NDTYPES; }
  int ndim() const { return live() ? mg_tensor_ndim(t_) : 0; }
  std::vector<int64_t> shape() const {
    if (!live()) return {};
    const int64_t *s = mg_tensor_shape(t_);
    return std::vector<int64_t>(s, s + mg_tensor_ndim(t_));
  }
  int64_t numel() const { return live() ? mg_tensor_numel(t_) : 0; }
  void copy_to(void *dst, size_t cap) const {
    if (live()) detail::check(mg_tensor_copy_to(t_, dst, cap));
  }
  /* The elements, row-major; T must match the dtype. */
  template <class T> std::vector<T> to_vector() const {
    if (!live()) return {};
    if (dtype() != detail::dtype_of<T>::value) {
      detail::fail(MG_EDTYPE, std::string("Tensor::to_vector: the tensor is ") + mg_dtype_name(dtype()));
      return {};
    }
    std::vector<T> v((size_t)numel());
    copy_to(v.data(), v.size() * sizeof(T));
    return v;
  }

 private:
  bool live() const {
    if (t_) return true;
    detail::fail(MG_ESTATE, "moongrad::Tensor: empty");
    return false;
  }
  mg_tensor *t_ = nullptr;
};

/* A value crossing the boundary. Strings are copied in; tensors shared. */
class Value {
 public:
  struct Other {
    std::string type;   /* a Lua value the host cannot hold (a table...): its type name */
  };
  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool b) : v_(b) {}
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Value(T i) : v_((int64_t)i) {}
  template <class T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
  Value(T n) : v_((double)n) {}
  Value(const char *s) : v_(std::string(s)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(Tensor t) : v_(std::move(t)) {}
  Value(Other o) : v_(std::move(o)) {}

  bool is_nil() const { return std::holds_alternative<std::monostate>(v_); }
  bool is_tensor() const { return std::holds_alternative<Tensor>(v_); }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_number() const { return std::holds_alternative<int64_t>(v_) || std::holds_alternative<double>(v_); }
  bool is_integer() const { return std::holds_alternative<int64_t>(v_); }
  bool is_boolean() const { return std::holds_alternative<bool>(v_); }
  std::string type_name() const {
    static const char *const names[] = {"nil", "boolean", "integer", "number", "string", "tensor", "other"};
    return v_.index() == 6 ? std::get<Other>(v_).type : names[v_.index()];
  }

  double number() const {
    if (auto i = std::get_if<int64_t>(&v_)) return (double)*i;
    if (auto n = std::get_if<double>(&v_)) return *n;
    detail::fail(MG_EARG, "expected a number, got " + type_name());
    return 0;
  }
  int64_t integer() const {
    if (auto i = std::get_if<int64_t>(&v_)) return *i;
    detail::fail(MG_EARG, "expected an integer, got " + type_name());
    return 0;
  }
  bool boolean() const {
    if (auto b = std::get_if<bool>(&v_)) return *b;
    detail::fail(MG_EARG, "expected a boolean, got " + type_name());
    return false;
  }
  const std::string &string() const {
    static const std::string none;
    if (auto s = std::get_if<std::string>(&v_)) return *s;
    detail::fail(MG_EARG, "expected a string, got " + type_name());
    return none;
  }
  const Tensor &tensor() const {
    static const Tensor none;
    if (auto t = std::get_if<Tensor>(&v_)) return *t;
    detail::fail(MG_EARG, "expected a tensor, got " + type_name());
    return none;
  }

  /* A C view, borrowed from this Value (for arguments). */
  mg_value view() const {
    switch (v_.index()) {
    case 1: return mg_vboolean(std::get<bool>(v_));
    case 2: return mg_vinteger(std::get<int64_t>(v_));
    case 3: return mg_vnumber(std::get<double>(v_));
    case 4: return mg_vlstring(std::get<std::string>(v_).data(), std::get<std::string>(v_).size());
    case 5: return mg_vtensor(std::get<Tensor>(v_).get());
    default: return mg_vnil();
    }
  }
  /* Takes a C result: adopts its tensor reference, copies its string. */
  static Value adopt(mg_value &v) {
    switch (v.type) {
    case MG_VBOOLEAN: return Value(v.u.b != 0);
    case MG_VINTEGER: return Value(v.u.i);
    case MG_VNUMBER: return Value(v.u.n);
    case MG_VSTRING: return Value(std::string(v.u.str.s, v.u.str.len));
    case MG_VTENSOR: {
      Tensor t = Tensor::adopt(v.u.t);
      v = mg_vnil();
      return Value(std::move(t));
    }
    case MG_VOTHER: return Value(Other{v.u.str.s});
    default: return Value();
    }
  }
  /* Copies a borrowed C value (callback arguments): shares the tensor. */
  static Value copy(const mg_value &v) {
    if (v.type == MG_VTENSOR) return Value(Tensor::share(v.u.t));
    mg_value tmp = v;
    return adopt(tmp);
  }

 private:
  std::variant<std::monostate, bool, int64_t, double, std::string, Tensor, Other> v_;
};

using Values = std::vector<Value>;

class Runtime;

/* A function looked up once (mg_lookup) for repeated calls. Owned by the
 * runtime it came from; do not use it after that runtime is gone. */
class Function {
 public:
  template <class... A> Value operator()(A &&...args) const;
  template <class... A> Values call_n(int nresults, A &&...args) const;

 private:
  friend class Runtime;
  Function(Runtime *rt, mg_ref ref) : rt_(rt), ref_(ref) {}
  Runtime *rt_;
  mg_ref ref_;
};

/* A staged function (mg.func) resolved once for given input shapes and
 * run straight into tensors the host holds: no allocation per call (see
 * mg_lookup_staged / mg_call_into). Owned by the runtime it came from. */
class Staged {
 public:
  /* One input, one result. */
  void call_into(const Tensor &in, const Tensor &out) const {
    mg_tensor *i = in.get(), *o = out.get();
    call_into(&i, 1, &o, 1);
  }
  /* Any number of each (arrays of borrowed tensor handles). */
  void call_into(mg_tensor *const *ins, int nin, mg_tensor *const *outs, int nout) const;
  int noutputs() const noexcept { return fn_ ? mg_staged_noutputs(fn_) : 0; }
  mg_staged *get() const noexcept { return fn_; }

 private:
  friend class Runtime;
  Staged(Runtime *rt, mg_staged *fn) : rt_(rt), fn_(fn) {}
  Runtime *rt_;
  mg_staged *fn_;
};

class Runtime {
 public:
  using Callback = std::function<Values(const Values &args)>;

  /* Options as in moongrad.h (nullptr = defaults). Throws Error on failure
   * (-fno-exceptions: records it; every later call then fails the same way). */
  explicit Runtime(const mg_runtime_options *options = nullptr) : rt_(mg_runtime_new(options)) {
    if (!rt_) detail::fail(MG_ENOMEM, mg_last_error());
  }
  ~Runtime() { mg_runtime_free(rt_); }
  Runtime(const Runtime &) = delete;
  Runtime &operator=(const Runtime &) = delete;

  mg_runtime *get() const noexcept { return rt_; }
  size_t memory() const { return rt_ ? mg_runtime_memory(rt_, nullptr) : 0; }
  /* Stops the call running in this runtime (any thread): mg_runtime_interrupt. */
  void interrupt() noexcept { if (rt_) mg_runtime_interrupt(rt_); }

  void run(const std::string &code, const char *chunkname = nullptr) {
    check(rt_ ? mg_run_string(rt_, code.c_str(), chunkname) : MG_ESTATE);
  }
  void run_file(const std::string &path) { check(rt_ ? mg_run_file(rt_, path.c_str()) : MG_ESTATE); }
  Values eval(const std::string &code, int nresults = 1) {
    std::vector<mg_value> res((size_t)nresults);
    if (!check(rt_ ? mg_eval(rt_, code.c_str(), res.data(), nresults) : MG_ESTATE)) return Values((size_t)nresults);
    return adopt_all(res);
  }

  /* Calls `name` (see mg_invoke) and returns its first result / first n results. */
  template <class... A> Value call(const std::string &name, A &&...args) {
    return call_n(1, name, std::forward<A>(args)...)[0];
  }
  template <class... A> Values call_n(int nresults, const std::string &name, A &&...args) {
    std::array<Value, sizeof...(A)> vals{Value(std::forward<A>(args))...};
    std::array<mg_value, sizeof...(A)> cargs;
    for (size_t i = 0; i < vals.size(); i++) cargs[i] = vals[i].view();
    std::vector<mg_value> res((size_t)nresults);
    if (!check(rt_ ? mg_invoke(rt_, name.c_str(), cargs.data(), (int)cargs.size(), res.data(), nresults) : MG_ESTATE))
      return Values((size_t)nresults);
    return adopt_all(res);
  }

  Function lookup(const std::string &name) {
    mg_ref ref = 0;
    check(rt_ ? mg_lookup(rt_, name.c_str(), &ref) : MG_ESTATE);
    return Function(this, ref);
  }

  /* The staged function `name` for inputs shaped like `example`. */
  Staged lookup_staged(const std::string &name, const std::vector<Tensor> &example) {
    std::vector<mg_tensor *> ins;
    for (const Tensor &t : example) ins.push_back(t.get());
    mg_staged *fn = nullptr;
    if (!check(rt_ ? mg_lookup_staged(rt_, name.c_str(), ins.data(), (int)ins.size(), &fn) : MG_ESTATE)) fn = nullptr;
    return Staged(this, fn);
  }

  void set(const std::string &name, const Value &v) {
    mg_value c = v.view();
    check(rt_ ? mg_set_global(rt_, name.c_str(), &c) : MG_ESTATE);
  }
  Value get(const std::string &name) {
    mg_value out;
    if (!check(rt_ ? mg_get_global(rt_, name.c_str(), &out) : MG_ESTATE)) return Value();
    return Value::adopt(out);
  }

  /* Makes fn callable from Lua as `name`. Whatever fn throws becomes a Lua
   * error in the script ("name: what()"); it never unwinds through Lua. */
  void def(const std::string &name, Callback fn) {
    callbacks_.push_back(std::make_unique<Holder>(Holder{std::move(fn), {}}));
    check(rt_ ? mg_register(rt_, name.c_str(), &Runtime::trampoline, callbacks_.back().get()) : MG_ESTATE);
  }

 private:
  friend class Function;
  friend class Staged;

  struct Holder {
    Callback fn;
    Values last;   /* the last results: their strings must live until the runtime copied them */
  };

  bool check(mg_status st) {
    if (st == MG_OK) return true;
    detail::fail(st, rt_ ? mg_runtime_errmsg(rt_) : "moongrad::Runtime: the runtime could not be created");
    return false;
  }
  static Values adopt_all(std::vector<mg_value> &res) {
    Values out;
    out.reserve(res.size());
    for (mg_value &v : res) out.push_back(Value::adopt(v));
    return out;
  }

  static mg_status trampoline(mg_runtime *, void *ud, const mg_value *args, int nargs, mg_value *res,
                              int *nres) noexcept {
    Holder *h = static_cast<Holder *>(ud);
#if MOONGRAD_EXCEPTIONS
    try {
      return run_callback(h, args, nargs, res, nres);
    } catch (const std::exception &e) {
      return mg_seterror(MG_ESCRIPT, "%s", e.what());
    } catch (...) {
      return mg_seterror(MG_ESCRIPT, "unknown C++ exception");
    }
#else
    Error host_error = last_error();  /* the host's own, left as it was */
    clear_error();  /* a failure inside the callback is recorded, then raised in Lua */
    mg_status st = run_callback(h, args, nargs, res, nres);
    if (st == MG_OK && failed()) {
      for (int i = 0; i < *nres; i++)
        if (res[i].type == MG_VTENSOR && res[i].u.t) mg_tensor_release(res[i].u.t);
      *nres = 0;
      st = mg_seterror(MG_ESCRIPT, "%s", last_error().what());
    }
    detail::last_error_slot() = host_error;
    return st;
#endif
  }
  static mg_status run_callback(Holder *h, const mg_value *args, int nargs, mg_value *res, int *nres) {
    Values in;
    in.reserve((size_t)nargs);
    for (int i = 0; i < nargs; i++) in.push_back(Value::copy(args[i]));
    h->last = h->fn(in);
    if (h->last.size() > MG_CALLBACK_MAX_RESULTS)
      return mg_seterror(MG_EARG, "returned %zu results, at most %d are allowed", h->last.size(),
                         MG_CALLBACK_MAX_RESULTS);
    for (size_t i = 0; i < h->last.size(); i++) {
      res[i] = h->last[i].view();
      if (res[i].type == MG_VTENSOR && res[i].u.t) mg_tensor_retain(res[i].u.t);  /* handed to the runtime */
      *nres = (int)i + 1;
    }
    return MG_OK;
  }

  mg_runtime *rt_;
  std::vector<std::unique_ptr<Holder>> callbacks_;
};

template <class... A> Values Function::call_n(int nresults, A &&...args) const {
  std::array<Value, sizeof...(A)> vals{Value(std::forward<A>(args))...};
  std::array<mg_value, sizeof...(A)> cargs;
  for (size_t i = 0; i < vals.size(); i++) cargs[i] = vals[i].view();
  std::vector<mg_value> res((size_t)nresults);
  if (!rt_->check(rt_->get() ? mg_invoke_ref(rt_->get(), ref_, cargs.data(), (int)cargs.size(), res.data(), nresults)
                             : MG_ESTATE))
    return Values((size_t)nresults);
  return Runtime::adopt_all(res);
}

inline void Staged::call_into(mg_tensor *const *ins, int nin, mg_tensor *const *outs, int nout) const {
  if (!fn_) {
    detail::fail(MG_ESTATE, "moongrad::Staged: the lookup failed");
    return;
  }
  rt_->check(mg_call_into(rt_->get(), fn_, ins, nin, outs, nout));
}

template <class... A> Value Function::operator()(A &&...args) const {
  return call_n(1, std::forward<A>(args)...)[0];
}

}  // namespace moongrad

#endif
