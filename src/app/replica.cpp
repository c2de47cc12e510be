#include "bbt/app/replica.hpp"

#include <chrono>
#include <cmath>
#include <thread>

#include "bbt/app/run_record.hpp"
#include "bbt/cluster/node_weights.hpp"
#include "bbt/common/error.hpp"
#include "bbt/common/rng.hpp"
#include "bbt/model/npy.hpp"
#include "bbt/model/projection.hpp"

namespace bbt::app {
namespace {

torch::Device pick_device(const RunConfig& cfg, const cluster::MpiSession& mpi) {
  const bool cuda = torch::cuda::is_available();
  if (cfg.model.device == torch::kCUDA && !cuda)
    throw UsageError("model.device = cuda but no CUDA device is available on this node");
  if (cfg.model.device == torch::kCPU || !cuda) return torch::kCPU;
  const int n = static_cast<int>(torch::cuda::device_count());
  return torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(mpi.local_rank() % n));
}

torch::ScalarType pick_dtype(const RunConfig& cfg, const torch::Device& device) {
  if (cfg.model.dtype == model::Dtype::kF32) return torch::kFloat32;
  if (cfg.model.dtype == model::Dtype::kF16) return torch::kFloat16;
  if (cfg.model.dtype == model::Dtype::kBF16) return torch::kBFloat16;
  return device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
}

// p0 from a .npy, a .safetensors or a bbt run file (.h5: its kept dense prompt /best/prompt, as a
// prompt_tuning run writes it: the pre-trained prompt of the paper's §3.4).
torch::Tensor read_p0(const std::string& path, std::int64_t n, std::int64_t H) {
  const bool h5 = path.size() >= 3 && path.compare(path.size() - 3, 3, ".h5") == 0;
  if (!h5) return model::read_prompt_file(path, n, H);
  std::vector<std::size_t> shape;
  std::vector<double> p = read_dense_prompt(path, shape);
  if (shape.size() != 2 || static_cast<std::int64_t>(shape[0]) != n || static_cast<std::int64_t>(shape[1]) != H) {
    std::string s;
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    throw UsageError("prompt.init_file " + path + ": /best/prompt is [" + s + "], expected [" + std::to_string(n) +
                     ", " + std::to_string(H) + "] (prompt.n_tokens, hidden size): a prompt_tuning run's");
  }
  return torch::from_blob(p.data(), {n, H}, torch::kFloat64).to(torch::kFloat32).clone();
}

// The projection A and (cat mode) p0, as every rank regenerates them from the seed.
std::unique_ptr<core::Evaluator> make_evaluator(const RunConfig& cfg, const Replica& r) {
  const int d = cfg.prompt.intrinsic_dim;
  const model::ProjectionKind kind = cfg.prompt.projection;
  const double sigma =
      cfg.prompt.alpha * r.model->word_embedding_std() / (std::sqrt(double(d)) * cfg.cma.sigma0);
  model::Projection projection(d, cfg.prompt.n_tokens, r.model->config().hidden_size, kind, sigma,
                               derive_seed(static_cast<std::uint64_t>(cfg.cma.seed), 1), r.load.device,
                               r.load.dtype);
  torch::Tensor p0;
  const model::PromptMode mode = cfg.prompt.mode;
  if (!cfg.prompt.init_file.empty()) {
    if (mode != model::PromptMode::kCat) throw UsageError("prompt.init_file (p0) is used in cat mode only");
    p0 = read_p0(cfg.prompt.init_file, cfg.prompt.n_tokens, r.model->config().hidden_size);
  }
  return std::make_unique<core::Evaluator>(*r.model, std::move(projection), p0, r.task.label_ids, mode,
                                           r.load.max_batch);
}

// BBTv2's projections: A_0 is BBT's A; A_l (l >= 1) N(0, (alpha s_l / (sqrt(d) sigma0))^2) from
// the layer's statistics s_l, each from its own seed (uniform: every A_l U(+-1/sqrt(d))).
std::vector<model::Projection> deep_projections(const RunConfig& cfg, const Replica& r) {
  const int d = cfg.prompt.intrinsic_dim;
  std::vector<model::Projection> out{r.evaluator->projection()};
  const std::size_t L = r.layer_stats.size() / 2;
  for (std::size_t l = 1; l < L; ++l) {
    const double sigma =
        cfg.prompt.alpha * r.layer_stats[2 * l + 1] / (std::sqrt(double(d)) * cfg.cma.sigma0);
    out.emplace_back(d, cfg.prompt.n_tokens, r.model->config().hidden_size, cfg.prompt.projection, sigma,
                     derive_seed(static_cast<std::uint64_t>(cfg.cma.seed), 1000 + l), r.load.device,
                     r.load.dtype);
  }
  return out;
}

// Collective, BBTv2: the layer statistics (read from run_file on rank 0, or measured), then the
// deep projections in every rank's evaluator.
void prepare_deep(const RunConfig& cfg, Replica& r, const std::string& run_file) {
  const std::int64_t L = r.model->config().num_hidden_layers;
  if (r.root && !run_file.empty()) r.layer_stats = read_layer_stats(run_file);
  std::int64_t have = static_cast<std::int64_t>(r.layer_stats.size());
  cluster::broadcast(have, 0);
  if (have > 0) {
    cluster::broadcast(r.layer_stats, 0);
  } else {
    r.layer_stats = {0.0, r.model->word_embedding_std()};
    for (const core::LayerStats& s : r.cluster->layer_input_stats())
      r.layer_stats.insert(r.layer_stats.end(), {s.mean, s.stddev});
  }
  if (static_cast<std::int64_t>(r.layer_stats.size()) != 2 * L)
    throw Error("run file " + run_file + ": layer statistics for " +
                std::to_string(r.layer_stats.size() / 2) + " layers, the model has " + std::to_string(L));
  r.evaluator->set_deep(deep_projections(cfg, r));
}

// Every rank against rank 0: the configuration (but model.path and model.threads, which may
// differ per node) and the fingerprint of the weights loaded. A difference ends the job in one line
// naming the ranks and, for the configuration, the first key that differs.
void check_ranks_agree(const cluster::MpiSession& mpi, const RunConfig& cfg, const std::string& fingerprint) {
  if (mpi.size() == 1) return;
  const auto& table = config_key_table();
  std::string mine;
  for (const auto& k : table)
    if (k.name != "model.path" && k.name != "model.threads") mine += k.name + "=" + k.print(cfg) + '\0';
  std::string theirs = mine + fingerprint;
  cluster::broadcast(theirs, 0);
  std::vector<double> verdict = {-1, 0};  // index of the first key that differs; weights differ
  std::size_t at = 0;
  for (std::size_t i = 0; i < table.size() && verdict[0] < 0; ++i) {
    if (table[i].name == "model.path" || table[i].name == "model.threads") continue;
    const std::string entry = table[i].name + "=" + table[i].print(cfg) + '\0';
    if (theirs.compare(at, entry.size(), entry) != 0) verdict[0] = static_cast<double>(i);
    at += entry.size();
  }
  if (verdict[0] < 0) verdict[1] = theirs.compare(mine.size(), std::string::npos, fingerprint) != 0 ? 1 : 0;
  const std::vector<double> all = cluster::gather_fixed(verdict, 0);
  if (mpi.rank() != 0) return;
  std::string config_ranks, weight_ranks;
  for (int r = 1; r < mpi.size(); ++r) {
    const double key = all[2 * static_cast<std::size_t>(r)], weights = all[2 * static_cast<std::size_t>(r) + 1];
    if (key >= 0) {
      const ConfigKey& k = table[static_cast<std::size_t>(key)];
      config_ranks += std::string(config_ranks.empty() ? "" : ", ") + "rank " + std::to_string(r) +
                      " differs from rank 0 in " + k.name + " (rank 0: " + k.print(cfg) + ")";
    } else if (weights != 0) {
      weight_ranks += std::string(weight_ranks.empty() ? "" : ", ") + "rank " + std::to_string(r);
    }
  }
  if (!config_ranks.empty())
    throw UsageError("ranks disagree on the configuration: " + config_ranks +
                     "; start every rank with the same configuration");
  if (!weight_ranks.empty())
    throw Error("ranks disagree on the model: " + weight_ranks + " loaded other weights than rank 0 (" +
                cfg.model.path + ", fingerprint " + fingerprint + "); every rank needs the same model");
}

}  // namespace

core::Scorer make_scorer(const RunConfig& cfg, const TaskInfo& task) {
  return core::Scorer({cfg.loss.type, cfg.loss.margin, cfg.loss.logit_scale}, task.spec.metric,
                      task.spec.f1_positive, task.label_ids.size());
}

std::unique_ptr<Replica> build_replica(cluster::MpiSession& mpi, const RunConfig& cfg,
                                       const std::string& run_file) {
  const bool root = mpi.rank() == 0;
  auto r = std::make_unique<Replica>();
  r->threads = cfg.model.threads > 0 ? cfg.model.threads : mpi.cpus_per_rank();
  at::set_num_threads(r->threads);
  r->load.device = pick_device(cfg, mpi);
  r->load.dtype = pick_dtype(cfg, r->load.device);
  r->load.max_batch = cfg.eval.batch_size > 0 ? cfg.eval.batch_size : (r->load.device.is_cuda() ? 1024 : 64);
  // On CPU the node's ranks share one copy of the weights (collective over the node).
  const auto t_load = std::chrono::steady_clock::now();
  r->load.shared = cluster::node_shared_weights(
      mpi, r->load.device.is_cpu() && r->load.dtype == torch::kFloat32, cfg.model.path);
  r->model = std::make_unique<model::Roberta>(model::Roberta::load(cfg.model.path, r->load));
  r->load.shared.reset();
  r->weight_sharers = r->model->shares_weights() ? mpi.local_size() : 1;
  r->load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
  check_ranks_agree(mpi, cfg, r->model->fingerprint());

  // Rank 0 resolves the task (tokenizer) and tells the others the verbalizer ids.
  if (root) {
    r->root = std::make_unique<RootTask>();
    r->root->tokenizer = std::make_unique<text::Tokenizer>(text::Tokenizer::load(cfg.model.path));
    r->task = resolve_task(cfg, *r->root->tokenizer);
  }
  cluster::broadcast(r->task.label_ids, 0);
  r->evaluator = make_evaluator(cfg, *r);

  // Rank 0 reads (or generates) the data; the cluster gives every rank the token ids.
  cluster::Splits splits;
  if (root) {
    r->root->data = prepare_task_data(cfg, r->task, *r->root->tokenizer, *r->evaluator);
    splits = {r->root->data.train, r->root->data.dev, r->root->data.test};
  }
  const bool deep = cfg.method.name == MethodName::kBbtv2;
  if (deep && cfg.prompt.mode != model::PromptMode::kAdd)
    throw UsageError(
        "method.name = bbtv2 adds its deep prompt to every layer's input: it needs prompt.mode = add");
  const int dim =
      cfg.prompt.intrinsic_dim * (deep ? static_cast<int>(r->model->config().num_hidden_layers) : 1);
  r->cluster = std::make_unique<cluster::Cluster>(mpi, *r->evaluator, std::move(splits), dim);
  if (deep) prepare_deep(cfg, *r, run_file);
  return r;
}

}  // namespace bbt::app
