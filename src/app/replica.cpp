#include "bbt/app/replica.hpp"

#include <cmath>
#include <thread>

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
    p0 = model::read_prompt_file(cfg.prompt.init_file, cfg.prompt.n_tokens, r.model->config().hidden_size);
  }
  return std::make_unique<core::Evaluator>(*r.model, std::move(projection), p0, r.task.label_ids, mode,
                                           r.load.max_batch);
}

}  // namespace

core::Scorer make_scorer(const RunConfig& cfg, const TaskInfo& task) {
  return core::Scorer({cfg.loss.type, cfg.loss.margin, cfg.loss.logit_scale}, task.spec.metric,
                      task.spec.f1_positive, task.label_ids.size());
}

std::unique_ptr<Replica> build_replica(cluster::MpiSession& mpi, const RunConfig& cfg) {
  const bool root = mpi.rank() == 0;
  auto r = std::make_unique<Replica>();
  r->threads = cfg.model.threads > 0
                   ? cfg.model.threads
                   : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / mpi.local_size());
  at::set_num_threads(r->threads);
  r->load.device = pick_device(cfg, mpi);
  r->load.dtype = pick_dtype(cfg, r->load.device);
  r->load.max_batch = cfg.eval.batch_size > 0 ? cfg.eval.batch_size : (r->load.device.is_cuda() ? 1024 : 64);
  r->model = std::make_unique<model::Roberta>(model::Roberta::load(cfg.model.path, r->load));

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
  r->cluster =
      std::make_unique<cluster::Cluster>(mpi, *r->evaluator, std::move(splits), cfg.prompt.intrinsic_dim);
  return r;
}

}  // namespace bbt::app
