/*
 * tool.cpp — a command-line classifier for Fashion-MNIST images, in C++ over
 * the RAII wrapper (moongrad.hpp).
 *
 *   tool [--quick] [--weights FILE] [--train N] TEST-IMAGES.gz
 *
 * It loads the model's weights from FILE (default fashion_mlp.mgw) and
 * classifies every image of the IDX file given on the command line (the
 * labels file beside it, if present, gives the accuracy). If FILE does not
 * exist yet, it first trains the model on the first N images of the training
 * file in the same directory (a few seconds) and saves the weights there, so
 * the next run only loads and classifies.
 *
 * What stands in for missing pieces, honestly: moongrad has no nn library
 * and no model save/load yet. So the model (an MLP 784-128-10) is defined in
 * the Lua string below with Variables and a GradientTape, and the weights
 * file is this tool's own: a magic, a count, and per tensor its rank, shape
 * and float32 data, written from the tensors the script hands back
 * (Tensor::to_vector) and read back into tensors passed in (Tensor::from).
 * When mg.nn and mg.save/mg.load exist, the script shrinks to a few lines and
 * the file format becomes theirs; the host side stays the same.
 *
 * The images reach Lua without a copy: the decompressed uint8 buffer is
 * borrowed (Tensor::borrow) and the script casts and scales it. The .gz files
 * are read through `gzip -dc` (no zlib dependency).
 */
#include "moongrad.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace mgx = moongrad;

static const char *const model_lua = R"lua(
-- An MLP 784-128-10 trained with SGD and momentum (stands in for mg.nn + mg.optim).
local W1, b1, W2, b2, params, velocity

local function variables(w1, c1, w2, c2)
  W1, b1, W2, b2 = mg.Variable(w1), mg.Variable(c1), mg.Variable(w2), mg.Variable(c2)
  params = {W1, b1, W2, b2}
  velocity = {}
  for i, p in ipairs(params) do velocity[i] = mg.zeros_like(p) end
end

function init()
  variables(mg.random.normal({784, 128}, 0, math.sqrt(2 / 784)), mg.zeros{128},
            mg.random.normal({128, 10}, 0, math.sqrt(2 / 128)), mg.zeros{10})
end

function set_weights(w1, c1, w2, c2) variables(w1, c1, w2, c2) end
function get_weights() return W1:read(), b1:read(), W2:read(), b2:read() end

local function forward(x) return mg.matmul(mg.relu(mg.matmul(x, W1) + b1), W2) + b2 end
-- images: N x 28 x 28 uint8 -> N x 784 float32 in [0, 1]
local function prepare(images) return mg.reshape(mg.cast(images, mg.float32), {-1, 784}) / 255 end

-- train(images, labels, epochs, batch): labels are the file's 0-based class ids (uint8)
function train(images, labels, epochs, batch)
  local x = prepare(images)
  local y = mg.one_hot(mg.cast(labels, mg.int64) + 1, 10)   -- index tensors count from 1 in Lua
  local n, loss = x.shape[1], nil
  for epoch = 1, epochs do
    for first = 1, n, batch do
      local last = math.min(first + batch - 1, n)
      local xb, yb = x:slice{{first, last}}, y:slice{{first, last}}
      local tape = mg.GradientTape()
      loss = -mg.mean(mg.sum(yb * mg.log_softmax(forward(xb)), {axis = 2}))
      tape:stop()
      local grads = tape:gradient(loss, params)
      for i, p in ipairs(params) do
        velocity[i] = velocity[i] * 0.9 + grads[i]
        p:assign_sub(velocity[i] * 0.01)
      end
    end
  end
  return loss:item()
end

-- classify(images): the 0-based class id of each image (int64)
function classify(images) return mg.argmax(forward(prepare(images)), {axis = 2}) - 1 end
)lua";

static const char *const class_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* An IDX file (gzip'ed): magic 2051 = images (n, rows, cols), 2049 = labels (n). */
struct Idx {
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static bool read_idx(const std::string &path, Idx &out, int64_t limit) {
  if (FILE *probe = std::fopen(path.c_str(), "rb")) std::fclose(probe);
  else return false;
  std::string cmd = "gzip -dc '" + path + "'";
  FILE *f = popen(cmd.c_str(), "r");
  if (!f) return false;
  std::vector<uint8_t> raw;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) raw.insert(raw.end(), buf, buf + n);
  if (pclose(f) != 0 || raw.size() < 8) return false;
  uint32_t magic = be32(raw.data()), ndim = magic & 0xff;
  if ((magic >> 8) != 0x08 || ndim < 1 || ndim > 3 || raw.size() < 4 + 4 * ndim) return false;
  int64_t total = 1;
  for (uint32_t i = 0; i < ndim; i++) {
    out.shape.push_back(be32(raw.data() + 4 + 4 * i));
    total *= out.shape.back();
  }
  size_t header = 4 + 4 * ndim;
  if (raw.size() < header + (size_t)total) return false;
  if (limit > 0 && out.shape[0] > limit) {
    total = total / out.shape[0] * limit;
    out.shape[0] = limit;
  }
  out.data.assign(raw.begin() + (long)header, raw.begin() + (long)header + total);
  return true;
}

static std::string sibling(const std::string &path, const char *from, const char *to) {
  std::string s = path;
  size_t at = s.rfind(from);
  if (at == std::string::npos) return "";
  return s.replace(at, std::strlen(from), to);
}

/* ---- the weights file (stands in for mg.save / mg.load) --------------------------- */

static const char kMagic[4] = {'M', 'G', 'W', '1'};

static void save_weights(const std::string &path, const mgx::Values &ws) {
  std::ofstream f(path, std::ios::binary);
  f.write(kMagic, 4);
  uint32_t count = (uint32_t)ws.size();
  f.write(reinterpret_cast<const char *>(&count), 4);
  for (const mgx::Value &v : ws) {
    const mgx::Tensor &t = v.tensor();
    std::vector<int64_t> shape = t.shape();
    uint32_t ndim = (uint32_t)shape.size();
    std::vector<float> data = t.to_vector<float>();
    f.write(reinterpret_cast<const char *>(&ndim), 4);
    f.write(reinterpret_cast<const char *>(shape.data()), (std::streamsize)(ndim * sizeof(int64_t)));
    f.write(reinterpret_cast<const char *>(data.data()), (std::streamsize)(data.size() * sizeof(float)));
  }
  if (!f) throw mgx::Error(MG_EIO, "cannot write " + path);
}

static std::vector<mgx::Tensor> load_weights(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  char magic[4];
  uint32_t count = 0;
  if (!f.read(magic, 4) || std::memcmp(magic, kMagic, 4) != 0 || !f.read(reinterpret_cast<char *>(&count), 4) ||
      count > 64)
    throw mgx::Error(MG_EIO, path + ": not a weights file of this tool");
  std::vector<mgx::Tensor> out;
  for (uint32_t i = 0; i < count; i++) {
    uint32_t ndim = 0;
    if (!f.read(reinterpret_cast<char *>(&ndim), 4) || ndim > MG_MAX_DIMS) throw mgx::Error(MG_EIO, path + ": bad rank");
    std::vector<int64_t> shape(ndim);
    f.read(reinterpret_cast<char *>(shape.data()), (std::streamsize)(ndim * sizeof(int64_t)));
    int64_t n = 1;
    for (int64_t s : shape) n = s >= 0 && s < (1 << 24) ? n * s : -1;
    if (!f || n < 0 || n > (1 << 24)) throw mgx::Error(MG_EIO, path + ": bad shape");
    std::vector<float> data((size_t)n);
    if (!f.read(reinterpret_cast<char *>(data.data()), (std::streamsize)(n * sizeof(float))))
      throw mgx::Error(MG_EIO, path + ": truncated");
    out.push_back(mgx::Tensor::from(data, shape));
  }
  return out;
}

static double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int main(int argc, char **argv) {
  bool quick = std::getenv("MG_QUICK") && std::string(std::getenv("MG_QUICK")) == "1";
  std::string weights = "fashion_mlp.mgw", test_path;
  int64_t train_n = 12000;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--weights" && i + 1 < argc) weights = argv[++i];
    else if (a == "--train" && i + 1 < argc) train_n = std::atoll(argv[++i]);
    else if (a[0] != '-') test_path = a;
    else {
      std::cerr << "usage: tool [--quick] [--weights FILE] [--train N] TEST-IMAGES.gz\n";
      return 2;
    }
  }
  if (test_path.empty()) {
    std::cerr << "usage: tool [--quick] [--weights FILE] [--train N] TEST-IMAGES.gz\n";
    return 2;
  }
  if (quick && train_n > 4000) train_n = 4000;
  int64_t test_limit = quick ? 2000 : 0;

  Idx test, labels;   /* declared before the runtime: borrowed buffers must outlive it */
  if (!read_idx(test_path, test, test_limit) || test.shape.size() != 3) {
    std::cerr << "tool: cannot read IDX images from " << test_path << "\n";
    return 1;
  }
  bool have_labels = read_idx(sibling(test_path, "images-idx3", "labels-idx1"), labels, test_limit);

  try {
    mgx::Runtime rt;
    rt.run(model_lua, "=model.lua");
    auto t0 = std::chrono::steady_clock::now();
    if (std::ifstream(weights).good()) {
      std::vector<mgx::Tensor> w = load_weights(weights);
      if (w.size() != 4) throw mgx::Error(MG_EIO, weights + ": expected 4 tensors");
      rt.call("set_weights", w[0], w[1], w[2], w[3]);
      std::printf("tool: loaded %s (%.0f ms)\n", weights.c_str(), seconds_since(t0) * 1e3);
    } else {
      Idx train_x, train_y;
      std::string tx = sibling(test_path, "t10k-images", "train-images");
      if (!read_idx(tx, train_x, train_n) || !read_idx(sibling(tx, "images-idx3", "labels-idx1"), train_y, train_n))
        throw mgx::Error(MG_EIO, "no weights file " + weights + " and no training file " + tx + " to make one");
      rt.call("init");
      int epochs = quick ? 2 : 3;
      double loss = rt.call("train", mgx::Tensor::borrow(train_x.data.data(), train_x.shape),
                            mgx::Tensor::borrow(train_y.data.data(), train_y.shape), epochs, 32).number();
      save_weights(weights, rt.call_n(4, "get_weights"));
      std::printf("tool: no weights yet: trained on %lld images x %d epochs in %.1f s (last loss %.3f), saved %s\n",
                  (long long)train_x.shape[0], epochs, seconds_since(t0), loss, weights.c_str());
    }

    t0 = std::chrono::steady_clock::now();
    mgx::Tensor images = mgx::Tensor::borrow(test.data.data(), test.shape);
    std::vector<int64_t> pred = rt.call("classify", images).tensor().to_vector<int64_t>();
    double dt = seconds_since(t0);
    std::printf("tool: classified %zu images in %.0f ms (%.1f us per image)\n", pred.size(), dt * 1e3,
                dt / (double)pred.size() * 1e6);
    for (size_t i = 0; i < 5 && i < pred.size(); i++)
      std::printf("  image %zu: %s%s%s\n", i + 1, class_names[pred[i] % 10],
                  have_labels ? ", true class: " : "", have_labels ? class_names[labels.data[i] % 10] : "");
    if (have_labels) {
      size_t right = 0;
      for (size_t i = 0; i < pred.size(); i++) right += pred[i] == labels.data[i];
      double acc = (double)right / (double)pred.size();
      std::printf("tool: accuracy %.3f on %zu labelled images\n", acc, pred.size());
      if (acc < 0.7) {
        std::fprintf(stderr, "tool: accuracy below 0.7: something is wrong\n");
        return 1;
      }
    }
  } catch (const mgx::Error &e) {
    std::fprintf(stderr, "tool: %s\n", e.what());
    return 1;
  }
  mg_thread_cache_drain();
  return 0;
}
