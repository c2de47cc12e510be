#pragma once
// Losses and metrics on verbalizer logits [N x K] (the logits of the K label words at <mask>),
// as the black-box objective and for dev/test scoring.
#include <Eigen/Core>
#include <cstddef>
#include <string>
#include <vector>

#include "bbt/data/task.hpp"

namespace bbt::core {

using LogitMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using LogitsRef = Eigen::Ref<const LogitMatrix>;

enum class LossType { ce, hinge, neg_acc };
LossType parse_loss_type(const std::string& name);  // "ce" | "hinge" | "neg_acc"
std::string loss_type_name(LossType type);

// Copies row-major float logits (e.g. a torch tensor's data) into a LogitMatrix.
LogitMatrix logits_from(const float* data, std::size_t n, std::size_t k);

// Every function checks labels.size() == N, N > 0 and labels in [0, K) (bbt::Error otherwise).

// Mean cross-entropy over the K label words (log-sum-exp, stable for any finite logits).
double ce_loss(const LogitsRef& logits, const std::vector<int>& labels);
// sum_i sum_{j != y_i} max(0, l_ij - l_iy + margin) / N.
double hinge_loss(const LogitsRef& logits, const std::vector<int>& labels, double margin = 2);
// Argmax (first maximum on ties, like torch.argmax) equals the label.
double accuracy(const LogitsRef& logits, const std::vector<int>& labels);
// Binary F1 of class `positive` (sklearn's f1_score: 0 when there is no true or predicted positive).
double f1(const LogitsRef& logits, const std::vector<int>& labels, int positive);
// The task metric: accuracy, or F1 of `positive` for F1 tasks (MRPC).
double metric(const LogitsRef& logits, const std::vector<int>& labels, data::Metric metric, int positive = 1);
// -accuracy, or -F1 for F1 tasks.
double neg_acc(const LogitsRef& logits, const std::vector<int>& labels,
               data::Metric metric = data::Metric::accuracy, int positive = 1);

// The black-box objective. The logits are multiplied by logit_scale (> 0, a temperature) first.
double loss(LossType type, const LogitsRef& logits, const std::vector<int>& labels, double margin = 2,
            double logit_scale = 1, data::Metric metric = data::Metric::accuracy, int positive = 1);

}  // namespace bbt::core
