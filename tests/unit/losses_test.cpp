// Losses and metrics against hand-computed values, including extreme logits.
#include "bbt/core/losses.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "bbt/common/error.hpp"

using bbt::core::LogitMatrix;
using bbt::core::LossType;
using bbt::data::Metric;

namespace {

LogitMatrix rows(std::initializer_list<std::initializer_list<double>> values) {
  LogitMatrix m(values.size(), values.begin()->size());
  Eigen::Index i = 0;
  for (const auto& r : values) {
    Eigen::Index j = 0;
    for (double v : r) m(i, j++) = v;
    ++i;
  }
  return m;
}

}  // namespace

TEST(Losses, CrossEntropyHandComputed) {
  // row 0: log(e^1 + e^2) - 2 = log(1 + e^-1); row 1: log(1 + e^-3).
  const LogitMatrix l = rows({{1, 2}, {3, 0}});
  const double expected = (std::log1p(std::exp(-1.0)) + std::log1p(std::exp(-3.0))) / 2;
  EXPECT_NEAR(bbt::core::ce_loss(l, {1, 0}), expected, 1e-15);
  EXPECT_NEAR(expected, 0.18092451954598254, 1e-15);
  // Uniform logits over K classes: log K.
  EXPECT_NEAR(bbt::core::ce_loss(rows({{5, 5, 5, 5}}), {2}), std::log(4.0), 1e-15);
}

TEST(Losses, CrossEntropyExtremeLogitsDoNotOverflow) {
  const LogitMatrix l = rows({{1e4, -1e4}, {1e4, -1e4}});
  EXPECT_DOUBLE_EQ(bbt::core::ce_loss(l, {1, 0}), (2e4 + 0.0) / 2);
  EXPECT_DOUBLE_EQ(bbt::core::ce_loss(rows({{1e4, 1e4}}), {0}), std::log(2.0));
  EXPECT_TRUE(std::isfinite(bbt::core::ce_loss(rows({{-1e4, -1e4, 1e4}}), {0})));
  EXPECT_DOUBLE_EQ(bbt::core::hinge_loss(l, {1, 0}), (2e4 + 2 + 0) / 2);
}

TEST(Losses, HingeHandComputed) {
  // row 0 (y=1): max(0, 1-2+2) = 1; row 1 (y=0): max(0, 0-3+2) = 0.
  EXPECT_DOUBLE_EQ(bbt::core::hinge_loss(rows({{1, 2}, {3, 0}}), {1, 0}), 0.5);
  // three classes, y=0: (1 - 0.5 + 2) + (-1 - 0.5 + 2) = 3.
  EXPECT_DOUBLE_EQ(bbt::core::hinge_loss(rows({{0.5, 1.0, -1.0}}), {0}), 3.0);
  EXPECT_DOUBLE_EQ(bbt::core::hinge_loss(rows({{0.5, 1.0, -1.0}}), {0}, 1.0), 1.5);
}

TEST(Losses, AccuracyAndF1) {
  // predictions 1 0 1 0 1 (ties take the first maximum, like torch.argmax)
  const LogitMatrix l = rows({{0, 1}, {1, 0}, {0, 2}, {3, 3}, {-1, 0}});
  const std::vector<int> y = {1, 1, 0, 0, 1};
  EXPECT_DOUBLE_EQ(bbt::core::accuracy(l, y), 3.0 / 5);
  // positive 1: tp 2, fp 1, fn 1 -> 4/6; positive 0: tp 1, fp 1, fn 1 -> 2/4.
  EXPECT_DOUBLE_EQ(bbt::core::f1(l, y, 1), 4.0 / 6);
  EXPECT_DOUBLE_EQ(bbt::core::f1(l, y, 0), 0.5);
  EXPECT_DOUBLE_EQ(bbt::core::neg_acc(l, y), -0.6);
  EXPECT_DOUBLE_EQ(bbt::core::neg_acc(l, y, Metric::f1, 1), -4.0 / 6);
  // No positive anywhere: sklearn reports 0.
  EXPECT_DOUBLE_EQ(bbt::core::f1(rows({{1, 0}}), {0}, 1), 0.0);
}

TEST(Losses, DispatchAndLogitScale) {
  const LogitMatrix l = rows({{1, 2}});
  EXPECT_DOUBLE_EQ(bbt::core::loss(LossType::ce, l, {0}), std::log1p(std::exp(-1.0)) + 1);
  // scale 2: logits 2, 4 -> log(1 + e^-2) + 2
  EXPECT_NEAR(bbt::core::loss(LossType::ce, l, {0}, 2, 2.0), 2.1269280110429722, 1e-14);
  EXPECT_DOUBLE_EQ(bbt::core::loss(LossType::hinge, l, {0}, 2, 2.0), 4.0);  // 4 - 2 + 2
  EXPECT_DOUBLE_EQ(bbt::core::loss(LossType::neg_acc, l, {0}, 2, 2.0), 0.0);
  EXPECT_DOUBLE_EQ(bbt::core::loss(LossType::neg_acc, l, {1}, 2, 0.5), -1.0);
  EXPECT_THROW(bbt::core::loss(LossType::ce, l, {0}, 2, 0.0), bbt::UsageError);
  EXPECT_EQ(bbt::core::parse_loss_type("hinge"), LossType::hinge);
  EXPECT_THROW(bbt::core::parse_loss_type("mse"), bbt::UsageError);
}

TEST(Losses, FloatInputAndChecks) {
  const float data[] = {1.f, 2.f, 3.f, 0.f};
  const LogitMatrix l = bbt::core::logits_from(data, 2, 2);
  EXPECT_EQ(l(1, 0), 3.0);
  EXPECT_NEAR(bbt::core::ce_loss(l, {1, 0}), 0.18092451954598254, 1e-15);
  EXPECT_THROW(bbt::core::ce_loss(l, {1}), bbt::Error);
  EXPECT_THROW(bbt::core::ce_loss(l, {1, 2}), bbt::Error);
  EXPECT_THROW(bbt::core::accuracy(LogitMatrix(0, 2), {}), bbt::Error);
  // A column-major Eigen matrix is accepted too.
  Eigen::MatrixXd col(1, 2);
  col << 1, 2;
  EXPECT_DOUBLE_EQ(bbt::core::hinge_loss(col, {1}), 1.0);
}
