// `bbt bench forward`: throughput of one black-box call (C candidates x E examples through the
// evaluator and model, as the training job runs it), its achieved GFLOP/s, and the same process's
// dense matmul rate at the model's shapes, so that MFU = gflops / matmul_gflops.
// `bbt bench train`: the same for one model-tuning step (core::WeightTuner: forward and backward
// of every chunk, then AdamW on every weight), FLOPs counted as 3 x the forward's matmul FLOPs.
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bbt/common/memory.hpp"
#include "bbt/model/device_memory.hpp"
#include "bbt/common/cpus.hpp"
#include "bbt/common/error.hpp"
#include "bbt/common/rng.hpp"
#include "bbt/core/evaluator.hpp"
#include "bbt/core/tuning.hpp"
#include "bbt/app/config.hpp"
#include "bbt/model/blas.hpp"
#include "bbt/model/projection.hpp"
#include "bbt/model/roberta.hpp"
#include "commands.hpp"
#include "options.hpp"

namespace po = boost::program_options;

namespace bbt::cli {
namespace {

// The keys bench forward shares with `bbt train`, and the spellings it had before.
const std::vector<FlagAlias> kAliases = {
    {"model.path", "model"},
    {"eval.batch_size", "batch-seqs"},
    {"cma.popsize", "candidates"},
    {"prompt.n_tokens", "n-prompt-tokens"},
    {"prompt.intrinsic_dim", "intrinsic-dim"},
    {"prompt.mode", "mode"},
    {"model.dtype", "dtype"},
    {"model.device", "device"},
    {"model.threads", "threads"},
};

// Reads the shared enumerations as `bbt train` does; errors name both spellings.
app::RunConfig shared_keys(const Args& args, const po::variables_map& vm) {
  app::RunConfig c;
  for (const auto& alias : kAliases) {
    const std::string key = alias.key;
    if (key != "prompt.mode" && key != "model.dtype" && key != "model.device") continue;
    try {
      app::set_config_value(c, key, vm[key].as<std::string>());
    } catch (const UsageError& e) {
      throw UsageError(args[0] + ": " + flag_names(alias) + ": " + e.what());
    }
  }
  return c;
}

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

struct Shape {
  int layers, hidden, heads, intermediate;
};

Shape named_shape(const std::string& name) {
  if (name == "base") return {12, 768, 12, 3072};
  if (name == "large") return {24, 1024, 16, 4096};
  if (name == "tiny") return {2, 64, 4, 128};
  throw UsageError("bench: --shape must be base, large or tiny, got '" + name + "'");
}

// Writes a random-weight model of `shape` (GPT-2 vocabulary) to dir, quietly.
void write_model(const std::string& dir, const Shape& s);

// A temporary random-weight model of a named shape, removed at scope exit.
struct TempModel {
  std::filesystem::path path;
  TempModel(const std::string& bench, const std::string& shape_name) {
    if (shape_name.empty()) return;
    const Shape s = named_shape(shape_name);
    path = std::filesystem::temp_directory_path() /
           ("bbt-bench-" + bench + "-" + shape_name + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path);
    write_model(path.string(), s);
  }
  ~TempModel() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

void write_model(const std::string& dir, const Shape& s) {
  Args a{"bbt make-tiny-model",
         "--out",
         dir,
         "--layers",
         std::to_string(s.layers),
         "--hidden",
         std::to_string(s.hidden),
         "--heads",
         std::to_string(s.heads),
         "--intermediate",
         std::to_string(s.intermediate),
         "--seed",
         "1"};
  std::ostringstream sink;
  auto* old = std::cout.rdbuf(sink.rdbuf());
  try {
    cmd_make_tiny_model(a);
  } catch (...) {
    std::cout.rdbuf(old);
    throw;
  }
  std::cout.rdbuf(old);
}

// Useful FLOPs of one row of t tokens (matmuls only; padding and the discarded last-layer work
// excluded): every layer's QKV, scores, values, output and FFN; the last layer needs K and V at
// every position but Q, attention, output and FFN only at <mask>; then the head on K labels.
double row_flops(double t, double H, double F, double layers, double K) {
  if (layers < 1) return 2 * H * H + 2 * H * K;
  const double full = 2 * t * H * 3 * H + 2 * t * t * H * 2 + 2 * t * H * H + 2 * t * H * F * 2;
  const double last = 2 * t * H * 2 * H + 2 * H * H + 2 * t * H * 2 + 2 * H * H + 2 * H * F * 2;
  return (layers - 1) * full + last + 2 * H * H + 2 * H * K;
}

// Synchronises by reading one value back (works on every device and libtorch version).
void sync(const torch::Tensor& t) { (void)t.sum().item<double>(); }

// Dense GEMM rate (GFLOP/s) at the FFN's shapes [M, H] x [H, F] and [M, F] x [F, H].
double matmul_gflops(std::int64_t m, std::int64_t h, std::int64_t f, torch::Device dev, torch::ScalarType dt,
                     int repeats) {
  torch::NoGradGuard ng;
  const auto opt = torch::TensorOptions().device(dev).dtype(dt);
  const auto x = torch::randn({m, h}, opt), w1 = torch::randn({f, h}, opt);
  const auto y = torch::randn({m, f}, opt), w2 = torch::randn({h, f}, opt);
  auto up = torch::empty({m, f}, opt), down = torch::empty({m, h}, opt);
  torch::mm_out(up, x, w1.t());  // warm-up
  sync(up);
  std::vector<double> rates;
  for (int r = 0; r < std::max(3, repeats); ++r) {
    const auto t0 = Clock::now();
    torch::mm_out(up, x, w1.t());
    torch::mm_out(down, y, w2.t());
    sync(down);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    rates.push_back(2.0 * 2.0 * double(m) * double(h) * double(f) / s / 1e9);
  }
  return median(rates);
}

// The call, for an independent implementation to replay: token rows, prompts [C, n, H] (as the
// evaluator projects them) and bbt's logits [C*E, K], float32 little-endian raw.
void write_call(const std::string& dir, const core::Evaluator& ev, const Eigen::MatrixXd& z,
                const core::EncodedSplit& split, const std::string& mode, const std::vector<float>& logits) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  const auto& c = ev.model().config();
  nlohmann::json j;
  j["candidates"] = z.cols();
  j["n_prompt_tokens"] = ev.projection().n_tokens();
  j["hidden"] = c.hidden_size;
  j["mode"] = mode;
  j["ids"] = split.ids;
  j["mask_pos"] = split.mask_pos;
  const auto labels = ev.label_ids();
  j["label_ids"] = labels;
  std::ofstream(dir + "/call.json") << j.dump() << "\n";
  torch::Tensor zt = torch::from_blob(const_cast<double*>(z.data()), {z.cols(), z.rows()}, torch::kFloat64);
  const auto prompts =
      ev.projection().project(zt.to(torch::kFloat32)).to(torch::kCPU, torch::kFloat32).contiguous();
  auto write = [&](const std::string& name, const float* p, std::size_t count) {
    std::ofstream f(dir + "/" + name, std::ios::binary);
    f.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(count * sizeof(float)));
    if (!f) throw Error("bench forward: cannot write '" + dir + "/" + name + "'");
  };
  write("prompts.f32", prompts.data_ptr<float>(), static_cast<std::size_t>(prompts.numel()));
  write("logits.f32", logits.data(), logits.size());
}

}  // namespace

int bench_forward(const Args& args) {
  std::string model_dir, shape_name, dump_dir, mode_name = "add", dtype_name = "float32", device_name = "cpu";
  std::int64_t batch_seqs = 0, seq_len = 0, candidates = 20, examples = 32, n_prompt = 50, dim = 500;
  int threads = 0, repeats = 5, warmup = 1;
  bool no_groups = false, deep = false;
  std::uint64_t seed = 1;
  po::options_description desc("options");
  desc.add_options()("help,h", "print this help")("model.path", po::value(&model_dir),
                                                  "model directory (config.json, model.safetensors)")(
      "shape", po::value(&shape_name), "random weights of a named shape instead: base, large or tiny")(
      "eval.batch_size", po::value(&batch_seqs),
      "rows per forward pass (default: 64 on CPU, 1024 on CUDA, as train)")(
      "seq-len", po::value(&seq_len), "text tokens per row (default: SST-2-like, 25..60 by a fixed seed)")(
      "cma.popsize", po::value(&candidates)->default_value(20), "candidates per call (CMA-ES population)")(
      "examples", po::value(&examples)->default_value(32), "examples per candidate")(
      "prompt.n_tokens", po::value(&n_prompt)->default_value(50), "prompt tokens")(
      "prompt.intrinsic_dim", po::value(&dim)->default_value(500), "z dimension")(
      "prompt.mode", po::value(&mode_name)->default_value("add"), "add or cat")(
      "model.dtype", po::value(&dtype_name)->default_value("float32"),
      "float32, bfloat16, float16 or auto (as train)")(
      "model.device", po::value(&device_name)->default_value("cpu"), "cpu, cuda or auto (as train)")(
      "model.threads", po::value(&threads), "intra-op threads (default: every CPU this process may use)")(
      "repeats", po::value(&repeats)->default_value(5), "timed calls")(
      "warmup", po::value(&warmup)->default_value(1), "untimed calls first")(
      "seed", po::value(&seed)->default_value(1), "seed of lengths, tokens and z")(
      "no-length-groups", po::bool_switch(&no_groups), "pad every chunk to its longest row (for comparison)")(
      "deep", po::bool_switch(&deep),
      "BBTv2's call: a deep prompt (one projection per layer), the candidates replacing the middle layer")(
      "dump", po::value(&dump_dir),
      "write the call (call.json, prompts.f32, logits.f32) to DIR for bench/baseline_hf_style.py");
  const po::variables_map vm = parse_options(args, desc, nullptr, kAliases);
  if (vm.count("help")) {
    std::cout
        << "usage: " << args[0] << " [--model.path DIR | --shape base|large|tiny] [options]\n"
        << "Keys shared with `bbt train` are spelled as there; the older spellings (--model,\n"
        << "--batch-seqs, --candidates, --n-prompt-tokens, --intrinsic-dim, --mode, --dtype, --device,\n"
        << "--threads) still work.\n"
        << desc;
    return 0;
  }
  if (model_dir.empty() == shape_name.empty())
    throw UsageError(args[0] + ": give exactly one of --model.path and --shape");
  const app::RunConfig shared = shared_keys(args, vm);
  if (candidates < 1 || examples < 1 || n_prompt < 0 || dim < 1 || repeats < 1 || warmup < 0)
    throw UsageError(args[0] + ": --cma.popsize, --examples, --prompt.intrinsic_dim, --repeats must be >= 1");
  // auto: as train, CUDA when available, then bfloat16 on CUDA and float32 on CPU.
  const bool cuda =
      shared.model.device == torch::kCUDA || (!shared.model.device && torch::cuda::is_available());
  const torch::Device device = cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  torch::ScalarType dt = cuda ? torch::kBFloat16 : torch::kFloat32;
  if (shared.model.dtype == model::Dtype::kF32) dt = torch::kFloat32;
  if (shared.model.dtype == model::Dtype::kF16) dt = torch::kFloat16;
  if (shared.model.dtype == model::Dtype::kBF16) dt = torch::kBFloat16;
  if (device.is_cuda() && !torch::cuda::is_available()) throw Error(args[0] + ": CUDA is not available");
  at::set_num_threads(threads > 0 ? threads : usable_cpu_count());  // libtorch may start with fewer
  if (batch_seqs <= 0) batch_seqs = device.is_cuda() ? 1024 : 64;

  namespace fs = std::filesystem;
  fs::path tmp;
  if (!shape_name.empty()) {
    const Shape s = named_shape(shape_name);
    tmp = fs::temp_directory_path() / ("bbt-bench-forward-" + shape_name + "-" + std::to_string(::getpid()));
    fs::remove_all(tmp);
    write_model(tmp.string(), s);
    model_dir = tmp.string();
  }
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      if (!p.empty()) fs::remove_all(p, ec);
    }
  } cleanup{tmp};

  model::LoadOptions lo;
  lo.device = device;
  lo.dtype = dt;
  lo.max_batch = batch_seqs;
  lo.length_groups = !no_groups;
  const auto t_load = Clock::now();
  const model::Roberta model = model::Roberta::load(model_dir, lo);
  const double load_s = std::chrono::duration<double>(Clock::now() - t_load).count();
  const auto& c = model.config();
  const model::PromptMode mode = shared.prompt.mode;

  // SST-2-shaped examples: <s> [n placeholders in add mode] text <mask> . </s>, random ids.
  Rng rng(seed);
  core::EncodedSplit split;
  const std::int64_t first_id = 4, last_id = std::max<std::int64_t>(first_id + 1, c.vocab_size - 1);
  auto rand_id = [&]() {
    return first_id + static_cast<std::int64_t>(rng.uniform() * double(last_id - first_id));
  };
  double useful_tokens = 0, flops = 0;
  const double K = 2;
  for (std::int64_t e = 0; e < examples; ++e) {
    const std::int64_t text = seq_len > 0 ? seq_len : 25 + static_cast<std::int64_t>(rng.uniform() * 36.0);
    std::vector<std::int64_t> ids{c.bos_token_id};
    if (mode == model::PromptMode::kAdd)
      for (std::int64_t i = 0; i < n_prompt; ++i) ids.push_back(rand_id());  // placeholders
    for (std::int64_t i = 0; i < text; ++i) ids.push_back(rand_id());
    const std::int64_t mpos = static_cast<std::int64_t>(ids.size()) - 2;
    ids.push_back(c.eos_token_id);
    split.ids.push_back(ids);
    split.mask_pos.push_back(mpos);
    split.labels.push_back(e % 2);
    const double t = double(ids.size()) + (mode == model::PromptMode::kCat ? double(n_prompt) : 0.0);
    useful_tokens += t;
    flops += row_flops(t, double(c.hidden_size), double(c.intermediate_size), double(c.num_hidden_layers), K);
  }
  useful_tokens *= double(candidates);
  flops *= double(candidates);

  model::Projection projection(dim, n_prompt, c.hidden_size, model::ProjectionKind::kNormal, 0.01, 7, device,
                               dt);
  core::Evaluator evaluator(model, std::move(projection), torch::Tensor(), {rand_id(), rand_id()}, mode,
                            batch_seqs);
  Eigen::MatrixXd z(dim, candidates);
  for (std::int64_t j = 0; j < z.size(); ++j) z.data()[j] = rng.normal();
  const std::int64_t pairs = candidates * examples;
  const std::int64_t deep_layer = c.num_hidden_layers / 2;
  if (deep) {
    if (mode != model::PromptMode::kAdd)
      throw UsageError(args[0] + ": --deep adds to every layer: use --prompt.mode add");
    std::vector<model::Projection> layers;
    for (std::int64_t l = 0; l < c.num_hidden_layers; ++l)
      layers.emplace_back(dim, n_prompt, c.hidden_size, model::ProjectionKind::kNormal, 0.01,
                          static_cast<std::uint64_t>(7 + l), device, dt);
    evaluator.set_deep(std::move(layers));
    for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) evaluator.set_base_layer(l, z.col(l % candidates));
  }

  double checksum = 0;
  std::vector<double> seconds;
  std::vector<float> logits;
  for (int r = 0; r < warmup + repeats; ++r) {
    const auto t0 = Clock::now();
    logits = deep ? evaluator.pair_logits_layer(deep_layer, z, split, 0, pairs)
                  : evaluator.pair_logits(z, split, 0, pairs);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (r >= warmup) seconds.push_back(s);
    checksum = 0;
    for (float v : logits) checksum += v;
  }
  const double med = median(seconds);
  if (!dump_dir.empty() && deep) throw UsageError(args[0] + ": --dump writes input prompts; not with --deep");
  if (!dump_dir.empty()) write_call(dump_dir, evaluator, z, split, mode_name, logits);

  // Matmul rate at the FFN's shapes with the rows of one forward chunk at the mean length.
  const std::int64_t chunk = std::min<std::int64_t>(batch_seqs, pairs);
  const auto m_rows = static_cast<std::int64_t>(double(chunk) * useful_tokens / double(pairs));
  const double mm = matmul_gflops(m_rows, c.hidden_size, c.intermediate_size, device, dt, repeats);
  const double gflops = flops / med / 1e9;

  nlohmann::json out;
  out["bench"] = "forward";
  out["model"] = shape_name.empty() ? model_dir : shape_name;
  out["layers"] = c.num_hidden_layers;
  out["hidden"] = c.hidden_size;
  out["heads"] = c.num_attention_heads;
  out["intermediate"] = c.intermediate_size;
  out["vocab"] = c.vocab_size;
  out["device"] = device_name;
  out["dtype"] = dtype_name;
  out["threads"] = device.is_cuda() ? 0 : at::get_num_threads();
  out["mode"] = deep ? "deep" : mode_name;
  out["candidates"] = candidates;
  out["examples"] = examples;
  out["n_prompt_tokens"] = n_prompt;
  out["batch_seqs"] = batch_seqs;
  out["length_groups"] = !no_groups;
  out["rows_per_call"] = pairs;
  out["tokens_per_call"] = useful_tokens;
  out["gflop_per_call"] = flops / 1e9;
  out["repeats"] = repeats;
  out["seconds_per_call"] = seconds;
  out["seconds_per_call_median"] = med;
  out["calls_per_second"] = 1.0 / med;
  out["tokens_per_second"] = useful_tokens / med;
  out["gflops"] = gflops;
  out["matmul_shape"] = {m_rows, c.hidden_size, c.intermediate_size};
  out["matmul_gflops"] = mm;
  const model::BlasInfo blas = model::blas_info();
  out["blas"] = blas.library;
  out["blas_core"] = blas.core;
  if (!blas.advice.empty() && device.is_cpu()) std::cerr << "bbt: warning: " << blas.advice << "\n";
  out["mfu"] = gflops / mm;
  out["load_seconds"] = load_s;
  out["logit_checksum"] = checksum;
  // The process's peaks (the model, the batch and the matmul probe): Table 4's server memory.
  out["peak_rss_bytes"] = bbt::peak_rss_bytes();
  out["peak_device_bytes"] = model::peak_device_bytes(device);
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace bbt::cli

namespace bbt::cli {

int bench_train(const Args& args) {
  std::string model_dir, shape_name;
  std::int64_t batch = 16, seq_len = 64, chunk_rows = 0;
  int threads = 0, repeats = 5, warmup = 1;
  std::uint64_t seed = 1;
  po::options_description desc("options");
  desc.add_options()("help,h", "print this help")("model.path", po::value(&model_dir),
                                                  "model directory (config.json, model.safetensors)")(
      "shape", po::value(&shape_name), "random weights of a named shape instead: base, large or tiny")(
      "optim.batch_size", po::value(&batch)->default_value(16), "examples per step (SST-2-shaped rows)")(
      "seq-len", po::value(&seq_len)->default_value(64), "tokens per row, <s> and </s> included")(
      "optim.chunk_rows", po::value(&chunk_rows), "rows per forward/backward pass (default: the whole batch)")(
      "model.threads", po::value(&threads), "intra-op threads (default: every CPU this process may use)")(
      "repeats", po::value(&repeats)->default_value(5), "timed steps")(
      "warmup", po::value(&warmup)->default_value(1), "untimed steps first")(
      "seed", po::value(&seed)->default_value(1), "seed of tokens and labels");
  const po::variables_map vm = parse_options(args, desc, nullptr, {{"optim.batch_size", "batch"},
                                                                   {"model.threads", "threads"}});
  if (vm.count("help")) {
    std::cout << "usage: " << args[0] << " [--model.path DIR | --shape base|large|tiny] [options]\n"
              << "One model-tuning step (every weight trained; float32 on the CPU) as `bbt train` runs it\n"
              << "on one rank: forward and backward of each chunk, then AdamW. FLOPs per step are 3 x\n"
              << "the forward's matmul FLOPs; MFU is against this process's matmul rate at the FFN's shapes.\n"
              << desc;
    return 0;
  }
  if (model_dir.empty() == shape_name.empty())
    throw UsageError(args[0] + ": give exactly one of --model.path and --shape");
  if (batch < 1 || seq_len < 4 || repeats < 1 || warmup < 0 || (vm.count("optim.chunk_rows") && chunk_rows < 1))
    throw UsageError(args[0] + ": --optim.batch_size, --repeats, --optim.chunk_rows must be >= 1, --seq-len >= 4");
  if (chunk_rows <= 0 || chunk_rows > batch) chunk_rows = batch;
  at::set_num_threads(threads > 0 ? threads : usable_cpu_count());
  const TempModel tmp("train", shape_name);
  if (!shape_name.empty()) model_dir = tmp.path.string();
  model::LoadOptions lo;  // float32 on the CPU: what model tuning trains
  lo.max_batch = chunk_rows;
  const model::Roberta model = model::Roberta::load(model_dir, lo);
  const auto& c = model.config();
  if (seq_len > c.max_position_embeddings - c.pad_token_id - 1)
    throw UsageError(args[0] + ": --seq-len " + std::to_string(seq_len) + " exceeds the model's positions");

  // SST-2-shaped rows: <s> text <mask> </s>, random ids, seq_len tokens each.
  Rng rng(seed);
  core::EncodedSplit split;
  const std::int64_t first_id = 4, last_id = std::max<std::int64_t>(first_id + 1, c.vocab_size - 1);
  auto rand_id = [&]() { return first_id + static_cast<std::int64_t>(rng.uniform() * double(last_id - first_id)); };
  const double K = 2;
  double forward_flops = 0;
  for (std::int64_t e = 0; e < batch; ++e) {
    std::vector<std::int64_t> ids{c.bos_token_id};
    while (static_cast<std::int64_t>(ids.size()) < seq_len - 1) ids.push_back(rand_id());
    ids.push_back(c.eos_token_id);
    split.ids.push_back(ids);
    split.mask_pos.push_back(seq_len - 2);
    split.labels.push_back(e % 2);
    forward_flops +=
        row_flops(double(seq_len), double(c.hidden_size), double(c.intermediate_size), double(c.num_hidden_layers), K);
  }
  const double flops = 3.0 * forward_flops;  // backward = 2 x forward (input and weight gradients)
  const std::vector<std::int64_t> labels{rand_id(), rand_id()};

  core::WeightTuner tuner(model);
  std::vector<float> g(static_cast<std::size_t>(tuner.size())), chunk_g;
  double loss = 0;
  std::vector<double> seconds, update_seconds;
  for (int r = 0; r < warmup + repeats; ++r) {
    const auto t0 = Clock::now();
    std::fill(g.begin(), g.end(), 0.0f);
    loss = 0;
    for (std::int64_t r0 = 0; r0 < batch; r0 += chunk_rows) {
      std::vector<std::int64_t> rows;
      for (std::int64_t i = r0; i < std::min(batch, r0 + chunk_rows); ++i) rows.push_back(i);
      std::int64_t correct = 0;
      loss += tuner.chunk_gradient(split, rows, labels, correct, chunk_g);
      at::parallel_for(0, static_cast<std::int64_t>(g.size()), std::int64_t{1} << 15,
                       [&](std::int64_t b, std::int64_t e) {
                         for (std::int64_t i = b; i < e; ++i) g[i] += chunk_g[i];
                       });
    }
    const auto t1 = Clock::now();
    core::AdamW a;
    a.lr = 1e-5;
    a.t = r;
    tuner.update(g, a);
    const auto t2 = Clock::now();
    if (r >= warmup) {
      seconds.push_back(std::chrono::duration<double>(t2 - t0).count());
      update_seconds.push_back(std::chrono::duration<double>(t2 - t1).count());
    }
  }
  const double med = median(seconds);
  const std::int64_t m_rows = chunk_rows * seq_len;
  const double mm = matmul_gflops(m_rows, c.hidden_size, c.intermediate_size, torch::kCPU, torch::kFloat32, repeats);
  const double gflops = flops / med / 1e9;

  nlohmann::json out;
  out["bench"] = "train";
  out["model"] = shape_name.empty() ? model_dir : shape_name;
  out["layers"] = c.num_hidden_layers;
  out["hidden"] = c.hidden_size;
  out["heads"] = c.num_attention_heads;
  out["intermediate"] = c.intermediate_size;
  out["vocab"] = c.vocab_size;
  out["device"] = "cpu";
  out["dtype"] = "float32";
  out["threads"] = at::get_num_threads();
  out["batch_size"] = batch;
  out["seq_len"] = seq_len;
  out["chunk_rows"] = chunk_rows;
  out["trainable_parameters"] = tuner.size();
  out["tokens_per_step"] = batch * seq_len;
  out["flops_rule"] = "3 x forward matmul FLOPs";
  out["gflop_per_step"] = flops / 1e9;
  out["repeats"] = repeats;
  out["seconds_per_step"] = seconds;
  out["seconds_per_step_median"] = med;
  out["adamw_seconds_median"] = median(update_seconds);
  out["steps_per_second"] = 1.0 / med;
  out["tokens_per_second"] = double(batch * seq_len) / med;
  out["gflops"] = gflops;
  out["matmul_shape"] = {m_rows, c.hidden_size, c.intermediate_size};
  out["matmul_gflops"] = mm;
  const model::BlasInfo blas = model::blas_info();
  out["blas"] = blas.library;
  out["blas_core"] = blas.core;
  if (!blas.advice.empty()) std::cerr << "bbt: warning: " << blas.advice << "\n";
  out["mfu"] = gflops / mm;
  out["loss"] = loss;
  out["peak_rss_bytes"] = bbt::peak_rss_bytes();
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace bbt::cli
