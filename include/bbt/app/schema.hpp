#pragma once
// The run file's schema: every path and root attribute a run file has is named here and nowhere
// else (checkpoint slots are the run record's, src/app/run_record.cpp). The run record writes
// them; resume, `bbt eval` and `bbt report` read them; tools/plot_run.py takes the names
// `bbt report --schema` prints (tests/cli/plot_run.sh checks it uses no other).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace bbt::app {

namespace schema {
// Root attributes.
inline constexpr const char* kConfig = "config";
inline constexpr const char* kNRanks = "n_ranks";
inline constexpr const char* kTask = "task";
inline constexpr const char* kMetric = "metric";
inline constexpr const char* kSplitSeed = "split_seed";
inline constexpr const char* kSeed = "seed";
inline constexpr const char* kCommandLine = "command_line";
// 16 hex digits identifying the weights the run started with (model::Roberta::fingerprint()).
inline constexpr const char* kWeightsFingerprint = "weights_fingerprint";
// One line per resume: time, generation, its command line and the configuration keys it changed
// (the "config" attribute then holds the configuration the run continues with).
inline constexpr const char* kResumes = "resumes";
// The names of /run/stop_reason's codes, comma-separated (files from before it: 0 budget, 1 stopped).
inline constexpr const char* kStopReasons = "stop_reasons";
inline constexpr const char* kMethod = "method";  // method.name's spelling; absent in older files: bbt
// Per-generation series.
inline constexpr const char* kTrain = "/train";
inline constexpr const char* kTrainGeneration = "/train/generation";
inline constexpr const char* kTrainApiCalls = "/train/api_calls";
inline constexpr const char* kTrainLoss = "/train/loss";
inline constexpr const char* kTrainAccuracy = "/train/accuracy";
inline constexpr const char* kTrainBestLoss = "/train/best_loss";
inline constexpr const char* kTrainMeanLoss = "/train/mean_loss";
inline constexpr const char* kTrainBestAccuracy = "/train/best_accuracy";
inline constexpr const char* kTrainSecondsForward = "/train/seconds_forward";
inline constexpr const char* kTrainSecondsComm = "/train/seconds_comm";
inline constexpr const char* kTrainSecondsTotal = "/train/seconds_total";
inline constexpr const char* kTrainBytesSent = "/train/bytes_sent";
inline constexpr const char* kTrainBytesReceived = "/train/bytes_received";
inline constexpr const char* kTrainSecondsForwardRanks = "/train/seconds_forward_ranks";
inline constexpr const char* kTrainSecondsCommRanks = "/train/seconds_comm_ranks";
// Dev selection.
inline constexpr const char* kDev = "/dev";
inline constexpr const char* kDevGeneration = "/dev/generation";
inline constexpr const char* kDevApiCalls = "/dev/api_calls";
inline constexpr const char* kDevLoss = "/dev/loss";
inline constexpr const char* kDevMetric = "/dev/metric";
inline constexpr const char* kBestZ = "/best/z";
inline constexpr const char* kBestGeneration = "/best/generation";
inline constexpr const char* kBestDevMetric = "/best/dev_metric";
// BBTv2: the kept deep prompt, dense [L, n, H] (tools need no projection; /best/z holds its L z's
// end to end), and the (mean, std) per layer the projections A_l were scaled by [L, 2].
inline constexpr const char* kBestPrompt = "/best/prompt";
inline constexpr const char* kLayerStats = "/bbtv2/layer_stats";
// Test pass.
inline constexpr const char* kTestMetric = "/test/metric";
inline constexpr const char* kTestLoss = "/test/loss";
inline constexpr const char* kTestAccuracy = "/test/accuracy";
inline constexpr const char* kTestNExamples = "/test/n_examples";
inline constexpr const char* kTestInitialMetric = "/test/initial_metric";
inline constexpr const char* kTestInitialLoss = "/test/initial_loss";
// The run's end.
inline constexpr const char* kRunFinished = "/run/finished";
inline constexpr const char* kRunStopReason = "/run/stop_reason";
inline constexpr const char* kRunSecondsTotal = "/run/seconds_total";
// The paper's cost columns (Table 4), every method: wall time is /run/seconds_total.
inline constexpr const char* kCostUserBytes = "/cost/user_bytes";      // rank 0's own model and optimiser
inline constexpr const char* kCostServerBytes = "/cost/server_bytes";  // one model replica (per rank)
inline constexpr const char* kCostBytesUp = "/cost/bytes_up_per_query";
inline constexpr const char* kCostBytesDown = "/cost/bytes_down_per_query";
inline constexpr const char* kCostApiCalls = "/cost/api_calls";                // queries spent (int64)
inline constexpr const char* kCostBytesUpTotal = "/cost/bytes_up_total";      // per query x api_calls
inline constexpr const char* kCostBytesDownTotal = "/cost/bytes_down_total";
inline constexpr const char* kCostTunedParameters = "/cost/tuned_parameters";  // int64
// Per rank (the width of the run's first attempt): the process's peak resident set and the peak
// device memory its CUDA allocator reserved (0 on CPU), in bytes, of the attempt that finished.
inline constexpr const char* kCostPeakRss = "/cost/peak_rss_bytes";
inline constexpr const char* kCostPeakDevice = "/cost/peak_device_bytes";
// Per rank: the process's proportional set size at the run's end (/proc/self/smaps_rollup; 0 where
// unknown): pages shared with other processes divided among them, so a node's ranks add up to what
// they use together (the weights that the ranks of a node share count once). Absent in older files.
inline constexpr const char* kCostPss = "/cost/pss_bytes";
// Checkpoints: two alternating slots; /checkpoint/latest names the last complete one.
inline constexpr const char* kCheckpointLatest = "/checkpoint/latest";
inline constexpr const char* kCheckpointGeneration = "/checkpoint/generation";
// /run/stop_reason's codes: 0 "budget" (spent), 1 "stopped" (a method's stop of unnamed
// reason: what files written before the codes hold), then CMA-ES's reasons in
// es::Cma::stop_reason_names() order (2 max_evaluations, 3 max_generations, 4 tolfun, 5 tolx,
// 6 tolconditioncov, 7 tolflatfitness, 8 tolfunhist, 9 tolupsigma, 10 tolstagnation,
// 11 noeffectaxis, 12 noeffectcoord, 13 tolfacupx); append only.
const std::vector<std::string>& stop_reasons();
std::int64_t stop_reason_code(const std::string& reason);  // 1 for a name not in the table
std::string stop_reasons_text();                            // the root attribute's text
// Every path above, with a short key, for tools outside C++ (`bbt report --schema`).
std::vector<std::pair<std::string, std::string>> paths();
// A method's own series (methods::SeriesSpec::name) -> its path.
std::string train_series(const std::string& name);
// A method's own fixed array (methods::ArraySpec::name) -> its path.
std::string method_array(const std::string& name);
}  // namespace schema

}  // namespace bbt::app
