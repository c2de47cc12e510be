#pragma once
// What every rank builds before a job: its model replica and evaluator, and the cluster over
// the run's tokenized examples. Rank 0 also resolves the task and reads (or generates) the data.
#include <torch/torch.h>

#include <memory>

#include "bbt/cluster/cluster.hpp"
#include "bbt/core/evaluator.hpp"
#include "bbt/core/scorer.hpp"
#include "bbt/app/task_data.hpp"
#include "bbt/app/config.hpp"
#include "bbt/model/roberta.hpp"
#include "bbt/text/tokenizer.hpp"

namespace bbt::app {

// Rank 0's view of the task: its spec and the data as read, before it is broadcast.
struct RootTask {
  std::unique_ptr<text::Tokenizer> tokenizer;
  TaskData data;
};

struct Replica {
  int threads = 1;
  model::LoadOptions load;
  std::unique_ptr<model::Roberta> model;
  TaskInfo task;  // label_ids on every rank; spec on rank 0
  std::unique_ptr<core::Evaluator> evaluator;
  std::unique_ptr<cluster::Cluster> cluster;
  std::unique_ptr<RootTask> root;  // rank 0 only
};

// The loss and metric the run scores candidates with.
core::Scorer make_scorer(const RunConfig& config, const TaskInfo& task);

// Collective: builds this rank's replica from the validated configuration.
std::unique_ptr<Replica> build_replica(cluster::MpiSession& mpi, const RunConfig& config);

}  // namespace bbt::app
