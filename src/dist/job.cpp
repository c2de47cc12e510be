#include "bbt/dist/job.hpp"

#include <torch/torch.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <limits>
#include <memory>
#include <numeric>
#include <sstream>
#include <thread>

#include "bbt/common/error.hpp"
#include "bbt/common/rng.hpp"
#include "bbt/common/version.hpp"
#include "bbt/core/evaluator.hpp"
#include "bbt/core/losses.hpp"
#include "bbt/core/task_data.hpp"
#include "bbt/dist/mpi.hpp"
#include "bbt/es/cma.hpp"
#include "bbt/io/run_file.hpp"
#include "bbt/model/blas.hpp"
#include "bbt/model/npy.hpp"
#include "bbt/text/tokenizer.hpp"

namespace bbt::dist {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// What rank 0 asks all ranks to do next (the first word of every broadcast header).
enum Command : std::int64_t { kStop = 0, kTrain = 1, kDev = 2, kTest = 3, kSync = 4 };

// Work the ranks share: (candidate, example) pairs in chunks of `chunk_rows`, so that the chunk
// boundaries (and so every logit, bit for bit on CPU) do not depend on the number of ranks.
struct Shared {
  MpiSession& mpi;
  core::Evaluator& evaluator;
  core::EncodedSplit train, dev, test;
  int dim = 0;
  // This rank's seconds in forward passes and inside MPI calls (waiting for rank 0's next command
  // included) since it last reported them (report_rank_clocks).
  double clock_forward = 0, clock_comm = 0;
};

struct EvalTiming {
  double forward = 0, comm = 0;
  std::vector<double> bytes_sent, bytes_received;  // per rank, logical payload
};

// Collective: every rank evaluates its share of Z's columns on `split`; rank 0 gets the logits.
std::vector<float> evaluate_share(Shared& s, const Eigen::MatrixXd& z, const core::EncodedSplit& split,
                                  EvalTiming* timing) {
  const std::int64_t pairs = z.cols() * split.size();
  const Range mine = chunked_share(pairs, s.evaluator.chunk_rows(), s.mpi.rank(), s.mpi.size());
  const auto t0 = Clock::now();
  const std::vector<float> local = s.evaluator.pair_logits(z, split, mine.begin, mine.end);
  const auto t1 = Clock::now();
  std::vector<float> all = gather(local, 0);
  const double forward_s = std::chrono::duration<double>(t1 - t0).count(), gather_s = seconds_since(t1);
  s.clock_forward += forward_s;
  s.clock_comm += gather_s;
  if (timing) {
    timing->forward += forward_s;
    timing->comm += gather_s;
    const double k = static_cast<double>(s.evaluator.num_labels());
    const double z_bytes = 8.0 * static_cast<double>(z.size() + 3);  // header + size + payload
    timing->bytes_sent.assign(s.mpi.size(), 0.0);
    timing->bytes_received.assign(s.mpi.size(), 0.0);
    for (int r = 0; r < s.mpi.size(); ++r) {
      const double logit_bytes =
          4.0 * k *
          static_cast<double>(chunked_share(pairs, s.evaluator.chunk_rows(), r, s.mpi.size()).size());
      if (r == 0) continue;
      timing->bytes_sent[r] = logit_bytes;
      timing->bytes_received[r] = z_bytes;
      timing->bytes_sent[0] += z_bytes;
      timing->bytes_received[0] += logit_bytes;
    }
  }
  return all;
}

// Rank 0's side of a collective evaluation: header, Z, then the shared work.
std::vector<float> command_evaluate(Shared& s, Command cmd, const Eigen::MatrixXd& z, EvalTiming* timing) {
  const auto t0 = Clock::now();
  std::vector<std::int64_t> header{cmd, z.cols()};
  broadcast(header, 0);
  std::vector<double> flat(z.data(), z.data() + z.size());
  broadcast(flat, 0);
  s.clock_comm += seconds_since(t0);
  const core::EncodedSplit& split = cmd == kTrain ? s.train : cmd == kDev ? s.dev : s.test;
  return evaluate_share(s, z, split, timing);
}

void command_stop(int code) {
  std::vector<std::int64_t> header{kStop, code};
  broadcast(header, 0);
}

// Every rank's signal flag, combined: the job stops as one.
int command_sync(Shared& s) {
  const auto t0 = Clock::now();
  std::vector<std::int64_t> header{kSync, 0};
  broadcast(header, 0);
  const int flag = allreduce_max(static_cast<int>(g_stop_signal));
  s.clock_comm += seconds_since(t0);
  return flag;
}

// Collective, after every training evaluation: each rank's clocks to rank 0 as [forward, comm]
// per rank (rank 0 gets 2 x ranks values, the others none); the clocks restart.
std::vector<double> report_rank_clocks(Shared& s) {
  const std::vector<double> mine{s.clock_forward, s.clock_comm};
  s.clock_forward = s.clock_comm = 0;
  return gather_fixed(mine, 0);
}

// Ranks other than 0: serve rank 0's commands until it says stop; returns the exit code.
int worker_loop(Shared& s) {
  for (;;) {
    const auto t0 = Clock::now();
    std::vector<std::int64_t> header;
    broadcast(header, 0);
    if (header.size() != 2) throw Error("protocol error: bad command header from rank 0");
    if (header[0] == kStop) return static_cast<int>(header[1]);
    if (header[0] == kSync) {
      allreduce_max(static_cast<int>(g_stop_signal));
      s.clock_comm += seconds_since(t0);
      continue;
    }
    std::vector<double> flat;
    broadcast(flat, 0);
    s.clock_comm += seconds_since(t0);
    const Eigen::Map<const Eigen::MatrixXd> z(flat.data(), s.dim, header[1]);
    const core::EncodedSplit& split = header[0] == kTrain ? s.train : header[0] == kDev ? s.dev : s.test;
    evaluate_share(s, z, split, nullptr);
    if (header[0] == kTrain) report_rank_clocks(s);
    if (const char* fail = std::getenv("BBT_TEST_FAIL_ON_RANK")) {
      // Fault injection for the test suite: this rank fails like a real evaluation error would.
      if (std::atoi(fail) == s.mpi.rank() && header[0] == kTrain)
        throw Error("injected failure (BBT_TEST_FAIL_ON_RANK)");
    }
  }
}

// Loss/metric bookkeeping on rank 0.
struct Scores {
  double loss = 0, metric = 0, accuracy = 0;
};

Scores score(const std::vector<float>& logits, std::size_t row0, const core::EncodedSplit& split,
             const io::RunConfig& cfg, const core::TaskInfo& task) {
  const std::size_t n = static_cast<std::size_t>(split.size());
  const std::size_t k = task.label_ids.size();
  const core::LogitMatrix m = core::logits_from(logits.data() + row0 * k, n, k);
  const std::vector<int> labels(split.labels.begin(), split.labels.end());
  Scores s;
  s.loss = core::loss(cfg.loss.type, m, labels, cfg.loss.margin, cfg.loss.logit_scale,
                      task.spec.metric, task.spec.f1_positive);
  s.metric = core::metric(m, labels, task.spec.metric, task.spec.f1_positive);
  s.accuracy = core::accuracy(m, labels);
  return s;
}

std::string timestamp() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::gmtime(&now));
  return buf;
}

std::string iso_time() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

std::string format_duration(double s) {
  std::ostringstream o;
  if (!std::isfinite(s)) return "?";
  const long t = static_cast<long>(s);
  if (t >= 3600)
    o << t / 3600 << "h" << std::setw(2) << std::setfill('0') << (t % 3600) / 60 << "m";
  else if (t >= 60)
    o << t / 60 << "m" << std::setw(2) << std::setfill('0') << t % 60 << "s";
  else
    o << t << "s";
  return o.str();
}

es::CmaOptions cma_options(const io::RunConfig& cfg) {
  es::CmaOptions o;
  o.dim = cfg.prompt.intrinsic_dim;
  o.popsize = cfg.cma.popsize;
  o.sigma0 = cfg.cma.sigma0;
  o.x0 = Eigen::VectorXd::Zero(o.dim);
  o.seed = static_cast<std::uint64_t>(cfg.cma.seed);
  if (cfg.cma.bound > 0) {
    o.lower = -cfg.cma.bound;
    o.upper = cfg.cma.bound;
  }
  o.covariance = cfg.cma.covariance;
  // The budget is counted in API calls by the job itself; CMA-ES's own stop criteria stay on.
  return o;
}

constexpr const char* kSlots[2] = {"/checkpoint/slot0", "/checkpoint/slot1"};

// Everything besides CMA-ES that a resumed run needs to continue exactly.
struct Progress {
  std::int64_t generation = 0, api_calls = 0, dev_rows = 0;
  double best_dev = -std::numeric_limits<double>::infinity();
  std::int64_t best_generation = -1;
  Eigen::VectorXd best_z;
  double elapsed = 0;  // seconds spent in generations, over all attempts
  double initial_test = std::numeric_limits<double>::quiet_NaN();  // test metric of z = 0
};

void add_checkpoint_layout(io::RunFileLayout& layout, const es::CmaState& state, int dim) {
  for (const char* slot : kSlots) {
    const std::string s = slot;
    for (const auto& [name, m] : state.arrays())
      layout.add_fixed(s + "/cma/" + name, io::DType::kFloat64,
                       {static_cast<std::size_t>(m.rows()), static_cast<std::size_t>(m.cols())});
    for (const char* name : {"generation", "api_calls", "dev_rows", "best_generation"})
      layout.add_fixed(s + "/" + name, io::DType::kInt64);
    layout.add_fixed(s + "/best_dev_metric", io::DType::kFloat64);
    layout.add_fixed(s + "/elapsed_seconds", io::DType::kFloat64);
    layout.add_fixed(s + "/best_z", io::DType::kFloat64, {static_cast<std::size_t>(dim)});
  }
  layout.add_fixed("/checkpoint/latest", io::DType::kInt64);
  layout.add_fixed("/checkpoint/generation", io::DType::kInt64);
}

void write_checkpoint(io::RunFileWriter& w, const es::Cma& cma, const Progress& p, int& slot) {
  slot = 1 - slot;
  const std::string s = kSlots[slot];
  for (const auto& [name, m] : cma.state().arrays()) {
    // Column-major Eigen -> row-major dataset.
    const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rm = m;
    w.write(s + "/cma/" + name, rm.data(), static_cast<std::size_t>(rm.size()));
  }
  w.write(s + "/generation", p.generation);
  w.write(s + "/api_calls", p.api_calls);
  w.write(s + "/dev_rows", p.dev_rows);
  w.write(s + "/best_generation", p.best_generation);
  w.write(s + "/best_dev_metric", p.best_dev);
  w.write(s + "/elapsed_seconds", p.elapsed);
  w.write(s + "/best_z", p.best_z.data(), static_cast<std::size_t>(p.best_z.size()));
  w.flush();  // the slot is complete on disk before it is named the latest
  w.write("/checkpoint/latest", static_cast<std::int64_t>(slot));
  w.write("/checkpoint/generation", p.generation);
  w.flush();
}

struct Restored {
  es::CmaState cma;
  Progress progress;
  int slot = 0;
  bool finished = false;
  int file_ranks = 0;  // width of the per-rank series (the rank count the run started with)
};

Restored read_checkpoint(const std::string& path) {
  io::RunFileReader r(path);
  Restored out;
  out.file_ranks = static_cast<int>(r.int_attribute("n_ranks"));
  if (r.exists("/run/finished") && r.read_int64_scalar("/run/finished") == 1) {
    out.finished = true;
    return out;
  }
  const std::int64_t slot = r.read_int64_scalar("/checkpoint/latest");
  if (slot != 0 && slot != 1) throw Error(path + ": no checkpoint to resume from (/checkpoint/latest unset)");
  out.slot = static_cast<int>(slot);
  const std::string s = kSlots[slot];
  std::vector<std::pair<std::string, Eigen::MatrixXd>> arrays;
  const std::string prefix = s + "/cma/";
  for (const auto& name : r.datasets()) {
    if (name.rfind(prefix, 0) != 0) continue;
    const io::Array<double> a = r.read_double(name);
    const Eigen::Index rows = a.shape.size() > 0 ? static_cast<Eigen::Index>(a.shape[0]) : 1;
    const Eigen::Index cols = a.shape.size() > 1 ? static_cast<Eigen::Index>(a.shape[1]) : 1;
    Eigen::MatrixXd m =
        Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
            a.values.data(), rows, cols);
    arrays.emplace_back(name.substr(prefix.size()), std::move(m));
  }
  out.cma = es::CmaState::from_arrays(arrays);
  Progress& p = out.progress;
  p.generation = r.read_int64_scalar(s + "/generation");
  p.api_calls = r.read_int64_scalar(s + "/api_calls");
  p.dev_rows = r.read_int64_scalar(s + "/dev_rows");
  p.best_generation = r.read_int64_scalar(s + "/best_generation");
  p.best_dev = r.read_double_scalar(s + "/best_dev_metric");
  p.elapsed = r.read_double_scalar(s + "/elapsed_seconds");
  if (r.exists("/test/initial_metric")) p.initial_test = r.read_double_scalar("/test/initial_metric");
  const io::Array<double> z = r.read_double(s + "/best_z");
  p.best_z = Eigen::Map<const Eigen::VectorXd>(z.values.data(), static_cast<Eigen::Index>(z.values.size()));
  return out;
}

torch::Device pick_device(const io::RunConfig& cfg, const MpiSession& mpi) {
  const bool cuda = torch::cuda::is_available();
  if (cfg.model.device == torch::kCUDA && !cuda)
    throw UsageError("model.device = cuda but no CUDA device is available on this node");
  if (cfg.model.device == torch::kCPU || !cuda) return torch::kCPU;
  const int n = static_cast<int>(torch::cuda::device_count());
  return torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(mpi.local_rank() % n));
}

torch::ScalarType pick_dtype(const io::RunConfig& cfg, const torch::Device& device) {
  if (cfg.model.dtype == model::Dtype::kF32) return torch::kFloat32;
  if (cfg.model.dtype == model::Dtype::kF16) return torch::kFloat16;
  if (cfg.model.dtype == model::Dtype::kBF16) return torch::kBFloat16;
  return device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
}

// One rank's replica: its model, the evaluator over it, and the run's tokenized data (read or
// generated by rank 0, broadcast to all).
struct Replica {
  int threads = 1;
  torch::Device device = torch::kCPU;
  model::LoadOptions load;
  std::unique_ptr<model::Roberta> model;
  std::unique_ptr<text::Tokenizer> tokenizer;  // rank 0 only
  core::TaskInfo task;                         // label_ids on every rank; spec on rank 0
  std::unique_ptr<core::Evaluator> evaluator;
  core::TaskData data;  // rank 0 only
  std::unique_ptr<Shared> shared;
};

std::unique_ptr<Replica> build_replica(MpiSession& mpi, const io::RunConfig& cfg) {
  const bool root = mpi.rank() == 0;
  auto r = std::make_unique<Replica>();
  r->threads = cfg.model.threads > 0
                   ? cfg.model.threads
                   : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / mpi.local_size());
  at::set_num_threads(r->threads);
  r->device = pick_device(cfg, mpi);
  r->load.device = r->device;
  r->load.dtype = pick_dtype(cfg, r->device);
  r->load.max_batch = cfg.eval.batch_size > 0 ? cfg.eval.batch_size : (r->device.is_cuda() ? 1024 : 64);
  r->model = std::make_unique<model::Roberta>(model::Roberta::load(cfg.model.path, r->load));
  const auto& mc = r->model->config();

  // Rank 0 resolves the task (tokenizer) and tells the others the verbalizer ids.
  if (root) {
    r->tokenizer = std::make_unique<text::Tokenizer>(text::Tokenizer::load(cfg.model.path));
    r->task = core::resolve_task(cfg, *r->tokenizer);
  }
  broadcast(r->task.label_ids, 0);

  const int d = cfg.prompt.intrinsic_dim;
  const model::ProjectionKind kind = cfg.prompt.projection;
  const double sigma =
      cfg.prompt.alpha * r->model->word_embedding_std() / (std::sqrt(double(d)) * cfg.cma.sigma0);
  model::Projection projection(d, cfg.prompt.n_tokens, mc.hidden_size, kind, sigma,
                               derive_seed(static_cast<std::uint64_t>(cfg.cma.seed), 1), r->device,
                               r->load.dtype);
  torch::Tensor p0;
  const model::PromptMode mode = cfg.prompt.mode;
  if (!cfg.prompt.init_file.empty()) {
    if (mode != model::PromptMode::kCat) throw UsageError("prompt.init_file (p0) is used in cat mode only");
    p0 = model::read_prompt_file(cfg.prompt.init_file, cfg.prompt.n_tokens, mc.hidden_size);
  }
  r->evaluator = std::make_unique<core::Evaluator>(*r->model, std::move(projection), p0, r->task.label_ids,
                                                   mode, r->load.max_batch);

  // Rank 0 reads (or generates) the data and broadcasts token ids.
  if (root) r->data = core::prepare_task_data(cfg, r->task, *r->tokenizer, *r->evaluator);
  r->shared = std::make_unique<Shared>(Shared{mpi, *r->evaluator, {}, {}, {}, d});
  Shared& s = *r->shared;
  for (auto [from, to] :
       {std::pair{&r->data.train, &s.train}, {&r->data.dev, &s.dev}, {&r->data.test, &s.test}}) {
    std::vector<std::int64_t> packed = from->pack();
    broadcast(packed, 0);
    *to = core::EncodedSplit::unpack(packed);
  }
  return r;
}

int run_job(MpiSession& mpi, const io::TrainArgs& args, const std::string& command_line) {
  const bool root = mpi.rank() == 0;
  const auto t_start = Clock::now();

  // The configuration: parsed by every rank from the same text (a resumed run's stored text).
  io::RunConfig cfg = args.config;
  if (!args.resume.empty()) {
    std::string text;
    if (root) text = io::RunFileReader(args.resume).string_attribute("config");
    broadcast(text, 0);
    cfg = io::parse_config_text(text, args.resume + ":/config", args.overrides);
    cfg.validate();
  }

  const std::unique_ptr<Replica> replica = build_replica(mpi, cfg);
  const int threads = replica->threads;
  const torch::Device device = replica->device;
  const model::LoadOptions& lo = replica->load;
  const auto& mc = replica->model->config();
  const core::TaskInfo& task = replica->task;
  core::TaskData& data = replica->data;
  Shared& s = *replica->shared;
  const int d = cfg.prompt.intrinsic_dim;
  if (!root) return worker_loop(s);

  // ---- rank 0: CMA-ES, the run file, the schedule ----
  std::ostream& log = std::cout;
  const int lambda = cfg.cma.popsize;
  es::CmaOptions copt = cma_options(cfg);
  copt.threads = threads;  // the rank's share of the cores (the bits do not depend on it)
  Restored restored;
  std::string run_path;
  if (!args.resume.empty()) {
    run_path = args.resume;
    restored = read_checkpoint(run_path);
    if (restored.finished) {
      log << "bbt: " << run_path << " has already finished; nothing to resume" << std::endl;
      command_stop(kExitFinished);
      return kExitFinished;
    }
  } else {
    if (cfg.output.run_name.empty())
      cfg.output.run_name = cfg.task.name + "-" + std::to_string(cfg.task.split_seed) + "-" + timestamp();
    const fs::path dir = fs::path(cfg.output.dir) / cfg.output.run_name;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw Error("cannot create run directory '" + dir.string() + "': " + ec.message());
    run_path = (dir / "run.h5").string();
    if (fs::exists(run_path))
      throw UsageError("run file '" + run_path + "' exists; continue it with bbt train --resume " + run_path +
                       " or choose another output.run_name");
  }
  es::Cma cma = args.resume.empty() ? es::Cma(copt) : es::Cma::restore(copt, restored.cma);
  Progress p = restored.progress;
  if (args.resume.empty()) p.best_z = Eigen::VectorXd::Zero(d);
  int slot = restored.slot;

  const std::int64_t n_train = s.train.size(), n_dev = s.dev.size(), n_test = s.test.size();
  // Per-rank series keep the width of the run's first attempt (a resume may use another count).
  const std::size_t N = static_cast<std::size_t>(args.resume.empty() ? mpi.size() : restored.file_ranks);
  io::RunFileWriter w = [&]() {
    if (!args.resume.empty())
      return io::RunFileWriter::open_for_resume(run_path, {{"/train", p.generation}, {"/dev", p.dev_rows}});
    io::RunFileLayout layout;
    layout.int_attr("format_version", 1)
        .string_attr("config", cfg.to_ini())
        .string_attr("command_line", command_line)
        .int_attr("n_ranks", mpi.size())
        .string_attr("started_at", iso_time())
        .string_attr("model_path", cfg.model.path)
        .string_attr("git_describe", bbt::git_describe())
        .string_attr("bbt_version", bbt::version())
        .string_attr("task", cfg.task.name)
        .string_attr("metric", data::metric_name(task.spec.metric))
        .int_attr("split_seed", cfg.task.split_seed)
        .int_attr("seed", cfg.cma.seed)
        .int_attr("intrinsic_dim", d)
        .int_attr("popsize", lambda)
        .int_attr("n_train", n_train)
        .int_attr("n_dev", n_dev)
        .int_attr("n_test", n_test)
        .string_attr("device", device.str())
        .string_attr("dtype", std::string(c10::toString(lo.dtype)))
        .int_attr("threads_per_rank", threads);
    layout.add_series("/train/generation", io::DType::kInt64)
        .add_series("/train/api_calls", io::DType::kInt64)
        .add_series("/train/loss", io::DType::kFloat64, {static_cast<std::size_t>(lambda)})
        .add_series("/train/accuracy", io::DType::kFloat64, {static_cast<std::size_t>(lambda)})
        .add_series("/train/best_loss", io::DType::kFloat64)
        .add_series("/train/mean_loss", io::DType::kFloat64)
        .add_series("/train/best_accuracy", io::DType::kFloat64)
        .add_series("/train/sigma", io::DType::kFloat64)
        .add_series("/train/seconds_forward", io::DType::kFloat64)
        .add_series("/train/seconds_comm", io::DType::kFloat64)
        .add_series("/train/seconds_cma", io::DType::kFloat64)
        .add_series("/train/seconds_total", io::DType::kFloat64)
        .add_series("/train/bytes_sent", io::DType::kFloat64, {N})
        .add_series("/train/bytes_received", io::DType::kFloat64, {N})
        .add_series("/train/seconds_forward_ranks", io::DType::kFloat64, {N})
        .add_series("/train/seconds_comm_ranks", io::DType::kFloat64, {N})
        .add_series("/train/nonfinite", io::DType::kInt64)
        .add_series("/dev/generation", io::DType::kInt64)
        .add_series("/dev/api_calls", io::DType::kInt64)
        .add_series("/dev/loss", io::DType::kFloat64)
        .add_series("/dev/metric", io::DType::kFloat64);
    layout.add_fixed("/best/z", io::DType::kFloat64, {static_cast<std::size_t>(d)})
        .add_fixed("/best/generation", io::DType::kInt64)
        .add_fixed("/best/dev_metric", io::DType::kFloat64)
        .add_fixed("/test/metric", io::DType::kFloat64)
        .add_fixed("/test/loss", io::DType::kFloat64)
        .add_fixed("/test/accuracy", io::DType::kFloat64)
        .add_fixed("/test/n_examples", io::DType::kInt64)
        .add_fixed("/test/initial_metric", io::DType::kFloat64)
        .add_fixed("/test/initial_loss", io::DType::kFloat64)
        .add_fixed("/data/train_index", io::DType::kInt64, {static_cast<std::size_t>(n_train)})
        .add_fixed("/data/dev_index", io::DType::kInt64, {static_cast<std::size_t>(n_dev)})
        .add_fixed("/data/train_labels", io::DType::kInt64, {static_cast<std::size_t>(n_train)})
        .add_fixed("/data/dev_labels", io::DType::kInt64, {static_cast<std::size_t>(n_dev)})
        .add_fixed("/data/dropped_train_rows", io::DType::kInt64)
        .add_fixed("/data/dropped_test_rows", io::DType::kInt64)
        .add_fixed("/data/label_ids", io::DType::kInt64, {task.label_ids.size()})
        .add_fixed("/run/finished", io::DType::kInt64)
        .add_fixed("/run/stop_reason", io::DType::kInt64)
        .add_fixed("/run/seconds_total", io::DType::kFloat64);
    add_checkpoint_layout(layout, cma.state(), d);
    io::RunFileWriter created = io::RunFileWriter::create(run_path, layout);
    created.write("/data/train_index", data.train_index);
    created.write("/data/dev_index", data.dev_index);
    created.write("/data/train_labels", s.train.labels);
    created.write("/data/dev_labels", s.dev.labels);
    std::int64_t dropped_train = 0, dropped_test = 0;
    for (const auto& [reason, count] : data.dropped)
      (reason.rfind("train", 0) == 0 ? dropped_train : dropped_test) += count;
    created.write("/data/dropped_train_rows", dropped_train);
    created.write("/data/dropped_test_rows", dropped_test);
    created.write("/data/label_ids", task.label_ids);
    created.write("/run/finished", std::int64_t{0});
    created.flush();
    return created;
  }();

  const model::BlasInfo blas = model::blas_info();
  log << "bbt " << bbt::version() << ": " << mpi.size() << " rank(s), " << threads << " thread(s) per rank, "
      << device.str() << " " << c10::toString(lo.dtype) << ", BLAS " << blas.library
      << (blas.core.empty() ? "" : " (" + blas.core + ")") << "\n"
      << (blas.advice.empty() || !device.is_cpu() ? "" : "bbt: warning: " + blas.advice + "\n") << "model "
      << cfg.model.path << ": " << mc.num_hidden_layers << " layers, hidden " << mc.hidden_size << "\n"
      << (data.summary.empty() ? "" : data.summary + "\n") << "run file " << run_path
      << (args.resume.empty() ? "" : " (resumed at generation " + std::to_string(p.generation) + ")") << "\n"
      << "configuration:\n"
      << cfg.to_ini() << std::flush;

  // z = 0 on test first, so every run file shows what tuning gained.
  if (args.resume.empty() && cfg.eval.test && n_test > 0) {
    const auto logits = command_evaluate(s, kTest, Eigen::MatrixXd::Zero(d, 1), nullptr);
    const Scores zero = score(logits, 0, s.test, cfg, task);
    p.initial_test = zero.metric;
    w.write("/test/initial_metric", zero.metric);
    w.write("/test/initial_loss", zero.loss);
    w.flush();
    log << "initial prompt (z = 0): test " << data::metric_name(task.spec.metric) << " " << zero.metric
        << ", loss " << zero.loss << std::endl;
  }

  const std::int64_t budget = cfg.cma.budget;
  double last_dev = std::numeric_limits<double>::quiet_NaN();
  if (p.dev_rows > 0) last_dev = p.best_dev;
  const auto t_loop = Clock::now();
  const std::int64_t calls_at_start = p.api_calls;
  int exit_code = kExitFinished;
  std::string stop_reason = "budget";
  while (p.api_calls < budget) {
    if (command_sync(s) != 0) {
      write_checkpoint(w, cma, p, slot);
      log << "bbt: stop signal received: checkpointed generation " << p.generation
          << "; resume with bbt train --resume " << run_path << std::endl;
      exit_code = kExitCheckpointed;
      stop_reason = "signal";
      break;
    }
    if (cma.stopped()) {
      stop_reason = cma.stop_reason();
      break;
    }
    const auto t_gen = Clock::now();
    const Eigen::MatrixXd& z = cma.ask();
    const double t_ask = seconds_since(t_gen);
    EvalTiming timing;
    const std::vector<float> logits = command_evaluate(s, kTrain, z, &timing);
    const std::vector<double> clocks = report_rank_clocks(s);  // [forward, comm] per rank
    std::vector<double> losses(lambda), accs(lambda);
    for (int c = 0; c < lambda; ++c) {
      const Scores sc = score(logits, static_cast<std::size_t>(c) * n_train, s.train, cfg, task);
      losses[c] = sc.loss;
      accs[c] = sc.accuracy;
    }
    const int gen_best = static_cast<int>(std::min_element(losses.begin(), losses.end(),
                                                           [](double a, double b) {
                                                             if (std::isnan(a)) return false;
                                                             if (std::isnan(b)) return true;
                                                             return a < b;
                                                           }) -
                                          losses.begin());
    const Eigen::VectorXd best_candidate = z.col(gen_best);  // copy: tell() may change the sample
    const auto t_tell = Clock::now();
    cma.tell(Eigen::Map<const Eigen::VectorXd>(losses.data(), lambda));
    const double t_cma = t_ask + seconds_since(t_tell);
    const std::int64_t calls_before = p.api_calls;
    p.api_calls += lambda;
    const std::int64_t gen_index = p.generation;  // 0-based index of this generation in /train
    p.generation += 1;

    // Dev selection every eval.every API calls on the generation's best candidate.
    if (n_dev > 0 && p.api_calls / cfg.eval.every > calls_before / cfg.eval.every) {
      const auto dl = command_evaluate(s, kDev, best_candidate, nullptr);
      const Scores dv = score(dl, 0, s.dev, cfg, task);
      w.append("/dev/generation", gen_index);
      w.append("/dev/api_calls", p.api_calls);
      w.append("/dev/loss", dv.loss);
      w.append("/dev/metric", dv.metric);
      p.dev_rows += 1;
      last_dev = dv.metric;
      if (dv.metric > p.best_dev) {
        p.best_dev = dv.metric;
        p.best_generation = gen_index;
        p.best_z = best_candidate;
        w.write("/best/z", p.best_z.data(), static_cast<std::size_t>(d));
        w.write("/best/generation", p.best_generation);
        w.write("/best/dev_metric", p.best_dev);
      }
    }
    double mean = 0;
    for (double l : losses) mean += l;
    mean /= lambda;
    w.append("/train/generation", gen_index);
    w.append("/train/api_calls", p.api_calls);
    w.append("/train/loss", losses);
    w.append("/train/accuracy", accs);
    w.append("/train/best_loss", losses[gen_best]);
    w.append("/train/mean_loss", mean);
    w.append("/train/best_accuracy", *std::max_element(accs.begin(), accs.end()));
    w.append("/train/sigma", cma.sigma());
    w.append("/train/seconds_forward", timing.forward);
    w.append("/train/seconds_comm", timing.comm);
    w.append("/train/seconds_cma", t_cma);
    w.append("/train/seconds_total", seconds_since(t_gen));
    timing.bytes_sent.resize(N, 0.0);
    timing.bytes_received.resize(N, 0.0);
    w.append("/train/bytes_sent", timing.bytes_sent);
    w.append("/train/bytes_received", timing.bytes_received);
    if (w.has_series("/train/seconds_comm_ranks")) {  // resumed files written before these existed lack them
      std::vector<double> forward_ranks(N, 0.0), comm_ranks(N, 0.0);
      for (std::size_t r = 0; r < std::min<std::size_t>(N, clocks.size() / 2); ++r) {
        forward_ranks[r] = clocks[2 * r];
        comm_ranks[r] = clocks[2 * r + 1];
      }
      w.append("/train/seconds_forward_ranks", forward_ranks);
      w.append("/train/seconds_comm_ranks", comm_ranks);
    }
    w.append("/train/nonfinite", static_cast<std::int64_t>(cma.nonfinite_count()));
    p.elapsed += seconds_since(t_gen);
    if (p.generation % cfg.output.checkpoint_every == 0) write_checkpoint(w, cma, p, slot);
    w.flush();

    if (p.generation % cfg.output.log_every == 0 || p.api_calls >= budget) {
      const double rate =
          static_cast<double>(p.api_calls - calls_at_start) / std::max(1e-9, seconds_since(t_loop));
      std::ostringstream line;
      line << std::fixed << std::setprecision(4) << "gen " << p.generation << " calls " << p.api_calls << "/"
           << budget << " best " << losses[gen_best] << " mean " << mean << " train_acc "
           << *std::max_element(accs.begin(), accs.end()) << " dev " << last_dev << " sigma " << cma.sigma()
           << std::setprecision(1) << " calls/s " << rate << " eta "
           << format_duration(static_cast<double>(budget - p.api_calls) / rate);
      log << line.str() << std::endl;
    }
  }
  if (exit_code == kExitCheckpointed) {
    command_stop(exit_code);
    w.close();
    return exit_code;
  }
  write_checkpoint(w, cma, p, slot);

  // The kept z (best dev metric; the last generation's mean if dev never ran) on the test split.
  if (p.best_generation < 0) {
    p.best_z = cma.mean();
    w.write("/best/z", p.best_z.data(), static_cast<std::size_t>(d));
    w.write("/best/generation", p.generation - 1);
  }
  if (cfg.eval.test && n_test > 0) {
    const auto tl = command_evaluate(s, kTest, p.best_z, nullptr);
    const Scores ts = score(tl, 0, s.test, cfg, task);
    w.write("/test/metric", ts.metric);
    w.write("/test/loss", ts.loss);
    w.write("/test/accuracy", ts.accuracy);
    w.write("/test/n_examples", n_test);
    log << "test " << data::metric_name(task.spec.metric) << " " << ts.metric << " (kept z from generation "
        << p.best_generation << ", dev " << p.best_dev << "); initial prompt (z = 0): " << p.initial_test
        << std::endl;
  }
  command_stop(kExitFinished);
  w.write("/run/finished", std::int64_t{1});
  w.write("/run/stop_reason", static_cast<std::int64_t>(stop_reason == "budget" ? 0 : 1));
  w.write("/run/seconds_total", p.elapsed);
  w.close();
  log << "finished: " << p.api_calls << " API calls in " << format_duration(seconds_since(t_start)) << " ("
      << stop_reason << "); run file " << run_path << std::endl;
  return kExitFinished;
}

int run_eval_job(MpiSession& mpi, const EvalArgs& args) {
  const bool root = mpi.rank() == 0;
  std::string text;
  std::vector<double> z;
  if (root) {
    io::RunFileReader r(args.run);
    text = r.string_attribute("config");
    const io::Array<double> best = r.read_double("/best/z");
    z = best.values;
    for (double v : z)
      if (std::isnan(v)) throw Error(args.run + ": /best/z is not written yet (no dev evaluation so far)");
  }
  broadcast(text, 0);
  broadcast(z, 0);
  std::vector<std::string> overrides = args.overrides;
  if (!args.data.empty()) {
    if (args.split != "test") throw UsageError("--data replaces the test file; use it with --split test");
    overrides.insert(overrides.end(), {"--task.test_file", args.data});
  }
  overrides.insert(overrides.end(), {"--eval.test", args.split == "test" ? "true" : "false"});
  io::RunConfig cfg = io::parse_config_text(text, args.run + ":/config", overrides);
  cfg.validate();
  const std::unique_ptr<Replica> replica = build_replica(mpi, cfg);
  Shared& s = *replica->shared;
  if (!root) return worker_loop(s);
  const Eigen::MatrixXd zm = Eigen::Map<const Eigen::VectorXd>(z.data(), static_cast<Eigen::Index>(z.size()));
  const Command cmd = args.split == "dev" ? kDev : kTest;
  const core::EncodedSplit& split = cmd == kDev ? s.dev : s.test;
  const auto logits = command_evaluate(s, cmd, zm, nullptr);
  command_stop(kExitFinished);
  const Scores sc = score(logits, 0, split, cfg, replica->task);
  std::cout << std::setprecision(6) << "{\"run\": \"" << args.run << "\", \"split\": \"" << args.split
            << "\", \"task\": \"" << cfg.task.name << "\", \"metric\": \""
            << data::metric_name(replica->task.spec.metric) << "\", \"value\": " << sc.metric
            << ", \"loss\": " << sc.loss << ", \"accuracy\": " << sc.accuracy
            << ", \"n_examples\": " << split.size() << "}" << std::endl;
  return kExitFinished;
}

}  // namespace

int run_train(const io::TrainArgs& args, const std::string& command_line) {
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGUSR1, on_stop_signal);
  int rank = launcher_rank();
  // The session outlives the handlers below: an error must reach MPI_Abort, not MPI_Finalize
  // (which would wait forever for the ranks still running).
  std::unique_ptr<MpiSession> mpi;
  try {
    mpi = std::make_unique<MpiSession>(nullptr, nullptr);
    rank = mpi->rank();
    return run_job(*mpi, args, command_line);
  } catch (const UsageError& e) {
    abort_job("bbt: error: rank " + std::to_string(rank) + ": " + e.what(), kExitUsage);
  } catch (const std::exception& e) {
    abort_job("bbt: error: rank " + std::to_string(rank) + ": " + e.what(), kExitFailed);
  }
}

int run_eval(const EvalArgs& args) {
  int rank = launcher_rank();
  std::unique_ptr<MpiSession> mpi;
  try {
    mpi = std::make_unique<MpiSession>(nullptr, nullptr);
    rank = mpi->rank();
    return run_eval_job(*mpi, args);
  } catch (const UsageError& e) {
    abort_job("bbt: error: rank " + std::to_string(rank) + ": " + e.what(), kExitUsage);
  } catch (const std::exception& e) {
    abort_job("bbt: error: rank " + std::to_string(rank) + ": " + e.what(), kExitFailed);
  }
}

}  // namespace bbt::dist
