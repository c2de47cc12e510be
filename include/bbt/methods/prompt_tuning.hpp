#pragma once
// The paper's gradient-based baselines, trained through the model's gradients: prompt tuning
// (Lester et al. 2021: n soft prompt rows in front of the input, cat mode), P-tuning v2 (Liu et al.
// 2021: prefix keys and values at every layer) and model tuning (every weight; prompt-based
// fine-tuning through the MLM head and the verbalizer, as LM-BFF). Each step's mini-batch is shared
// over the ranks in fixed chunks (the chunks' gradients are added on rank 0 in chunk order).
// Prompt and prefix: rank 0 applies AdamW and the new parameters travel with the next request.
// Model tuning: the weights never travel; rank 0 sends the step's gradient and every rank applies
// the same AdamW update to its own copy (cluster.weights_*), checked equal by fingerprint at the end.
// So any rank count gives the same bits. Dev every eval_every steps; a strictly better dev metric
// keeps the parameters; patience evaluations without one end the training.
//
// Checkpoints: the loop checkpoints state() after any step (FitProgress): the parameters, AdamW's
// moments and the kept parameters (float64, rank 0's), or for model tuning rank 0's copy of the
// weights, kept weights and moments (float32, float_state()), with the step counter, the data order
// (shuffles replayed from the seed), the dev selection's state and the API calls so far. A resumed
// fit continues from there with the same bits as an uninterrupted one.
//
// The same loop is BBT-Adam (`bbt_adam`, kind core::Tuned::kSubspace): the parameters are BBT's z
// [d], the prompt every rank's A z (+ p0) in BBT's mode, the gradient A^T grad_p (the ablation
// "CMA-ES against Adam in the same subspace"). It keeps z (prompt_dim() = d: /best/z, as BBT),
// scores dev with BBT's own forward (cluster.evaluate) and, as BBT, counts one API call per train
// query only (count_dev_calls = false).
#include <cstdint>
#include <vector>

#include "bbt/core/tuning.hpp"
#include "bbt/methods/method.hpp"

namespace bbt::methods {

struct TuningOptions {
  core::Tuned kind = core::Tuned::kPrompt;
  std::vector<double> init;  // the flat initial parameters ([n, H] or [L, 2, m, H] row-major); none for kWeights
  std::vector<std::size_t> shape;
  double lr = 0.01, weight_decay = 0.0, max_grad_norm = 1.0;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  long steps = 1000, warmup_steps = 0, eval_every = 100, patience = 0;  // patience 0: none
  std::int64_t batch_size = 32, chunk_rows = 8;
  std::uint64_t seed = 42;  // the mini-batch order
  double logit_scale = 1.0;    // the loss is the cross-entropy of logits x this (loss.logit_scale)
  bool count_dev_calls = true;  // a dev evaluation counts as an API call (BBT's rule: it does not)
  std::int64_t weights_size = 0;  // model tuning: trainable entries (core::WeightTuner::size_of)
};

class PromptTuning final : public NoStepMethod {
 public:
  // `weights`: model tuning's cluster, whose rank-0 weights float_state() reads (none otherwise).
  explicit PromptTuning(TuningOptions options, cluster::Cluster* weights = nullptr);

  // kSubspace: the length of z (the loop keeps it as /best/z); 0 otherwise.
  int prompt_dim() const override;
  // kSubspace: the kept z (what the loop keeps when dev never ran); empty otherwise.
  Eigen::VectorXd final_prompt() const override;
  // Per step: mean train loss and accuracy of the mini-batch, gradient norm (before clipping),
  // learning rate, and the dev metric (NaN when dev did not run).
  std::vector<SeriesSpec> series() const override;
  Fit fit(cluster::Cluster& cluster, const core::Scorer& scorer, FitProgress& progress) override;
  std::vector<float> split_logits(cluster::Cluster& cluster, cluster::Split split,
                                  const Eigen::VectorXd& kept) override;
  std::string state_group() const override { return "tuning"; }
  // "loop" [1, 11]: step, position in the epoch, shuffles, kept step, evaluations since, whether dev
  // kept any, its best metric, API calls, bytes up and down per query, whether patience ended the
  // training; "parameters" [4, P]: the
  // parameters, AdamW's m and v, the kept parameters (not for model tuning).
  StateArrays state() const override;
  void restore(const StateArrays& arrays) override;
  // Model tuning: "weights", "kept_weights", "adam_m", "adam_v" (WeightTuner's parts; none at the
  // start, when the ranks' fresh copies are the state).
  std::vector<std::pair<std::string, std::size_t>> float_state_sizes() const override;
  std::vector<float> float_state(const std::string& name) const override;
  void restore_float_state(const std::function<std::vector<float>(const std::string&)>& read) override;
  // Model tuning: /method/weights_fingerprint = {kept, final} weights' fingerprints (hash_bytes,
  // the same on every rank: checked).
  std::vector<ArraySpec> arrays() const override;

  // The learning rate of step t (0-based): linear warm-up over warmup_steps, then linear decay to
  // 0 at the last step.
  double learning_rate(long t) const;
  const std::vector<double>& kept() const { return kept_; }
  std::string name() const;  // "prompt tuning", "P-tuning v2", "model tuning"

 private:
  TuningOptions o_;
  cluster::Cluster* weights_ = nullptr;
  // The loop's state between steps (what a checkpoint holds).
  std::vector<double> p_, m_, v_, kept_;  // parameters, AdamW's moments, the parameters dev kept
  long t_ = 0;                            // steps done
  std::int64_t at_ = 0, shuffles_ = 0;    // position in the epoch's order; epochs shuffled so far
  bool has_best_ = false;
  double best_dev_ = 0;
  long best_step_ = -1, since_best_ = 0;
  bool patience_out_ = false;  // patience ended the training
  std::int64_t api_calls_ = 0;
  double bytes_up_ = 0, bytes_down_ = 0;
};

}  // namespace bbt::methods
