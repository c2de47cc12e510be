// `bbt eval`: the kept prompt of a run file, re-scored on its test split (or another file) or dev.
#include <iostream>
#include <nlohmann/json.hpp>

#include "bbt/app/job.hpp"
#include "bbt/app/replica.hpp"
#include "bbt/app/run_record.hpp"
#include "bbt/common/error.hpp"

namespace bbt::app {
namespace {

int eval_job(cluster::MpiSession& mpi, const EvalArgs& args) {
  const bool root = mpi.rank() == 0;
  std::string text;
  if (root) text = read_config_text(args.run);
  cluster::broadcast(text, 0);
  std::vector<std::string> overrides = args.overrides;
  // Rank 0 alone judges the arguments (one error line); the others are ended by its MPI_Abort.
  if (root && !args.data.empty() && parse_config_text(text, args.run + ":/config").task.name == "planted")
    throw UsageError("--data " + args.data + ": " + args.run +
                     " is a planted-task run, whose examples the model itself generates; it has no data file "
                     "to replace (score its own test or dev split with --split)");
  if (!args.data.empty()) {
    if (root && args.split != "test") throw UsageError("--data replaces the test file; use it with --split test");
    overrides.insert(overrides.end(), {"--task.test_file", args.data});
  }
  overrides.insert(overrides.end(), {"--eval.test", args.split == "test" ? "true" : "false"});
  RunConfig cfg = parse_config_text(text, args.run + ":/config", overrides);
  cfg.validate();
  const std::unique_ptr<Replica> replica = build_replica(mpi, cfg, args.run);
  cluster::Cluster& cl = *replica->cluster;
  if (!root) return cl.serve();
  const cluster::Split split = args.split == "dev" ? cluster::Split::kDev : cluster::Split::kTest;
  const core::Scorer scorer = make_scorer(cfg, replica->task);
  std::vector<float> logits;
  if (uses_prompt(cfg.method.name)) {
    const std::vector<double> z = read_kept_prompt(args.run);
    logits = cl.evaluate(split, Eigen::Map<const Eigen::VectorXd>(z.data(), static_cast<Eigen::Index>(z.size())));
  } else {
    const std::unique_ptr<methods::Method> method = make_method(cfg, *replica);
    methods::FitProgress quiet;  // records nothing, never stops
    method->fit(cl, scorer, quiet);
    logits = method->split_logits(cl, split, Eigen::VectorXd());
  }
  cl.finish(kExitFinished);
  const core::Scores sc = scorer.score(logits, 0, cl.split(split));
  nlohmann::ordered_json out;
  out["run"] = args.run;
  out["split"] = args.split;
  out["task"] = cfg.task.name;
  out["metric"] = data::metric_name(replica->task.spec.metric);
  out["value"] = sc.metric;
  out["loss"] = sc.loss;
  out["accuracy"] = sc.accuracy;
  out["n_examples"] = cl.split(split).size();
  std::cout << out.dump() << std::endl;
  return kExitFinished;
}

}  // namespace

int run_eval(const EvalArgs& args) {
  return run_in_mpi([&](cluster::MpiSession& mpi) { return eval_job(mpi, args); });
}

}  // namespace bbt::app
