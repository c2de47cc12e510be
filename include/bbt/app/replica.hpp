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
  // Ranks of this node reading this rank's copy of the weights (1: its own; on CPU with several
  // ranks on a node they share one, cluster::node_shared_weights); seconds the load took.
  int weight_sharers = 1;
  double load_seconds = 0;
  TaskInfo task;  // label_ids on every rank; spec on rank 0
  std::unique_ptr<core::Evaluator> evaluator;
  std::unique_ptr<cluster::Cluster> cluster;
  std::unique_ptr<RootTask> root;  // rank 0 only
  // BBTv2: (mean, std) per layer, row l = the scale of A_l: row 0 is (0, std of the word
  // embeddings), rows 1..L-1 the clipped statistics of that layer's input. Empty for BBT.
  std::vector<double> layer_stats;
};

// The loss and metric the run scores candidates with.
core::Scorer make_scorer(const RunConfig& config, const TaskInfo& task);

// Collective: builds this rank's replica from the validated configuration. BBTv2: the layer
// statistics are read from `run_file` (rank 0) when given, else measured on the train split.
std::unique_ptr<Replica> build_replica(cluster::MpiSession& mpi, const RunConfig& config,
                                       const std::string& run_file = "");

}  // namespace bbt::app
