// Verbalizer-logit losses and metrics (REFERENCE.md, "Losses").
#include "bbt/core/losses.hpp"

#include <algorithm>
#include <cmath>

#include "bbt/common/error.hpp"

namespace bbt::core {
namespace {

void check(const LogitsRef& logits, const std::vector<int>& labels) {
  if (logits.rows() == 0 || logits.cols() == 0) throw Error("loss: empty logits");
  if (static_cast<std::size_t>(logits.rows()) != labels.size())
    throw Error("loss: " + std::to_string(logits.rows()) + " logit rows but " +
                std::to_string(labels.size()) + " labels");
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] >= logits.cols())
      throw Error("loss: label " + std::to_string(labels[i]) + " of example " + std::to_string(i) +
                  " is outside 0.." + std::to_string(logits.cols() - 1));
}

Eigen::Index argmax_row(const LogitsRef& logits, Eigen::Index i) {
  Eigen::Index best = 0;
  for (Eigen::Index j = 1; j < logits.cols(); ++j)
    if (logits(i, j) > logits(i, best)) best = j;
  return best;
}

}  // namespace

LossType parse_loss_type(const std::string& name) {
  if (name == "ce") return LossType::ce;
  if (name == "hinge") return LossType::hinge;
  if (name == "neg_acc" || name == "perf") return LossType::neg_acc;
  throw UsageError("unknown loss type '" + name + "' (valid: ce, hinge, neg_acc)");
}

std::string loss_type_name(LossType type) {
  switch (type) {
    case LossType::ce:
      return "ce";
    case LossType::hinge:
      return "hinge";
    case LossType::neg_acc:
      return "neg_acc";
  }
  return "unknown";
}

LogitMatrix logits_from(const float* data, std::size_t n, std::size_t k) {
  using FloatRows = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  return Eigen::Map<const FloatRows>(data, static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(k))
      .cast<double>();
}

double ce_loss(const LogitsRef& logits, const std::vector<int>& labels) {
  check(logits, labels);
  double total = 0;
  for (Eigen::Index i = 0; i < logits.rows(); ++i) {
    // Shift by the row maximum so exp never overflows; (m - l_y) first keeps large logits exact.
    const double m = logits.row(i).maxCoeff();
    total += std::log((logits.row(i).array() - m).exp().sum()) + (m - logits(i, labels[i]));
  }
  return total / static_cast<double>(logits.rows());
}

double hinge_loss(const LogitsRef& logits, const std::vector<int>& labels, double margin) {
  check(logits, labels);
  double total = 0;
  for (Eigen::Index i = 0; i < logits.rows(); ++i) {
    const double target = logits(i, labels[i]);
    for (Eigen::Index j = 0; j < logits.cols(); ++j)
      if (j != labels[i]) total += std::max(0.0, logits(i, j) - target + margin);
  }
  return total / static_cast<double>(logits.rows());
}

double accuracy(const LogitsRef& logits, const std::vector<int>& labels) {
  check(logits, labels);
  long correct = 0;
  for (Eigen::Index i = 0; i < logits.rows(); ++i) correct += argmax_row(logits, i) == labels[i];
  return static_cast<double>(correct) / static_cast<double>(logits.rows());
}

double f1(const LogitsRef& logits, const std::vector<int>& labels, int positive) {
  check(logits, labels);
  if (positive < 0 || positive >= logits.cols())
    throw UsageError("F1 positive class " + std::to_string(positive) + " is outside 0.." +
                     std::to_string(logits.cols() - 1));
  long tp = 0, fp = 0, fn = 0;
  for (Eigen::Index i = 0; i < logits.rows(); ++i) {
    const bool predicted = argmax_row(logits, i) == positive, actual = labels[i] == positive;
    tp += predicted && actual;
    fp += predicted && !actual;
    fn += !predicted && actual;
  }
  const long denominator = 2 * tp + fp + fn;
  return denominator == 0 ? 0.0 : 2.0 * static_cast<double>(tp) / static_cast<double>(denominator);
}

double metric(const LogitsRef& logits, const std::vector<int>& labels, data::Metric m, int positive) {
  return m == data::Metric::f1 ? f1(logits, labels, positive) : accuracy(logits, labels);
}

double neg_acc(const LogitsRef& logits, const std::vector<int>& labels, data::Metric m, int positive) {
  return -metric(logits, labels, m, positive);
}

double loss(LossType type, const LogitsRef& logits, const std::vector<int>& labels, double margin,
            double logit_scale, data::Metric m, int positive) {
  if (!(logit_scale > 0) || !std::isfinite(logit_scale))
    throw UsageError("logit scale must be a positive number, got " + std::to_string(logit_scale));
  if (type == LossType::neg_acc) return neg_acc(logits, labels, m, positive);  // scale-invariant
  const LogitMatrix scaled = logits * logit_scale;
  return type == LossType::ce ? ce_loss(scaled, labels) : hinge_loss(scaled, labels, margin);
}

}  // namespace bbt::core
