#pragma once
// The run file's one owner (with app/schema.hpp, its names): the loop writes through RunRecord;
// resume, `bbt eval` and `bbt report --state` read through the functions below.
#include <Eigen/Core>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "bbt/app/schema.hpp"
#include "bbt/io/run_file.hpp"
#include "bbt/methods/method.hpp"

namespace bbt::app {

// Everything besides the method's state that a resumed run needs to continue exactly.
struct Progress {
  std::int64_t generation = 0, api_calls = 0, dev_rows = 0;
  double best_dev = -std::numeric_limits<double>::infinity();
  std::int64_t best_generation = -1;
  Eigen::VectorXd best_z;
  double elapsed = 0;  // seconds spent in generations, over all attempts
  double initial_test = std::numeric_limits<double>::quiet_NaN();  // test metric of z = 0
};

// What the run file says about the run at its start (root attributes and /data).
struct RunHeader {
  std::string config_ini, command_line, model_path, task, metric, device, dtype, weights_fingerprint;
  std::string method = "bbt";
  std::int64_t n_ranks = 1, split_seed = 0, seed = 0, intrinsic_dim = 0, popsize = 0, threads_per_rank = 1;
  std::int64_t n_train = 0, n_dev = 0, n_test = 0;
  std::vector<std::int64_t> train_index, dev_index, train_labels, dev_labels, label_ids;
  std::int64_t dropped_train = 0, dropped_test = 0;
  // BBTv2: [L, 2] row-major (schema::kLayerStats); the dense kept prompt's shape (/best/prompt):
  // BBTv2 {L, n, H}, prompt_tuning {n, H}, ptuning_v2 {L, 2, n, H}; empty: none.
  std::vector<double> layer_stats;
  std::vector<std::size_t> deep_prompt_shape;
};

// One generation's row: the loop's series and the method's own (methods::Step::own).
struct GenerationRow {
  std::int64_t generation = 0, api_calls = 0;
  const methods::Step* step = nullptr;
  double seconds_total = 0;
};

// A checkpoint as read back for resume.
struct Checkpoint {
  Progress progress;
  int slot = 0;
  bool finished = false;
  bool none = false;   // the run never wrote a checkpoint (a failed start)
  int file_ranks = 0;  // width of the per-rank series (the rank count the run started with)
  std::string weights_fingerprint;  // empty in files written before it was recorded
  std::string resumes;              // the run file's resume history (schema::kResumes), or empty
  std::string warning;              // set when the latest slot was damaged and the other one is used
};

// Rank 0's writer of one run file. Datasets are declared at creation (HDF5 SWMR allows no new
// objects later): the method's series and state shapes come from the method.
class RunRecord {
 public:
  static RunRecord create(const std::string& path, const RunHeader& header, const methods::Method& method);
  // Reopens a run file at its checkpoint: series are cut back to the checkpoint's rows.
  // `resume_line` is appended to the file's resume history; a non-empty `config_ini` replaces
  // the stored configuration (a resume that changed allowed keys).
  static RunRecord resume(const std::string& path, const Checkpoint& checkpoint, const methods::Method& method,
                          const std::string& resume_line, const std::string& config_ini);

  const std::string& path() const { return writer_.path(); }
  void write_initial_test(double metric, double loss);
  void append_generation(const GenerationRow& row);
  void append_dev(std::int64_t generation, std::int64_t api_calls, double loss, double metric);
  void write_best(const Eigen::VectorXd& z, std::int64_t generation, double dev_metric);
  void write_best(const Eigen::VectorXd& z, std::int64_t generation);  // no dev metric (never ran)
  // BBTv2: the kept prompt, dense (float32 values, [L, n, H] as declared in the header).
  void write_best_prompt(const std::vector<double>& dense);
  // Writes the other slot, then names it the latest (a kill in between leaves the older valid).
  void write_checkpoint(const methods::Method& method, const Progress& progress);
  void write_test(double metric, double loss, double accuracy, std::int64_t n_examples);
  // A no-step method's fit: its per-epoch rows of its own series and its fixed arrays.
  void write_fit(const methods::Fit& fit);
  // One row of the method's own series (a fit that reports its steps: methods::FitProgress).
  void append_own(const std::vector<std::vector<double>>& row);
  // The paper's cost columns (Table 4) at the run's end.
  struct Costs {
    double user_bytes = 0, server_bytes = 0;  // rank 0's own model and optimiser; one replica
    double bytes_up = 0, bytes_down = 0;      // per query, over all ranks
    std::int64_t api_calls = 0, tuned_parameters = 0;
    std::vector<double> peak_rss, peak_device, pss;  // per rank
  };
  void write_costs(const Costs& costs);
  // Marks the run finished; `stop_reason` ("budget" or the method's reason) goes to
  // /run/stop_reason as its code in schema::stop_reasons().
  void finish(const std::string& stop_reason, double seconds);
  void flush() { writer_.flush(); }
  void close() { writer_.close(); }

 private:
  RunRecord(io::RunFileWriter writer, std::vector<methods::SeriesSpec> own, std::size_t ranks, int slot);

  io::RunFileWriter writer_;
  std::vector<methods::SeriesSpec> own_;
  std::size_t ranks_;  // width of the per-rank series
  int slot_;           // the slot written last
};

// Readers (also of a file a job is writing, or one a killed job left).
std::string read_config_text(const std::string& path);
// The checkpoint a resume continues from, restored into `method`; or finished = true, or none =
// true (no checkpoint was ever written). A slot is used only when it passes every check (finite
// values, shapes, counters against the series, the method's own checks: for CMA-ES a symmetric
// positive covariance); the latest slot first, else the other one (with a warning); when neither
// passes, one error naming both reasons.
Checkpoint read_checkpoint(const std::string& path, methods::Method& method);
// BBTv2's layer statistics ([L, 2] row-major); empty when the file has none.
std::vector<double> read_layer_stats(const std::string& path);
// The kept prompt (/best/z); an error naming the file when no dev evaluation wrote it yet.
std::vector<double> read_kept_prompt(const std::string& path);
// The dense kept prompt /best/prompt of a finished run (prompt_tuning: [n, H]) and its shape;
// throws naming the file when it has none or it is not written (a run still training).
std::vector<double> read_dense_prompt(const std::string& path, std::vector<std::size_t>& shape);
// True when the run neither finished nor ever wrote a checkpoint slot (a failed start).
bool never_checkpointed(const std::string& path);
// "none" (no file), "partial" (no usable checkpoint), "checkpoint" or "finished": what a job
// script does with a run file.
std::string run_state(const std::string& path);

}  // namespace bbt::app
