#include "bbt/app/run_record.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fstream>
#include <map>

#include "bbt/common/error.hpp"
#include "bbt/common/version.hpp"
#include "bbt/es/cma.hpp"

namespace bbt::app {
namespace {

constexpr const char* kSlots[2] = {"/checkpoint/slot0", "/checkpoint/slot1"};
constexpr const char* kSlotInts[] = {"generation", "api_calls", "dev_rows", "best_generation"};

std::string iso_time() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

std::string slot_path(int slot, const std::string& name) { return std::string(kSlots[slot]) + "/" + name; }

io::RunFileLayout& add_header(io::RunFileLayout& layout, const RunHeader& h) {
  return layout.int_attr("format_version", 1)
      .string_attr(schema::kConfig, h.config_ini)
      .string_attr(schema::kCommandLine, h.command_line)
      .int_attr(schema::kNRanks, h.n_ranks)
      .string_attr("started_at", iso_time())
      .string_attr("model_path", h.model_path)
      .string_attr("git_describe", bbt::git_describe())
      .string_attr("bbt_version", bbt::version())
      .string_attr(schema::kTask, h.task)
      .string_attr(schema::kMethod, h.method)
      .string_attr(schema::kMetric, h.metric)
      .int_attr(schema::kSplitSeed, h.split_seed)
      .int_attr(schema::kSeed, h.seed)
      .int_attr("intrinsic_dim", h.intrinsic_dim)
      .int_attr("popsize", h.popsize)
      .int_attr("n_train", h.n_train)
      .int_attr("n_dev", h.n_dev)
      .int_attr("n_test", h.n_test)
      .string_attr("device", h.device)
      .string_attr("dtype", h.dtype)
      .int_attr("threads_per_rank", h.threads_per_rank)
      .string_attr(schema::kWeightsFingerprint, h.weights_fingerprint)
      .string_attr(schema::kResumes, "")
      .string_attr(schema::kStopReasons, schema::stop_reasons_text());
}

void add_step_series(io::RunFileLayout& layout, std::size_t lambda, std::size_t ranks);

void add_series(io::RunFileLayout& layout, const RunHeader& h, const methods::Method& method) {
  using io::DType;
  const std::size_t lambda = static_cast<std::size_t>(method.candidates_per_step());
  const std::size_t ranks = static_cast<std::size_t>(h.n_ranks);
  if (lambda > 0) add_step_series(layout, lambda, ranks);
  layout.add_series(schema::kDevGeneration, DType::kInt64)
      .add_series(schema::kDevApiCalls, DType::kInt64)
      .add_series(schema::kDevLoss, DType::kFloat64)
      .add_series(schema::kDevMetric, DType::kFloat64);
  for (const auto& s : method.series()) {
    std::vector<std::size_t> row;
    if (s.width > 0) row.push_back(s.width);
    layout.add_series(schema::train_series(s.name), s.integer ? DType::kInt64 : DType::kFloat64, row);
  }
}

// The loop's per-step series (methods that take steps).
void add_step_series(io::RunFileLayout& layout, std::size_t lambda, std::size_t ranks) {
  using io::DType;
  layout.add_series(schema::kTrainGeneration, DType::kInt64)
      .add_series(schema::kTrainApiCalls, DType::kInt64)
      .add_series(schema::kTrainLoss, DType::kFloat64, {lambda})
      .add_series(schema::kTrainAccuracy, DType::kFloat64, {lambda})
      .add_series(schema::kTrainBestLoss, DType::kFloat64)
      .add_series(schema::kTrainMeanLoss, DType::kFloat64)
      .add_series(schema::kTrainBestAccuracy, DType::kFloat64)
      .add_series(schema::kTrainSecondsForward, DType::kFloat64)
      .add_series(schema::kTrainSecondsComm, DType::kFloat64)
      .add_series(schema::kTrainSecondsTotal, DType::kFloat64)
      .add_series(schema::kTrainBytesSent, DType::kFloat64, {ranks})
      .add_series(schema::kTrainBytesReceived, DType::kFloat64, {ranks})
      .add_series(schema::kTrainSecondsForwardRanks, DType::kFloat64, {ranks})
      .add_series(schema::kTrainSecondsCommRanks, DType::kFloat64, {ranks});
}

void add_fixed(io::RunFileLayout& layout, const RunHeader& h, const methods::Method& method) {
  using io::DType;
  const std::size_t d = static_cast<std::size_t>(method.prompt_dim());
  if (d > 0) layout.add_fixed(schema::kBestZ, DType::kFloat64, {d});
  layout.add_fixed(schema::kBestGeneration, DType::kInt64)
      .add_fixed(schema::kBestDevMetric, DType::kFloat64)
      .add_fixed(schema::kTestMetric, DType::kFloat64)
      .add_fixed(schema::kTestLoss, DType::kFloat64)
      .add_fixed(schema::kTestAccuracy, DType::kFloat64)
      .add_fixed(schema::kTestNExamples, DType::kInt64)
      .add_fixed(schema::kTestInitialMetric, DType::kFloat64)
      .add_fixed(schema::kTestInitialLoss, DType::kFloat64)
      .add_fixed("/data/train_index", DType::kInt64, {h.train_index.size()})
      .add_fixed("/data/dev_index", DType::kInt64, {h.dev_index.size()})
      .add_fixed("/data/train_labels", DType::kInt64, {h.train_labels.size()})
      .add_fixed("/data/dev_labels", DType::kInt64, {h.dev_labels.size()})
      .add_fixed("/data/dropped_train_rows", DType::kInt64)
      .add_fixed("/data/dropped_test_rows", DType::kInt64)
      .add_fixed("/data/label_ids", DType::kInt64, {h.label_ids.size()})
      .add_fixed(schema::kRunFinished, DType::kInt64)
      .add_fixed(schema::kRunStopReason, DType::kInt64)
      .add_fixed(schema::kRunSecondsTotal, DType::kFloat64)
      .add_fixed(schema::kCostUserBytes, DType::kFloat64)
      .add_fixed(schema::kCostServerBytes, DType::kFloat64)
      .add_fixed(schema::kCostBytesUp, DType::kFloat64)
      .add_fixed(schema::kCostBytesDown, DType::kFloat64)
      .add_fixed(schema::kCostApiCalls, DType::kInt64)
      .add_fixed(schema::kCostBytesUpTotal, DType::kFloat64)
      .add_fixed(schema::kCostBytesDownTotal, DType::kFloat64)
      .add_fixed(schema::kCostTunedParameters, DType::kInt64)
      .add_fixed(schema::kCostPeakRss, DType::kFloat64, {static_cast<std::size_t>(h.n_ranks)})
      .add_fixed(schema::kCostPeakDevice, DType::kFloat64, {static_cast<std::size_t>(h.n_ranks)})
      .add_fixed(schema::kCostPss, DType::kFloat64, {static_cast<std::size_t>(h.n_ranks)});
  for (const auto& a : method.arrays())
    if (std::find(a.shape.begin(), a.shape.end(), std::size_t{0}) == a.shape.end())  // none of 0 rows
      layout.add_fixed(schema::method_array(a.name), DType::kInt64, a.shape);
  if (!h.layer_stats.empty())
    layout.add_fixed(schema::kLayerStats, DType::kFloat64, {h.layer_stats.size() / 2, 2});
  if (!h.deep_prompt_shape.empty()) layout.add_fixed(schema::kBestPrompt, DType::kFloat64, h.deep_prompt_shape);
  const std::string group = method.state_group();
  for (int slot : {0, 1}) {
    for (const auto& [name, m] : method.state())
      layout.add_fixed(slot_path(slot, group + "/" + name), DType::kFloat64,
                       {static_cast<std::size_t>(m.rows()), static_cast<std::size_t>(m.cols())});
    for (const auto& [name, n] : method.float_state_sizes())
      layout.add_fixed(slot_path(slot, group + "/" + name), DType::kFloat32, {n});
    for (const char* name : kSlotInts) layout.add_fixed(slot_path(slot, name), DType::kInt64);
    layout.add_fixed(slot_path(slot, "best_dev_metric"), DType::kFloat64);
    layout.add_fixed(slot_path(slot, "elapsed_seconds"), DType::kFloat64);
    if (d > 0) layout.add_fixed(slot_path(slot, "best_z"), DType::kFloat64, {d});
  }
  layout.add_fixed(schema::kCheckpointLatest, DType::kInt64);
  layout.add_fixed(schema::kCheckpointGeneration, DType::kInt64);
}

// `values` resized to `n` (zeros added, or cut): per-rank series keep the width of the run's
// first attempt, whatever rank count a resume uses.
std::vector<double> ranks_wide(std::vector<double> values, std::size_t n) {
  values.resize(n, 0.0);
  return values;
}

}  // namespace

namespace schema {

const std::vector<std::string>& stop_reasons() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out = {"budget", "stopped"};
    for (const std::string& name : es::Cma::stop_reason_names())
      if (!name.empty()) out.push_back(name);
    return out;
  }();
  return names;
}

std::int64_t stop_reason_code(const std::string& reason) {
  const auto& names = stop_reasons();
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == reason) return static_cast<std::int64_t>(i);
  return 1;
}

std::string stop_reasons_text() {
  std::string text;
  for (const std::string& name : stop_reasons()) text += (text.empty() ? "" : ",") + name;
  return text;
}

std::vector<std::pair<std::string, std::string>> paths() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* p : {kTrainGeneration,
                        kTrainApiCalls,
                        kTrainLoss,
                        kTrainAccuracy,
                        kTrainBestLoss,
                        kTrainMeanLoss,
                        kTrainBestAccuracy,
                        kTrainSecondsForward,
                        kTrainSecondsComm,
                        kTrainSecondsTotal,
                        kTrainBytesSent,
                        kTrainBytesReceived,
                        kTrainSecondsForwardRanks,
                        kTrainSecondsCommRanks,
                        kDevGeneration,
                        kDevApiCalls,
                        kDevLoss,
                        kDevMetric,
                        kBestZ,
                        kBestGeneration,
                        kBestDevMetric,
                        kBestPrompt,
                        kLayerStats,
                        kTestMetric,
                        kTestLoss,
                        kTestAccuracy,
                        kTestNExamples,
                        kTestInitialMetric,
                        kTestInitialLoss,
                        kRunFinished,
                        kRunStopReason,
                        kRunSecondsTotal,
                        kCostUserBytes,
                        kCostServerBytes,
                        kCostBytesUp,
                        kCostBytesDown,
                        kCostApiCalls,
                        kCostBytesUpTotal,
                        kCostBytesDownTotal,
                        kCostTunedParameters,
                        kCostPeakRss,
                        kCostPeakDevice,
                        kCostPss,
                        kCheckpointLatest,
                        kCheckpointGeneration}) {
    std::string key = std::string(p + 1);
    for (char& c : key)
      if (c == '/') c = '_';
    out.emplace_back(key, p);
  }
  for (const char* a : {kConfig, kNRanks, kTask, kMetric, kSplitSeed, kSeed, kCommandLine, kWeightsFingerprint, kResumes, kMethod})
    out.emplace_back("attr_" + std::string(a), a);
  return out;
}

std::string train_series(const std::string& name) { return std::string(kTrain) + "/" + name; }

std::string method_array(const std::string& name) { return "/method/" + name; }

}  // namespace schema

RunRecord::RunRecord(io::RunFileWriter writer, std::vector<methods::SeriesSpec> own, std::size_t ranks,
                     int slot)
    : writer_(std::move(writer)), own_(std::move(own)), ranks_(ranks), slot_(slot) {}

RunRecord RunRecord::create(const std::string& path, const RunHeader& h, const methods::Method& method) {
  io::RunFileLayout layout;
  add_header(layout, h);
  add_series(layout, h, method);
  add_fixed(layout, h, method);
  io::RunFileWriter w = io::RunFileWriter::create(path, layout);
  w.write("/data/train_index", h.train_index);
  w.write("/data/dev_index", h.dev_index);
  w.write("/data/train_labels", h.train_labels);
  w.write("/data/dev_labels", h.dev_labels);
  w.write("/data/dropped_train_rows", h.dropped_train);
  w.write("/data/dropped_test_rows", h.dropped_test);
  w.write("/data/label_ids", h.label_ids);
  w.write(schema::kRunFinished, std::int64_t{0});
  if (!h.layer_stats.empty()) w.write(schema::kLayerStats, h.layer_stats);
  w.flush();
  return RunRecord(std::move(w), method.series(), static_cast<std::size_t>(h.n_ranks), 0);
}

RunRecord RunRecord::resume(const std::string& path, const Checkpoint& c, const methods::Method& method,
                            const std::string& resume_line, const std::string& config_ini) {
  std::vector<std::pair<std::string, std::string>> attrs = {
      {schema::kResumes, c.resumes + (c.resumes.empty() ? "" : "\n") + iso_time() + " at generation " +
                             std::to_string(c.progress.generation) + ": " + resume_line}};
  if (!config_ini.empty()) attrs.emplace_back(schema::kConfig, config_ini);
  std::map<std::string, long> keep{{schema::kDev, c.progress.dev_rows}};
  if (method.candidates_per_step() > 0 || !method.series().empty()) keep[schema::kTrain] = c.progress.generation;
  io::RunFileWriter w = io::RunFileWriter::open_for_resume(path, keep, attrs);
  return RunRecord(std::move(w), method.series(), static_cast<std::size_t>(c.file_ranks), c.slot);
}

void RunRecord::write_initial_test(double metric, double loss) {
  writer_.write(schema::kTestInitialMetric, metric);
  writer_.write(schema::kTestInitialLoss, loss);
  writer_.flush();
}

void RunRecord::append_generation(const GenerationRow& row) {
  const methods::Step& s = *row.step;
  writer_.append(schema::kTrainGeneration, row.generation);
  writer_.append(schema::kTrainApiCalls, row.api_calls);
  writer_.append(schema::kTrainLoss, s.losses);
  writer_.append(schema::kTrainAccuracy, s.accuracies);
  writer_.append(schema::kTrainBestLoss, s.losses[s.best]);
  writer_.append(schema::kTrainMeanLoss, s.mean_loss());
  writer_.append(schema::kTrainBestAccuracy, *std::max_element(s.accuracies.begin(), s.accuracies.end()));
  writer_.append(schema::kTrainSecondsForward, s.costs.forward);
  writer_.append(schema::kTrainSecondsComm, s.costs.comm);
  writer_.append(schema::kTrainSecondsTotal, row.seconds_total);
  writer_.append(schema::kTrainBytesSent, ranks_wide(s.costs.bytes_sent, ranks_));
  writer_.append(schema::kTrainBytesReceived, ranks_wide(s.costs.bytes_received, ranks_));
  if (writer_.has_series(
          schema::kTrainSecondsCommRanks)) {  // run files written before these existed lack them
    writer_.append(schema::kTrainSecondsForwardRanks, ranks_wide(s.costs.rank_forward, ranks_));
    writer_.append(schema::kTrainSecondsCommRanks, ranks_wide(s.costs.rank_comm, ranks_));
  }
  for (std::size_t i = 0; i < own_.size(); ++i) {
    const std::string path = schema::train_series(own_[i].name);
    if (own_[i].integer) {
      std::vector<std::int64_t> v(s.own.at(i).begin(), s.own.at(i).end());
      writer_.append(path, v);
    } else {
      writer_.append(path, s.own.at(i));
    }
  }
}

void RunRecord::append_dev(std::int64_t generation, std::int64_t api_calls, double loss, double metric) {
  writer_.append(schema::kDevGeneration, generation);
  writer_.append(schema::kDevApiCalls, api_calls);
  writer_.append(schema::kDevLoss, loss);
  writer_.append(schema::kDevMetric, metric);
}

void RunRecord::write_best(const Eigen::VectorXd& z, std::int64_t generation, double dev_metric) {
  write_best(z, generation);
  writer_.write(schema::kBestDevMetric, dev_metric);
}

void RunRecord::write_best(const Eigen::VectorXd& z, std::int64_t generation) {
  if (z.size() > 0) writer_.write(schema::kBestZ, z.data(), static_cast<std::size_t>(z.size()));
  writer_.write(schema::kBestGeneration, generation);
}

void RunRecord::write_best_prompt(const std::vector<double>& dense) {
  writer_.write(schema::kBestPrompt, dense);
}

void RunRecord::write_checkpoint(const methods::Method& method, const Progress& p) {
  slot_ = 1 - slot_;
  const std::string group = method.state_group();
  for (const auto& [name, m] : method.state()) {
    // Column-major Eigen -> row-major dataset.
    const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rm = m;
    writer_.write(slot_path(slot_, group + "/" + name), rm.data(), static_cast<std::size_t>(rm.size()));
  }
  for (const auto& [name, n] : method.float_state_sizes()) {
    const std::vector<float> values = method.float_state(name);  // one array at a time (model tuning: large)
    if (!values.empty()) writer_.write(slot_path(slot_, group + "/" + name), values.data(), values.size());
  }
  writer_.write(slot_path(slot_, "generation"), p.generation);
  writer_.write(slot_path(slot_, "api_calls"), p.api_calls);
  writer_.write(slot_path(slot_, "dev_rows"), p.dev_rows);
  writer_.write(slot_path(slot_, "best_generation"), p.best_generation);
  writer_.write(slot_path(slot_, "best_dev_metric"), p.best_dev);
  writer_.write(slot_path(slot_, "elapsed_seconds"), p.elapsed);
  if (p.best_z.size() > 0)
    writer_.write(slot_path(slot_, "best_z"), p.best_z.data(), static_cast<std::size_t>(p.best_z.size()));
  writer_.flush();  // the slot is complete on disk before it is named the latest
  writer_.write(schema::kCheckpointLatest, static_cast<std::int64_t>(slot_));
  writer_.write(schema::kCheckpointGeneration, p.generation);
  writer_.flush();
}

void RunRecord::write_test(double metric, double loss, double accuracy, std::int64_t n_examples) {
  writer_.write(schema::kTestMetric, metric);
  writer_.write(schema::kTestLoss, loss);
  writer_.write(schema::kTestAccuracy, accuracy);
  writer_.write(schema::kTestNExamples, n_examples);
}

void RunRecord::append_own(const std::vector<std::vector<double>>& row) {
  for (std::size_t i = 0; i < own_.size(); ++i) {
    const std::string path = schema::train_series(own_[i].name);
    if (own_[i].integer) {
      writer_.append(path, std::vector<std::int64_t>(row.at(i).begin(), row.at(i).end()));
    } else {
      writer_.append(path, row.at(i));
    }
  }
}

void RunRecord::write_fit(const methods::Fit& fit) {
  for (const auto& row : fit.rows) append_own(row);
  for (const auto& [name, values] : fit.arrays)
    if (!values.empty()) writer_.write(schema::method_array(name), values);
}

void RunRecord::write_costs(const Costs& c) {
  if (!writer_.has_fixed(schema::kCostUserBytes)) return;  // run files written before these existed
  writer_.write(schema::kCostUserBytes, c.user_bytes);
  writer_.write(schema::kCostServerBytes, c.server_bytes);
  writer_.write(schema::kCostBytesUp, c.bytes_up);
  writer_.write(schema::kCostBytesDown, c.bytes_down);
  if (!writer_.has_fixed(schema::kCostPeakRss)) return;  // files from before the totals and memory
  writer_.write(schema::kCostApiCalls, c.api_calls);
  writer_.write(schema::kCostBytesUpTotal, c.bytes_up * static_cast<double>(c.api_calls));
  writer_.write(schema::kCostBytesDownTotal, c.bytes_down * static_cast<double>(c.api_calls));
  writer_.write(schema::kCostTunedParameters, c.tuned_parameters);
  writer_.write(schema::kCostPeakRss, ranks_wide(c.peak_rss, ranks_));
  writer_.write(schema::kCostPeakDevice, ranks_wide(c.peak_device, ranks_));
  if (writer_.has_fixed(schema::kCostPss)) writer_.write(schema::kCostPss, ranks_wide(c.pss, ranks_));
}

void RunRecord::finish(const std::string& stop_reason, double seconds) {
  writer_.write(schema::kRunFinished, std::int64_t{1});
  writer_.write(schema::kRunStopReason, schema::stop_reason_code(stop_reason));
  writer_.write(schema::kRunSecondsTotal, seconds);
  writer_.close();
}

std::string read_config_text(const std::string& path) {
  return io::RunFileReader(path).string_attribute(schema::kConfig);
}

namespace {

// Reads slot `slot` into `out` and restores `method` from it; throws bbt::Error saying what is wrong.
void read_slot(const io::RunFileReader& r, int slot, methods::Method& method, Checkpoint& out) {
  Progress p;
  p.generation = r.read_int64_scalar(slot_path(slot, "generation"));
  if (p.generation < 0) throw Error("never written");
  p.api_calls = r.read_int64_scalar(slot_path(slot, "api_calls"));
  p.dev_rows = r.read_int64_scalar(slot_path(slot, "dev_rows"));
  p.best_generation = r.read_int64_scalar(slot_path(slot, "best_generation"));
  p.best_dev = r.read_double_scalar(slot_path(slot, "best_dev_metric"));
  p.elapsed = r.read_double_scalar(slot_path(slot, "elapsed_seconds"));
  if (r.exists(schema::kTestInitialMetric)) p.initial_test = r.read_double_scalar(schema::kTestInitialMetric);
  if (r.exists(slot_path(slot, "best_z"))) {  // methods that tune no prompt keep none
    const io::Array<double> z = r.read_double(slot_path(slot, "best_z"));
    p.best_z = Eigen::Map<const Eigen::VectorXd>(z.values.data(), static_cast<Eigen::Index>(z.values.size()));
  }
  const std::string at = "generation " + std::to_string(p.generation) + ": ";
  // Counters against the series the file holds.
  // Methods that take no steps have no /train/generation: their generation counts the steps of
  // their fit recorded in their own series (0: the checkpoint is the fit's start).
  const bool stepped = r.exists(schema::kTrainGeneration);
  const std::vector<methods::SeriesSpec> own = method.series();
  const std::string rows_of = stepped ? schema::kTrainGeneration : own.empty() ? "" : schema::train_series(own[0].name);
  const std::int64_t train_rows =
      !rows_of.empty() && r.exists(rows_of) ? static_cast<std::int64_t>(r.shape(rows_of).at(0)) : 0;
  const std::int64_t dev_rows = static_cast<std::int64_t>(r.shape(schema::kDevGeneration).at(0));
  if (p.generation > train_rows)
    throw Error(at + "the file holds only " + std::to_string(train_rows) + " generations");
  if (p.dev_rows < 0 || p.dev_rows > dev_rows)
    throw Error(at + "dev_rows " + std::to_string(p.dev_rows) + " outside 0.." + std::to_string(dev_rows));
  const std::int64_t calls = p.generation == 0 || !stepped
                                ? 0
                                : r.read_int64(schema::kTrainApiCalls).values.at(static_cast<std::size_t>(p.generation - 1));
  if (p.api_calls != calls)
    throw Error(at + "api_calls " + std::to_string(p.api_calls) + " but /train/api_calls says " + std::to_string(calls));
  if (p.best_generation < -1 || p.best_generation >= std::max<std::int64_t>(p.generation, 1))
    throw Error(at + "best_generation " + std::to_string(p.best_generation) + " out of range");
  if (!std::isfinite(p.elapsed) || p.elapsed < 0) throw Error(at + "elapsed_seconds is not a time");
  if (std::isnan(p.best_dev) || (p.best_generation >= 0 && !std::isfinite(p.best_dev)))
    throw Error(at + "best_dev_metric is not a number");
  if (!p.best_z.allFinite()) throw Error(at + "best_z holds non-finite values");
  if (p.best_z.size() != method.prompt_dim())
    throw Error(at + "best_z has " + std::to_string(p.best_z.size()) + " values, not " +
                std::to_string(method.prompt_dim()));
  // The method's state: its names and shapes, then the method's own checks in restore().
  const std::string prefix = slot_path(slot, method.state_group() + "/");
  methods::StateArrays state;
  for (const auto& name : r.datasets()) {
    if (name.rfind(prefix, 0) != 0) continue;
    if (r.dtype(name) == io::DType::kFloat32) continue;  // float_state(): read by the method's restore
    const io::Array<double> a = r.read_double(name);
    const Eigen::Index rows = a.shape.size() > 0 ? static_cast<Eigen::Index>(a.shape[0]) : 1;
    const Eigen::Index cols = a.shape.size() > 1 ? static_cast<Eigen::Index>(a.shape[1]) : 1;
    Eigen::MatrixXd m = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
        a.values.data(), rows, cols);
    state.emplace_back(name.substr(prefix.size()), std::move(m));
  }
  try {
    method.restore(state);
    method.restore_float_state([&](const std::string& name) { return r.read_float(prefix + name).values; });
  } catch (const Error& e) {
    throw Error(at + e.what());
  }
  out.progress = std::move(p);
  out.slot = slot;
}

}  // namespace

Checkpoint read_checkpoint(const std::string& path, methods::Method& method) {
  io::RunFileReader r(path);
  Checkpoint out;
  out.file_ranks = static_cast<int>(r.int_attribute(schema::kNRanks));
  if (r.exists(schema::kRunFinished) && r.read_int64_scalar(schema::kRunFinished) == 1) {
    out.finished = true;
    return out;
  }
  if (r.has_attribute(schema::kWeightsFingerprint))
    out.weights_fingerprint = r.string_attribute(schema::kWeightsFingerprint);
  if (r.has_attribute(schema::kResumes)) out.resumes = r.string_attribute(schema::kResumes);
  const std::int64_t latest = r.exists(schema::kCheckpointLatest) ? r.read_int64_scalar(schema::kCheckpointLatest) : -1;
  std::string problems;
  if (latest != 0 && latest != 1) {
    if (latest == -1 && r.read_int64_scalar(slot_path(0, "generation")) < 0 &&
        r.read_int64_scalar(slot_path(1, "generation")) < 0) {
      out.none = true;
      return out;
    }
    problems = std::string(schema::kCheckpointLatest) + " is " + std::to_string(latest) + " (expected 0 or 1)";
  }
  const int first = latest == 1 ? 1 : 0;
  for (int slot : {first, 1 - first}) {
    try {
      read_slot(r, slot, method, out);
      if (!problems.empty())
        out.warning = path + ": " + problems + "; resuming from " + kSlots[slot] + " (generation " +
                      std::to_string(out.progress.generation) + ")";
      return out;
    } catch (const Error& e) {
      problems += (problems.empty() ? "" : "; ") + std::string(kSlots[slot]) +
                  (slot == latest ? " (the latest)" : "") + ": " + e.what();
    }
  }
  throw Error(path + ": no usable checkpoint to resume from: " + problems);
}

std::vector<double> read_layer_stats(const std::string& path) {
  const io::RunFileReader r(path);
  if (!r.exists(schema::kLayerStats)) return {};
  return r.read_double(schema::kLayerStats).values;
}

std::vector<double> read_kept_prompt(const std::string& path) {
  std::vector<double> z = io::RunFileReader(path).read_double(schema::kBestZ).values;
  for (double v : z)
    if (std::isnan(v)) throw Error(path + ": /best/z is not written yet (no dev evaluation so far)");
  return z;
}

std::vector<double> read_dense_prompt(const std::string& path, std::vector<std::size_t>& shape) {
  const io::RunFileReader r(path);
  if (!r.exists(schema::kBestPrompt))
    throw Error(path + ": holds no " + std::string(schema::kBestPrompt) + " (a prompt_tuning run file has one)");
  shape = r.shape(schema::kBestPrompt);
  std::vector<double> p = r.read_double(schema::kBestPrompt).values;
  for (double v : p)
    if (!std::isfinite(v))
      throw Error(path + ": " + std::string(schema::kBestPrompt) + " is not written yet or not finite (has the run finished?)");
  return p;
}

bool never_checkpointed(const std::string& path) {
  const io::RunFileReader r(path);
  if (r.exists(schema::kRunFinished) && r.read_int64_scalar(schema::kRunFinished) == 1) return false;
  const std::int64_t latest = r.exists(schema::kCheckpointLatest) ? r.read_int64_scalar(schema::kCheckpointLatest) : -1;
  return latest == -1 && r.read_int64_scalar(slot_path(0, "generation")) < 0 &&
         r.read_int64_scalar(slot_path(1, "generation")) < 0;
}

std::string run_state(const std::string& path) {
  if (!std::ifstream(path).good()) return "none";
  const io::RunFileReader r(path);
  if (r.exists(schema::kRunFinished) && r.read_int64_scalar(schema::kRunFinished) == 1) return "finished";
  if (!r.exists(schema::kCheckpointLatest)) return "partial";
  const std::int64_t slot = r.read_int64_scalar(schema::kCheckpointLatest);
  return slot == 0 || slot == 1 ? "checkpoint" : "partial";
}

}  // namespace bbt::app
