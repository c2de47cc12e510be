// The training loop, written once for every method: steps, dev selection, checkpoints, signals,
// progress lines, the test pass and the run record. What a step does is the method's.
#include <Eigen/Core>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <fstream>
#include <algorithm>
#include <sys/resource.h>
#include <unistd.h>
#include <sstream>

#include "bbt/app/job.hpp"
#include "bbt/app/replica.hpp"
#include "bbt/app/run_record.hpp"
#include "bbt/common/error.hpp"
#include "bbt/common/rng.hpp"
#include "bbt/common/version.hpp"
#include "bbt/core/scorer.hpp"
#include "bbt/es/cma.hpp"
#include "bbt/data/encode.hpp"
#include "bbt/methods/bbt.hpp"
#include "bbt/methods/bbtv2.hpp"
#include "bbt/methods/feature_classifier.hpp"
#include "bbt/methods/icl.hpp"
#include "bbt/methods/manual.hpp"
#include "bbt/methods/prompt_tuning.hpp"
#include "bbt/model/blas.hpp"
#include "bbt/model/config.hpp"
#include "bbt/io/run_file.hpp"

namespace bbt::app {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using cluster::Split;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string timestamp() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::gmtime(&now));
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

// Rank 0's run: everything the loop reads and writes.
struct Run {
  const RunConfig& cfg;
  Replica& replica;
  cluster::Cluster& cluster;
  methods::Method& method;
  core::Scorer scorer;
  RunRecord record;
  Progress progress;
  bool resumed = false;
  std::ostream& log = std::cout;
  methods::Fit fit = {};  // what a no-step method's fit returned
};

// A new run's file path under output.dir. An existing run file is refused, unless it holds no run
// worth keeping (a failed start: no checkpoint, or not even an HDF5 file) and no live job writes
// it: that one is kept aside as run.h5.partial-<time> and the run starts afresh, so the command
// that failed is also the command that restarts. `created_dir` says whether the directory is new.
std::string new_run_path(RunConfig& cfg, bool& created_dir) {
  if (cfg.output.run_name.empty())
    cfg.output.run_name = cfg.task.name + "-" + std::to_string(cfg.task.split_seed) + "-" + timestamp();
  const fs::path dir = fs::path(cfg.output.dir) / cfg.output.run_name;
  std::error_code ec;
  created_dir = fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create run directory '" + dir.string() + "': " + ec.message());
  const std::string path = (dir / "run.h5").string();
  if (fs::exists(path)) {
    std::string state;
    try {
      state = run_state(path);
    } catch (const Error&) {
      state = "unreadable";
    }
    if (state != "partial" && state != "unreadable")
      throw UsageError("run file '" + path + "' exists; continue it with bbt train --resume " + path +
                       " or choose another output.run_name");
    const std::string aside = io::set_aside(path);
    std::cout << "bbt: " << path << " holds no checkpoint (a failed start); kept as " << aside
              << ", starting afresh" << std::endl;
  }
  return path;
}

// Removes what a failed creation left: the file and, if this run made it, the empty directory.
void remove_failed_start(const std::string& path, bool created_dir) {
  std::error_code ec;
  fs::remove(path, ec);
  if (created_dir) fs::remove(fs::path(path).parent_path(), ec);  // only if empty
}

// A resume may change how fast and how often it reports, never what it computes: the keys below,
// a larger cma.budget, and model.path when the weights there are the run's (checked by
// fingerprint in train_root). Returns the changes; refuses any other in one line.
constexpr const char* kResumable =
    "model.path (same weights), model.device, model.threads, output.checkpoint_every, output.log_every, "
    "and a larger cma.budget";

std::vector<ConfigChange> resume_changes(const RunConfig& stored, const RunConfig& cfg,
                                             const std::string& path) {
  const std::vector<ConfigChange> changes = config_changes(stored, cfg);
  for (const auto& c : changes) {
    if (c.key == "model.path" || c.key == "model.device" || c.key == "model.threads" ||
        c.key == "output.checkpoint_every" || c.key == "output.log_every")
      continue;
    if (c.key == "cma.budget" && cfg.cma.budget > stored.cma.budget) continue;
    throw UsageError("--resume " + path + ": --" + c.key + " " + c.after + " would change what the run computes (" +
                     c.key + " = " + c.before + " in the run file); a resume may change only " + kResumable);
  }
  return changes;
}

// The bytes CMA-ES's matrices and this rank's projection need, checked against what the process
// may still allocate (RLIMIT_AS, physical memory) before anything heavy, so that an impossible
// size is one line instead of std::bad_alloc minutes later.
void check_memory(const RunConfig& cfg) {
  const double d = cfg.prompt.intrinsic_dim;
  double hidden = 1024;
  try {
    hidden = static_cast<double>(model::read_config(cfg.model.path + "/config.json").hidden_size);
  } catch (const Error&) {
    return;  // the model's own loader reports a bad directory
  }
  // Full covariance: C, B, the pending B, the rank-mu product, the checkpoint's copies (~8 d x d).
  const double cma = cfg.cma.covariance == es::Covariance::full ? 8.0 * 8.0 * d * d : 16.0 * 8.0 * d;
  const double projection = d * cfg.prompt.n_tokens * hidden * 4.0;
  double avail = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
  rlimit lim{};
  if (getrlimit(RLIMIT_AS, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
    long pages = 0;
    std::ifstream("/proc/self/statm") >> pages;
    avail = std::min(avail, static_cast<double>(lim.rlim_cur) - static_cast<double>(pages) * sysconf(_SC_PAGESIZE));
  }
  const double need = cma + projection;
  if (need <= avail) return;
  auto gib = [](double b) {
    std::ostringstream o;
    o << std::setprecision(3) << b / (1024.0 * 1024 * 1024) << " GiB";
    return o.str();
  };
  throw UsageError("prompt.intrinsic_dim = " + std::to_string(cfg.prompt.intrinsic_dim) + " needs about " +
                   gib(need) + " (CMA-ES " + (cfg.cma.covariance == es::Covariance::full ? "full" : "diagonal") +
                   " covariance " + gib(cma) + ", projection " + gib(projection) + ") but this process may allocate " +
                   gib(std::max(0.0, avail)) + "; lower prompt.intrinsic_dim" +
                   (cfg.cma.covariance == es::Covariance::full ? " or use cma.covariance = diagonal" : ""));
}

RunHeader make_header(const RunConfig& cfg, const Replica& r, const std::string& command_line,
                      int ranks) {
  const TaskData& data = r.root->data;
  const cluster::Cluster& c = *r.cluster;
  RunHeader h;
  h.config_ini = cfg.to_ini();
  h.command_line = command_line;
  h.n_ranks = ranks;
  h.model_path = cfg.model.path;
  h.task = cfg.task.name;
  h.method = method_spelling(cfg.method.name);
  h.metric = data::metric_name(r.task.spec.metric);
  h.split_seed = cfg.task.split_seed;
  h.seed = cfg.cma.seed;
  h.intrinsic_dim = cfg.prompt.intrinsic_dim;
  h.popsize = cfg.cma.lambda(cfg.prompt.intrinsic_dim);
  h.n_train = c.split(Split::kTrain).size();
  h.n_dev = c.split(Split::kDev).size();
  h.n_test = c.split(Split::kTest).size();
  h.device = r.load.device.str();
  h.dtype = std::string(c10::toString(r.load.dtype));
  h.threads_per_rank = r.threads;
  h.train_index = data.train_index;
  h.dev_index = data.dev_index;
  h.train_labels = c.split(Split::kTrain).labels;
  h.dev_labels = c.split(Split::kDev).labels;
  for (const auto& [reason, count] : data.dropped)
    (reason.rfind("train", 0) == 0 ? h.dropped_train : h.dropped_test) += count;
  h.label_ids = r.task.label_ids;
  h.layer_stats = r.layer_stats;
  const auto L = static_cast<std::size_t>(r.model->config().num_hidden_layers);
  const auto n = static_cast<std::size_t>(cfg.prompt.n_tokens);
  const auto H = static_cast<std::size_t>(r.model->config().hidden_size);
  if (!r.layer_stats.empty()) h.deep_prompt_shape = {L, n, H};
  if (cfg.method.name == MethodName::kPromptTuning || cfg.method.name == MethodName::kBbtAdam)
    h.deep_prompt_shape = {n, H};
  if (cfg.method.name == MethodName::kPtuningV2) h.deep_prompt_shape = {L, 2, n, H};
  h.weights_fingerprint = r.model->fingerprint();
  return h;
}

// "weights 498.6 MB, one copy shared by this node's 2 ranks, loaded in 0.41 s"
std::string weights_summary(const Replica& r) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(1) << "weights " << static_cast<double>(r.model->parameter_bytes()) / 1e6
    << " MB, "
    << (r.weight_sharers > 1 ? "one copy shared by this node's " + std::to_string(r.weight_sharers) + " ranks"
                             : "one copy per rank")
    << std::setprecision(2) << ", loaded in " << r.load_seconds << " s";
  return o.str();
}

void log_start(const Run& run) {
  const Replica& r = run.replica;
  const model::BlasInfo blas = model::blas_info();
  const auto& mc = r.model->config();
  run.log << "bbt " << bbt::version() << ": " << run.cluster.size() << " rank(s), " << r.threads
          << " thread(s) per rank, " << r.load.device.str() << " " << c10::toString(r.load.dtype) << ", BLAS "
          << blas.library << (blas.core.empty() ? "" : " (" + blas.core + ")") << "\n"
          << (blas.advice.empty() || !r.load.device.is_cpu() ? "" : "bbt: warning: " + blas.advice + "\n")
          << "model " << run.cfg.model.path << ": " << mc.num_hidden_layers << " layers, hidden "
          << mc.hidden_size << ", " << weights_summary(r)
          << "\n"
          << (r.root->data.summary.empty() ? "" : r.root->data.summary + "\n") << "run file "
          << run.record.path()
          << (run.resumed ? " (resumed at generation " + std::to_string(run.progress.generation) + ")" : "")
          << "\n"
          << "configuration:\n"
          << run.cfg.to_ini() << std::flush;
}

// z = 0 on test first, so every run file shows what tuning gained.
void initial_test(Run& run) {
  const auto logits = run.cluster.evaluate(Split::kTest, Eigen::MatrixXd::Zero(run.method.prompt_dim(), 1));
  const core::Scores zero = run.scorer.score(logits, 0, run.cluster.split(Split::kTest));
  run.progress.initial_test = zero.metric;
  run.record.write_initial_test(zero.metric, zero.loss);
  run.log << "initial prompt (z = 0): test " << data::metric_name(run.replica.task.spec.metric) << " "
          << zero.metric << ", loss " << zero.loss << std::endl;
}

// BBTv2: the kept prompt also dense, so tools need no projection.
void write_dense_prompt(Run& run) {
  const core::Evaluator& ev = run.cluster.evaluator();
  if (!ev.deep()) return;
  const torch::Tensor dense =
      ev.deep_prompt(run.progress.best_z).to(torch::kFloat64).contiguous();  // [L, n, H]
  const double* p = dense.data_ptr<double>();
  run.record.write_best_prompt(std::vector<double>(p, p + dense.numel()));
}

// Dev selection on the step's best candidate; strictly better keeps it. Returns the dev metric.
double select_on_dev(Run& run, const Eigen::VectorXd& candidate, std::int64_t gen_index) {
  Progress& p = run.progress;
  const auto logits = run.cluster.evaluate(Split::kDev, candidate);
  const core::Scores dv = run.scorer.score(logits, 0, run.cluster.split(Split::kDev));
  run.record.append_dev(gen_index, p.api_calls, dv.loss, dv.metric);
  p.dev_rows += 1;
  if (dv.metric > p.best_dev) {
    p.best_dev = dv.metric;
    p.best_generation = gen_index;
    p.best_z = candidate;
    run.record.write_best(p.best_z, p.best_generation, p.best_dev);
    write_dense_prompt(run);
  }
  return dv.metric;
}

void log_progress(const Run& run, const methods::Step& s, double last_dev, double rate) {
  const Progress& p = run.progress;
  std::ostringstream line;
  line << std::fixed << std::setprecision(4) << "gen " << p.generation << " calls " << p.api_calls << "/"
       << run.cfg.cma.budget << " best " << s.losses[s.best] << " mean " << s.mean_loss() << " train_acc "
       << *std::max_element(s.accuracies.begin(), s.accuracies.end()) << " dev " << last_dev;
  if (!s.note.empty()) line << " " << s.note;
  line << std::setprecision(1) << " calls/s " << rate << " eta "
       << format_duration(static_cast<double>(run.cfg.cma.budget - p.api_calls) / rate);
  run.log << line.str() << std::endl;
}

// Consecutive generations in which no candidate had a finite loss before the run is ended.
constexpr std::int64_t kNonFiniteGenerations = 5;

// The loop proper; returns kExitCheckpointed when a stop signal ended it, with the stop reason.
int train_steps(Run& run, std::string& stop_reason) {
  Progress& p = run.progress;
  const std::int64_t budget = run.cfg.cma.budget, n_dev = run.cluster.split(Split::kDev).size();
  double last_dev = p.dev_rows > 0 ? p.best_dev : std::numeric_limits<double>::quiet_NaN();
  const auto t_loop = Clock::now();
  const std::int64_t calls_at_start = p.api_calls;
  std::int64_t nonfinite_run = 0;  // consecutive generations without one finite loss
  stop_reason = "budget";
  // The reference's budget rule: floor(budget / lambda) whole generations, never a partial one.
  const std::int64_t per_step = run.method.candidates_per_step();
  while (p.api_calls + per_step <= budget) {
    if (run.cluster.stop_requested()) {
      run.record.write_checkpoint(run.method, p);
      run.log << "bbt: stop signal received: checkpointed generation " << p.generation
              << "; resume with bbt train --resume " << run.record.path() << std::endl;
      stop_reason = "signal";
      return kExitCheckpointed;
    }
    if (!(stop_reason = run.method.stop_reason()).empty()) return kExitFinished;
    stop_reason = "budget";
    const auto t_gen = Clock::now();
    const methods::Step s = run.method.step(run.cluster, run.scorer);
    const std::int64_t calls_before = p.api_calls, gen_index = p.generation;
    p.api_calls += s.api_calls;
    p.generation += 1;
    const std::int64_t every = run.cfg.eval.every;
    if (n_dev > 0 && run.cfg.eval.select == DevSelect::call) {
      // The reference's serial mode: the candidate evaluated as call k * every (1-based).
      for (std::int64_t k = calls_before / every + 1; k <= p.api_calls / every; ++k)
        last_dev = select_on_dev(run, s.candidates.col(static_cast<Eigen::Index>(k * every - 1 - calls_before)),
                                 gen_index);
    } else if (n_dev > 0 && p.api_calls / every > calls_before / every) {
      last_dev = select_on_dev(run, s.best_prompt, gen_index);
    }
    run.record.append_generation({gen_index, p.api_calls, &s, seconds_since(t_gen)});
    p.elapsed += seconds_since(t_gen);
    if (p.generation % run.cfg.output.checkpoint_every == 0) run.record.write_checkpoint(run.method, p);
    run.record.flush();
    const bool none_finite = std::none_of(s.losses.begin(), s.losses.end(), [](double l) { return std::isfinite(l); });
    nonfinite_run = none_finite ? nonfinite_run + 1 : 0;
    if (nonfinite_run >= kNonFiniteGenerations)
      throw Error("generations " + std::to_string(p.generation - nonfinite_run) + ".." +
                  std::to_string(p.generation - 1) + ": every candidate's loss was NaN or infinite (" +
                  run.record.path() + " keeps them); the model's outputs are unusable: check the weights, " +
                  "prompt.alpha and loss.logit_scale");
    if (p.generation % run.cfg.output.log_every == 0 || p.api_calls + per_step > budget)
      log_progress(run, s, last_dev,
                   static_cast<double>(p.api_calls - calls_at_start) / std::max(1e-9, seconds_since(t_loop)));
  }
  return kExitFinished;
}

// The kept z (best dev metric; the method's final prompt if dev never ran) on the test split.
void final_test(Run& run) {
  Progress& p = run.progress;
  if (p.best_generation < 0) {
    p.best_z = run.method.final_prompt();
    run.record.write_best(p.best_z, p.generation - 1);
    write_dense_prompt(run);
  }
  const std::int64_t n_test = run.cluster.split(Split::kTest).size();
  if (!run.cfg.eval.test || n_test == 0) return;
  const auto logits = run.method.split_logits(run.cluster, Split::kTest, p.best_z);
  const core::Scores ts = run.scorer.score(logits, 0, run.cluster.split(Split::kTest));
  run.record.write_test(ts.metric, ts.loss, ts.accuracy, n_test);
  if (run.method.candidates_per_step() == 0) {
    run.log << "test " << data::metric_name(run.replica.task.spec.metric) << " " << ts.metric << " (dev "
            << p.best_dev << ")" << std::endl;
    return;
  }
  run.log << "test " << data::metric_name(run.replica.task.spec.metric) << " " << ts.metric
          << " (kept z from generation " << p.best_generation << ", dev " << p.best_dev
          << "); initial prompt (z = 0): " << p.initial_test << std::endl;
}

// The resumed run's model against the one it started with (by fingerprint).
void check_resumed_model(const RunConfig& cfg, const Replica& replica, const Checkpoint& checkpoint,
                         const std::vector<ConfigChange>& changes, const std::string& path) {
  const std::string& now = replica.model->fingerprint();
  const bool path_changed = std::any_of(changes.begin(), changes.end(),
                                        [](const ConfigChange& c) { return c.key == "model.path"; });
  if (checkpoint.weights_fingerprint.empty()) {
    // A file from before fingerprints cannot be checked: a moved model is taken on trust, said once.
    if (path_changed)
      std::cerr << "bbt: warning: --resume " << path << ": --model.path " << cfg.model.path
                << " cannot be checked against the run's weights (the file predates weight fingerprints)"
                << std::endl;
    return;
  }
  if (now != checkpoint.weights_fingerprint)
    throw Error("--resume " + path + ": the model at " + cfg.model.path + " holds other weights (fingerprint " +
                now + ") than the run started with (" + checkpoint.weights_fingerprint + ")");
}

// The loop's side of a fit that reports its steps (methods::FitProgress): each step's row goes to
// the run file at once; the method's state is checkpointed every output.checkpoint_every steps and
// on a stop signal, which ends the fit; a progress line every output.log_every steps.
class LoopFitProgress final : public methods::FitProgress {
 public:
  explicit LoopFitProgress(Run& run) : run_(run), elapsed0_(run.progress.elapsed) {}

  bool step_done(const std::vector<std::vector<double>>& row, std::int64_t steps) override {
    Progress& p = run_.progress;
    run_.record.append_own(row);
    p.generation = steps;  // the fit's steps recorded so far (a resume keeps as many rows)
    p.elapsed = elapsed();
    const bool stop = run_.cluster.stop_requested();
    if (stop || steps % run_.cfg.output.checkpoint_every == 0) run_.record.write_checkpoint(run_.method, p);
    run_.record.flush();
    if (steps % run_.cfg.output.log_every == 0) {
      std::ostringstream line;
      line << "step " << steps;
      const auto series = run_.method.series();
      for (std::size_t i = 0; i < series.size() && i < row.size(); ++i)
        if (row[i].size() == 1 && !std::isnan(row[i][0])) line << " " << series[i].name << " " << row[i][0];
      run_.log << line.str() << std::endl;
    }
    if (!stop) return false;
    run_.log << "bbt: stop signal received: checkpointed step " << steps << "; resume with bbt train --resume "
             << run_.record.path() << std::endl;
    return true;
  }
  // Seconds spent in the fit, over all attempts.
  double elapsed() const { return elapsed0_ + seconds_since(t0_); }

 private:
  Run& run_;
  double elapsed0_;
  Clock::time_point t0_ = Clock::now();
};

// A method that takes no steps: its fit (all its training), then its dev score. A stop signal
// before it returns kExitCheckpointed (the run's checkpoint is the fit's start, or for a fit that
// reports its steps the last one checkpointed: a resume continues from there).
int fit_no_steps(Run& run, std::string& stop_reason) {
  Progress& p = run.progress;
  stop_reason = "fitted";
  if (run.cluster.stop_requested()) {
    run.log << "bbt: stop signal received before the fit; resume with bbt train --resume " << run.record.path()
            << std::endl;
    stop_reason = "signal";
    return kExitCheckpointed;
  }
  LoopFitProgress progress(run);
  run.fit = run.method.fit(run.cluster, run.scorer, progress);
  if (run.fit.stopped) {
    stop_reason = "signal";
    return kExitCheckpointed;
  }
  p.api_calls += run.fit.api_calls;
  if (run.fit.z.size() > 0) p.best_z = run.fit.z;  // a subspace method's kept z: /best/z, as BBT's
  run.record.write_fit(run.fit);
  if (!run.fit.prompt.empty()) run.record.write_best_prompt(run.fit.prompt);
  if (!run.fit.summary.empty()) run.log << run.fit.summary << std::endl;
  if (run.cluster.split(Split::kDev).size() > 0) {
    const auto logits = run.method.split_logits(run.cluster, Split::kDev, p.best_z);
    const core::Scores dv = run.scorer.score(logits, 0, run.cluster.split(Split::kDev));
    run.record.append_dev(0, p.api_calls, dv.loss, dv.metric);
    p.dev_rows = 1;
    p.best_dev = dv.metric;
    p.best_generation = 0;
    run.record.write_best(p.best_z, 0, dv.metric);
    run.log << "dev " << data::metric_name(run.replica.task.spec.metric) << " " << dv.metric << ", loss "
            << dv.loss << std::endl;
  }
  p.generation = 1;
  p.elapsed = progress.elapsed();
  run.record.flush();
  return kExitFinished;
}

// The cost columns (the paper's Table 4) for every method; `memory`: Cluster::peak_memory().
void write_costs(Run& run, const std::vector<double>& memory) {
  const methods::Method& m = run.method;
  RunRecord::Costs c;
  c.user_bytes = run.fit.user_bytes;
  c.bytes_up = run.fit.bytes_up;
  c.bytes_down = run.fit.bytes_down;
  c.tuned_parameters = run.fit.tuned_parameters;
  if (m.candidates_per_step() > 0) {
    // A prompt method's user side is its optimiser state; a query is one candidate over train:
    // its z out, K logits per example back; its tuned parameters are the subspace's.
    c.user_bytes = 0;
    for (const auto& [name, a] : m.state()) c.user_bytes += 8.0 * static_cast<double>(a.size());
    c.bytes_up = 8.0 * m.prompt_dim();
    c.bytes_down = 4.0 * static_cast<double>(run.replica.task.label_ids.size()) *
                   static_cast<double>(run.cluster.split(Split::kTrain).size());
    c.tuned_parameters = m.prompt_dim();
  }
  c.server_bytes = static_cast<double>(run.replica.model->parameter_bytes());
  c.api_calls = run.progress.api_calls;
  for (std::size_t r = 0; 3 * r + 2 < memory.size(); ++r) {
    c.peak_rss.push_back(memory[3 * r]);
    c.peak_device.push_back(memory[3 * r + 1]);
    c.pss.push_back(memory[3 * r + 2]);
  }
  run.record.write_costs(c);
}

// Rank 0 of `bbt train`, from a built replica to the exit code.
int train_root(RunConfig& cfg, Replica& replica, const TrainArgs& args, const std::string& command_line,
               const std::vector<ConfigChange>& changes) {
  cluster::Cluster& cl = *replica.cluster;
  const auto t_start = Clock::now();
  std::unique_ptr<methods::Method> method = make_method(cfg, replica);
  const bool steps = method->candidates_per_step() > 0;
  bool resumed = !args.resume.empty();
  Checkpoint checkpoint;
  if (resumed) {
    checkpoint = read_checkpoint(args.resume, *method);
    if (checkpoint.finished) {
      std::cout << "bbt: " << args.resume << " has already finished; nothing to resume" << std::endl;
      cl.finish(kExitFinished);
      return kExitFinished;
    }
    if (checkpoint.none) {
      // A failed start: nothing to continue; run again from its configuration, keeping the file aside.
      const std::string aside = io::set_aside(args.resume);
      std::cout << "bbt: " << args.resume << " holds no checkpoint (a failed start); kept as " << aside
                << ", starting afresh with its configuration" << std::endl;
      resumed = false;
      checkpoint = Checkpoint{};
    } else {
      check_resumed_model(cfg, replica, checkpoint, changes, args.resume);
      if (!checkpoint.warning.empty()) std::cerr << "bbt: warning: " << checkpoint.warning << std::endl;
    }
  }
  if (!resumed) checkpoint.progress.best_z = Eigen::VectorXd::Zero(method->prompt_dim());
  std::optional<RunRecord> record;
  if (resumed) {
    std::string line = command_line;
    for (std::size_t i = 0; i < changes.size(); ++i)
      line += (i ? ", " : " (changed: ") + changes[i].key + " " + changes[i].before + " -> " + changes[i].after +
              (i + 1 == changes.size() ? ")" : "");
    record.emplace(RunRecord::resume(args.resume, checkpoint, *method, line, changes.empty() ? "" : cfg.to_ini()));
    for (const auto& c : changes)
      std::cout << "resume changes " << c.key << ": " << c.before << " -> " << c.after << "\n";
  } else {
    bool created_dir = false;
    const std::string path = args.resume.empty() ? new_run_path(cfg, created_dir) : args.resume;
    RunHeader header = make_header(cfg, replica, command_line, cl.size());
    try {
      record.emplace(RunRecord::create(path, header, *method));
    } catch (...) {
      remove_failed_start(path, created_dir);
      throw;
    }
  }
  Run run{cfg,  replica, cl, *method, make_scorer(cfg, replica.task), std::move(*record), checkpoint.progress,
          resumed};
  log_start(run);
  // A method with a prompt vector (BBT, BBTv2, BBT-Adam) scores z = 0 on test first; a no-step
  // method's checkpoint (what a resume fits again from) comes after it, so a resumed run has it too.
  if (method->prompt_dim() > 0 && !resumed && cfg.eval.test && cl.split(Split::kTest).size() > 0) initial_test(run);
  if (!steps && !resumed) run.record.write_checkpoint(*method, run.progress);  // what a resume starts from
  std::string stop_reason;
  if ((steps ? train_steps(run, stop_reason) : fit_no_steps(run, stop_reason)) == kExitCheckpointed) {
    cl.finish(kExitCheckpointed);
    run.record.close();
    return kExitCheckpointed;
  }
  if (steps) run.record.write_checkpoint(*method, run.progress);
  final_test(run);
  const std::vector<double> memory = cl.peak_memory();
  cl.finish(kExitFinished);
  write_costs(run, memory);
  run.record.finish(stop_reason == "fitted" ? "budget" : stop_reason, run.progress.elapsed);
  run.log << "finished: " << run.progress.api_calls << " API calls in "
          << format_duration(seconds_since(t_start)) << " (" << stop_reason << "); run file "
          << run.record.path() << std::endl;
  return kExitFinished;
}

int train_job(cluster::MpiSession& mpi, const TrainArgs& args, const std::string& command_line,
              const cluster::ServeHooks& hooks) {
  // The configuration: parsed by every rank from the same text (a resumed run's stored text).
  RunConfig cfg = args.config;
  std::vector<ConfigChange> changes;
  if (!args.resume.empty()) {
    std::string text;
    if (mpi.rank() == 0) {
      try {
        text = read_config_text(args.resume);
      } catch (const Error& e) {
        if (!std::filesystem::exists(args.resume)) throw;  // no file: nothing to keep aside
        throw Error(std::string(e.what()) +
                    "; if the run never started, run the command that created it again (it keeps this file aside)");
      }
    }
    cluster::broadcast(text, 0);
    const std::string origin = args.resume + ":/config";
    cfg = parse_config_text(text, origin, args.overrides);
    cfg.validate();
    // Rank 0 alone judges the overrides (one error line); the others are ended by its MPI_Abort.
    // A run that never wrote a checkpoint starts afresh (train_root), so any override goes.
    if (mpi.rank() == 0 && !never_checkpointed(args.resume))
      changes = resume_changes(parse_config_text(text, origin), cfg, args.resume);
  }
  if (mpi.rank() == 0) check_memory(cfg);
  const std::unique_ptr<Replica> replica = build_replica(mpi, cfg, args.resume);
  if (mpi.rank() != 0) return replica->cluster->serve(hooks);
  return train_root(cfg, *replica, args, command_line, changes);
}

// Prompt tuning's initial prompt: prompt.init_file (the evaluator's p0), else n rows sampled from
// the vocabulary (Lester et al.'s "sampled vocab" initialisation) as the embedding layer outputs them.
// P-tuning v2's prefix: N(0, s^2), s the std of the word embeddings.
std::vector<double> initial_parameters(const RunConfig& cfg, const Replica& replica) {
  const model::Roberta& m = *replica.model;
  const std::int64_t n = cfg.prompt.n_tokens, H = m.config().hidden_size, L = m.config().num_hidden_layers;
  Rng rng(derive_seed(static_cast<std::uint64_t>(cfg.optim.seed), 17));
  torch::Tensor t;
  if (cfg.method.name == MethodName::kPtuningV2) {
    std::vector<double> v(static_cast<std::size_t>(L * 2 * n * H));
    for (double& x : v) x = rng.normal() * m.word_embedding_std();
    return v;
  }
  const torch::Tensor& p0 = replica.cluster->evaluator().p0();
  if (p0.defined()) {
    t = p0;
  } else {
    std::vector<std::int64_t> ids;
    const auto V = static_cast<std::uint64_t>(m.config().vocab_size);
    for (std::int64_t i = 0; i < n; ++i) ids.push_back(4 + static_cast<std::int64_t>(rng.next_u64() % (V - 5)));
    t = m.token_rows(ids);
  }
  t = t.to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

// The [optim] settings every gradient-based method shares; lr (0: the method's default) is the caller's.
methods::TuningOptions tuning_options(const RunConfig& cfg) {
  methods::TuningOptions o;
  o.weight_decay = cfg.optim.weight_decay;
  o.max_grad_norm = cfg.optim.max_grad_norm;
  o.steps = cfg.optim.steps;
  o.warmup_steps = cfg.optim.warmup_steps;
  o.eval_every = cfg.eval.every;
  o.patience = cfg.optim.patience;
  o.batch_size = cfg.optim.batch_size;
  o.chunk_rows = cfg.optim.chunk_rows;
  o.seed = static_cast<std::uint64_t>(cfg.optim.seed);
  return o;
}

// BBT-Adam: BBT's z (from 0, as CMA-ES's mean), its A and p0 in every rank's evaluator; the loss
// is BBT's ce (the other loss types are refused: neg_acc has no gradient, hinge is not supported).
std::unique_ptr<methods::Method> make_bbt_adam(const RunConfig& cfg) {
  if (cfg.loss.type != core::LossType::ce)
    throw UsageError("method.name = bbt_adam follows the gradient of the cross-entropy: it needs loss.type = ce (got " +
                     core::loss_type_name(cfg.loss.type) + ")");
  methods::TuningOptions o = tuning_options(cfg);
  o.kind = core::Tuned::kSubspace;
  o.init.assign(static_cast<std::size_t>(cfg.prompt.intrinsic_dim), 0.0);
  o.lr = cfg.optim.lr > 0 ? cfg.optim.lr : 0.1;
  o.logit_scale = cfg.loss.logit_scale;
  o.count_dev_calls = false;  // BBT's rule: an API call is a train query
  return std::make_unique<methods::PromptTuning>(o);
}

std::unique_ptr<methods::Method> make_tuning(const RunConfig& cfg, const Replica& replica) {
  if (cfg.method.name == MethodName::kBbtAdam) return make_bbt_adam(cfg);
  const bool prefix = cfg.method.name == MethodName::kPtuningV2;
  const bool weights = cfg.method.name == MethodName::kModelTuning;
  if (weights && !cfg.prompt.init_file.empty())
    throw UsageError("method.name = model_tuning takes no prompt.init_file (it trains the weights, with no prompt rows)");
  if (weights && replica.load.dtype != torch::kFloat32)
    throw UsageError("method.name = model_tuning trains float32 weights: model.dtype resolves to " +
                     std::string(c10::toString(replica.load.dtype)) + " (set model.dtype = float32)");
  if (!prefix && !weights && cfg.prompt.mode != model::PromptMode::kCat)
    throw UsageError("method.name = prompt_tuning puts its soft prompt in front of the input: it needs prompt.mode = cat");
  if (prefix && !cfg.prompt.init_file.empty())
    throw UsageError("method.name = ptuning_v2 takes no prompt.init_file (it tunes per-layer prefixes)");
  methods::TuningOptions o = tuning_options(cfg);
  o.kind = weights ? core::Tuned::kWeights : prefix ? core::Tuned::kPrefix : core::Tuned::kPrompt;
  if (!weights) o.init = initial_parameters(cfg, replica);
  o.lr = cfg.optim.lr > 0 ? cfg.optim.lr : weights ? 1e-5 : prefix ? 0.01 : 0.3;
  if (!weights) return std::make_unique<methods::PromptTuning>(o);
  o.weights_size = core::WeightTuner::size_of(*replica.model);
  return std::make_unique<methods::PromptTuning>(o, replica.cluster.get());
}

}  // namespace

std::unique_ptr<methods::Method> make_method(const RunConfig& cfg, const Replica& replica) {
  const cluster::Cluster& cl = *replica.cluster;
  const model::RobertaConfig& mc = replica.model->config();
  switch (cfg.method.name) {
    case MethodName::kBbt:
    case MethodName::kBbtv2:
      break;
    case MethodName::kManual:
      return std::make_unique<methods::Manual>();
    case MethodName::kIcl: {
      const std::int64_t positions = mc.max_position_embeddings - mc.pad_token_id - 1;
      return std::make_unique<methods::Icl>(
          cfg.icl.demonstrations, static_cast<std::uint64_t>(cfg.icl.seed), replica.task.label_ids,
          static_cast<std::size_t>(std::min<std::int64_t>(positions, data::kMaxSequenceLength)),
          cl.split(cluster::Split::kDev).size(), cl.split(cluster::Split::kTest).size());
    }
    case MethodName::kFeatureMlp:
    case MethodName::kFeatureBilstm: {
      methods::ClassifierOptions c;
      c.head = cfg.method.name == MethodName::kFeatureMlp ? methods::FeatureHead::kMlp : methods::FeatureHead::kBilstm;
      c.hidden = cfg.classifier.hidden;
      c.epochs = cfg.classifier.epochs;
      c.patience = cfg.classifier.patience;
      c.lr = cfg.classifier.lr;
      c.weight_decay = cfg.classifier.weight_decay;
      c.seed = static_cast<std::uint64_t>(cfg.classifier.seed);
      c.hidden_size = mc.hidden_size;
      c.num_labels = static_cast<std::int64_t>(replica.task.label_ids.size());
      return std::make_unique<methods::FeatureClassifier>(c);
    }
    case MethodName::kPromptTuning:
    case MethodName::kPtuningV2:
    case MethodName::kBbtAdam:
    case MethodName::kModelTuning:
      return make_tuning(cfg, replica);
  }
  const int threads = replica.threads;
  es::CmaOptions o;
  o.dim = cfg.prompt.intrinsic_dim;
  o.popsize = cfg.cma.lambda(o.dim);
  o.sigma0 = cfg.cma.sigma0;
  o.x0 = Eigen::VectorXd::Zero(o.dim);
  o.seed = static_cast<std::uint64_t>(cfg.cma.seed);
  if (cfg.cma.bound > 0) {
    o.lower = -cfg.cma.bound;
    o.upper = cfg.cma.bound;
  }
  o.covariance = cfg.cma.covariance;
  o.active = cfg.cma.active;
  o.stop = cfg.cma.stop;
  o.threads = threads;  // the rank's share of the cores (the bits do not depend on it)
  if (cfg.method.name == MethodName::kBbtv2) {
    // Divide and conquer: whole rounds of one generation per layer, as the reference counts them.
    const auto L = static_cast<long>(mc.num_hidden_layers);
    const long rounds = cfg.cma.budget / (static_cast<long>(o.popsize) * L);
    if (rounds < 1)
      throw UsageError("method.name = bbtv2: cma.budget = " + std::to_string(cfg.cma.budget) +
                       " is less than one round (cma.popsize x " + std::to_string(L) +
                       " layers = " + std::to_string(o.popsize * L) + " API calls)");
    return std::make_unique<methods::Bbtv2>(o, static_cast<int>(L), rounds);
  }
  // The budget is counted in API calls by the loop; CMA-ES's own stop rules end the run only
  // under cma.stop = pycma. A resumed run keeps the update its checkpoint was made with.
  return std::make_unique<methods::Bbt>(o);
}

// The session outlives the handlers: an error must reach MPI_Abort, not MPI_Finalize (which
// would wait forever for the ranks still running).
int run_in_mpi(const std::function<int(cluster::MpiSession&)>& job) {
  int rank = cluster::launcher_rank();
  std::unique_ptr<cluster::MpiSession> mpi;
  try {
    mpi = std::make_unique<cluster::MpiSession>(nullptr, nullptr);
    rank = mpi->rank();
    return job(*mpi);
  } catch (const UsageError& e) {
    cluster::abort_job("bbt: error: rank " + std::to_string(rank) + ": " + e.what(), kExitUsage);
  } catch (const std::exception& e) {
    cluster::abort_job("bbt: error: rank " + std::to_string(rank) + ": " + e.what(), kExitFailed);
  }
}

int run_train(const TrainArgs& args, const std::string& command_line, const cluster::ServeHooks& hooks) {
  cluster::install_stop_signals();
  return run_in_mpi([&](cluster::MpiSession& mpi) { return train_job(mpi, args, command_line, hooks); });
}

}  // namespace bbt::app
