// CMA-ES: constants, convergence, determinism, bit-identical restore, NaN handling, bounds, stops.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "bbt/common/error.hpp"
#include "bbt/es/benchmarks.hpp"
#include "bbt/es/cma.hpp"

namespace bbt::es {
namespace {

bool bit_equal(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(double) * a.size()) == 0;
}

Eigen::VectorXd evaluate(const Eigen::MatrixXd& x, const Objective& f) {
  Eigen::VectorXd out(x.cols());
  for (Eigen::Index j = 0; j < x.cols(); ++j) out[j] = f(x.col(j));
  return out;
}

CmaOptions options_for(int dim, Covariance cov = Covariance::full, double x0 = 1.0, double sigma0 = 1.0) {
  CmaOptions o;
  o.dim = dim;
  o.covariance = cov;
  o.x0 = Eigen::VectorXd::Constant(dim, x0);
  o.sigma0 = sigma0;
  o.seed = 7;
  return o;
}

TEST(CmaParameters, MatchHandComputedTutorialValuesAtTen) {
  const CmaParameters p = CmaParameters::make(10, 0, Covariance::full);
  const double n = 10;
  EXPECT_EQ(p.lambda, 10);  // 4 + floor(3 ln 10) = 4 + floor(6.91)
  EXPECT_EQ(p.mu, 5);
  double w[5], sum = 0, sum2 = 0;
  for (int i = 0; i < 5; ++i) sum += (w[i] = std::log(5.5) - std::log(i + 1.0));
  for (int i = 0; i < 5; ++i) sum2 += (w[i] / sum) * (w[i] / sum);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(p.weights[i], w[i] / sum, 1e-14);
  const double mueff = 1 / sum2;
  EXPECT_NEAR(p.mueff, mueff, 1e-12);
  EXPECT_NEAR(p.mueff, 3.1672, 1e-4);
  EXPECT_NEAR(p.c1, 2 / (11.3 * 11.3 + mueff), 1e-15);
  EXPECT_NEAR(p.cmu, 2 * (mueff - 2 + 1 / mueff) / (144 + mueff), 1e-15);
  EXPECT_NEAR(p.cc, (4 + mueff / n) / (n + 4 + 2 * mueff / n), 1e-15);
  EXPECT_NEAR(p.csigma, (mueff + 2) / (n + mueff + 5), 1e-15);
  EXPECT_NEAR(p.dsigma, 1 + p.csigma, 1e-15);  // sqrt((mueff-1)/(n+1)) < 1
  EXPECT_NEAR(p.chin, std::sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n)), 1e-15);
  EXPECT_EQ(p.eigen_gap, 1);
  EXPECT_EQ(p.tolfun_history, 10 + 30);
}

TEST(CmaParameters, LazyGapAndSepRatesAtFiveHundred) {
  const CmaParameters full = CmaParameters::make(500, 20, Covariance::full);
  EXPECT_EQ(full.lambda, 20);
  EXPECT_NEAR(full.c1 + full.cmu, 4.055e-5, 0.001e-5);
  EXPECT_EQ(full.eigen_gap, 5);  // first whole generation count above 1 / (10 * 500 * 4.055e-5) = 4.93
  const CmaParameters sep = CmaParameters::make(500, 20, Covariance::diagonal);
  const double n = 500, m = sep.mueff;
  EXPECT_NEAR(sep.c1, 1 / (n + 2 * std::sqrt(n) + m / n), 1e-17);
  EXPECT_NEAR(sep.cmu, (0.25 + m + 1 / m - 2) / (n + 4 * std::sqrt(n) + m / 2), 1e-17);
  EXPECT_NEAR(sep.cc, (1 + 1 / n + m / n) / (std::sqrt(n) + 1 / n + 2 * m / n), 1e-15);
  EXPECT_NEAR(sep.c1 + sep.cmu, 9.1e-3, 0.2e-3);
  EXPECT_EQ(sep.eigen_gap, 1);
  EXPECT_EQ(CmaParameters::make(500, 0, Covariance::full).lambda, 22);  // 4 + floor(18.64)
}

TEST(Cma, ConvergesOnSphereEllipsoidRosenbrock) {
  for (Covariance cov : {Covariance::full, Covariance::diagonal}) {
    CmaOptions o = options_for(8, cov);
    o.max_evaluations = 20000;
    MinimiseResult r = minimise(o, sphere, 1e-8);
    EXPECT_TRUE(r.success) << to_string(cov);
    EXPECT_LT(r.evaluations, 2000);
    r = minimise(o, ellipsoid, 1e-8);
    EXPECT_TRUE(r.success) << to_string(cov);
  }
  CmaOptions o = options_for(6, Covariance::full, 0.0, 0.5);
  o.max_evaluations = 20000;
  const MinimiseResult r = minimise(o, rosenbrock, 1e-8);
  EXPECT_TRUE(r.success) << r.best_f;
}

TEST(Cma, FullCovarianceLearnsRotation) {
  CmaOptions o = options_for(8);
  o.max_evaluations = 20000;
  const MinimiseResult axis = minimise(o, ellipsoid, 1e-8);
  const MinimiseResult rotated = minimise(o, rotated_ellipsoid(8, 3), 1e-8);
  ASSERT_TRUE(axis.success && rotated.success);
  EXPECT_LT(rotated.evaluations, 1.5 * axis.evaluations);
}

TEST(Cma, SameSeedSameCandidatesBitForBit) {
  for (Covariance cov : {Covariance::full, Covariance::diagonal}) {
    Cma a(options_for(12, cov)), b(options_for(12, cov));
    CmaOptions other = options_for(12, cov);
    other.seed = 8;
    Cma c(other);
    for (int g = 0; g < 20; ++g) {
      const Eigen::MatrixXd xa = a.ask();
      ASSERT_TRUE(bit_equal(xa, b.ask())) << "generation " << g;
      if (g == 0) {
        EXPECT_FALSE(bit_equal(xa, c.ask()));
      }
      a.tell(evaluate(xa, ellipsoid));
      b.tell(evaluate(xa, ellipsoid));
    }
    EXPECT_TRUE(bit_equal(a.mean(), b.mean()));
  }
}

TEST(Cma, AskTwiceReturnsTheSameSampleAndTellNeedsAsk) {
  Cma cma(options_for(4));
  EXPECT_THROW(cma.tell(Eigen::VectorXd::Zero(cma.popsize())), Error);
  const Eigen::MatrixXd x = cma.ask();
  EXPECT_TRUE(bit_equal(x, cma.ask()));
  EXPECT_THROW(cma.tell(Eigen::VectorXd::Zero(cma.popsize() + 1)), Error);
}

// Runs 30 generations; at `cut` exports (after tell, or after ask when `mid_ask`), round-trips
// the state through named arrays, restores, and checks every later candidate bit for bit.
void expect_restore_identical(const CmaOptions& o, int cut, bool mid_ask, const Objective& f) {
  Cma ref(o);
  std::vector<Eigen::MatrixXd> later;
  CmaState saved;
  for (int g = 0; g < 30; ++g) {
    if (g == cut && !mid_ask) saved = ref.state();
    const Eigen::MatrixXd x = ref.ask();
    if (g == cut && mid_ask) saved = ref.state();
    if (g >= cut) later.push_back(x);
    ref.tell(evaluate(x, f));
  }
  Cma resumed = Cma::restore(o, CmaState::from_arrays(saved.arrays()));
  EXPECT_EQ(resumed.generation(), cut);
  for (int g = cut; g < 30; ++g) {
    const Eigen::MatrixXd x = resumed.ask();
    ASSERT_TRUE(bit_equal(x, later[g - cut])) << "generation " << g;
    resumed.tell(evaluate(x, f));
  }
  EXPECT_TRUE(bit_equal(resumed.mean(), ref.mean()));
  EXPECT_EQ(resumed.sigma(), ref.sigma());
  EXPECT_EQ(resumed.best_f(), ref.best_f());
  EXPECT_EQ(resumed.evaluations(), ref.evaluations());
}

TEST(Cma, RestoreContinuesBitIdenticallyFullAndDiagonal) {
  for (bool mid_ask : {false, true}) {
    expect_restore_identical(options_for(10), 15, mid_ask, ellipsoid);
    expect_restore_identical(options_for(30, Covariance::diagonal), 15, mid_ask, ellipsoid);
  }
}

TEST(Cma, RestoreAcrossAPendingLazyEigendecomposition) {
  CmaOptions o = options_for(200);
  o.popsize = 6;
  Cma probe(o);
  const int gap = probe.parameters().eigen_gap;
  ASSERT_GT(gap, 2);
  // Launched at generation 2 * gap, consumed at 3 * gap: cut in between.
  const int cut = 2 * gap + 1;
  ASSERT_LT(3 * gap, 30);
  Cma run(o);
  for (int g = 0; g < cut; ++g) run.tell(evaluate(run.ask(), ellipsoid));
  EXPECT_EQ(run.state().has_pending, true);
  expect_restore_identical(o, cut, false, ellipsoid);
  expect_restore_identical(o, cut, true, ellipsoid);
}

TEST(Cma, RestoreRejectsMismatchedOptions) {
  Cma cma(options_for(5));
  CmaState s = cma.state();
  EXPECT_THROW(Cma::restore(options_for(6), s), Error);
  EXPECT_THROW(Cma::restore(options_for(5, Covariance::diagonal), s), Error);
  auto arrays = s.arrays();
  arrays.erase(arrays.begin() + 3);
  EXPECT_THROW(CmaState::from_arrays(arrays), Error);
}

TEST(Cma, NonFiniteFitnessIsRankedWorstAndCounted) {
  CmaOptions o = options_for(6);
  o.max_evaluations = 10000;
  Cma cma(o);
  long expected_nonfinite = 0;
  while (!cma.stopped() && cma.best_f() > 1e-8) {
    const Eigen::MatrixXd& x = cma.ask();
    Eigen::VectorXd f = evaluate(x, sphere);
    f[0] = std::numeric_limits<double>::quiet_NaN();
    f[1] = std::numeric_limits<double>::infinity();
    f[2] = -std::numeric_limits<double>::infinity();
    expected_nonfinite += 3;
    cma.tell(f);
    ASSERT_TRUE(cma.mean().allFinite());
    ASSERT_TRUE(std::isfinite(cma.sigma()));
  }
  EXPECT_LE(cma.best_f(), 1e-8);
  EXPECT_EQ(cma.nonfinite_count(), expected_nonfinite);

  // A generation with nothing finite leaves the distribution untouched.
  Cma all_nan(options_for(4));
  all_nan.ask();
  const Eigen::VectorXd mean = all_nan.mean();
  const double sigma = all_nan.sigma();
  all_nan.tell(Eigen::VectorXd::Constant(all_nan.popsize(), std::nan("")));
  EXPECT_TRUE(bit_equal(all_nan.mean(), mean));
  EXPECT_EQ(all_nan.sigma(), sigma);
  EXPECT_EQ(all_nan.nonfinite_count(), all_nan.popsize());
  EXPECT_EQ(all_nan.best_f(), std::numeric_limits<double>::infinity());
}

TEST(Cma, BoundsKeepCandidatesInsideAndFindTheBoundaryOptimum) {
  CmaOptions o = options_for(5, Covariance::full, 0.0, 1.0);
  o.lower = -1;
  o.upper = 1;
  o.max_evaluations = 6000;
  const auto shifted = [](const Eigen::Ref<const Eigen::VectorXd>& x) {
    return (x.array() - 2.0).square().sum();  // optimum outside: x = 1 on the box
  };
  Cma cma(o);
  while (!cma.stopped()) {
    const Eigen::MatrixXd& x = cma.ask();
    ASSERT_GE(x.minCoeff(), -1.0);
    ASSERT_LE(x.maxCoeff(), 1.0);
    cma.tell(evaluate(x, shifted));
  }
  EXPECT_NEAR(cma.best_f(), 5.0, 1e-6);
  EXPECT_LT((cma.best_x().array() - 1.0).abs().maxCoeff(), 1e-6);
  // Inside the box, candidates are exactly the samples.
  CmaOptions wide = options_for(3, Covariance::full, 0.0, 1e-3);
  Cma free(wide);
  wide.lower = -10;
  wide.upper = 10;
  Cma bounded(wide);
  EXPECT_TRUE(bit_equal(bounded.ask(), free.ask()));
}

TEST(Cma, StopReasons) {
  auto run = [](CmaOptions o, const Objective& f) {
    Cma cma(o);
    for (int g = 0; g < 5000 && !cma.stopped(); ++g) cma.tell(evaluate(cma.ask(), f));
    return cma;
  };
  CmaOptions o = options_for(4);
  EXPECT_EQ(Cma(o).stop_reason(), "");
  o.max_generations = 5;
  Cma g = run(o, sphere);
  EXPECT_EQ(g.stop_reason(), "max_generations");
  EXPECT_EQ(g.generation(), 5);

  o = options_for(4);
  o.max_evaluations = 3 * Cma(o).popsize();
  EXPECT_EQ(run(o, sphere).stop_reason(), "max_evaluations");

  o = options_for(4);
  const Cma flat = run(o, [](const Eigen::Ref<const Eigen::VectorXd>&) { return 1.0; });
  EXPECT_EQ(flat.stop_reason(), "tolfun");
  EXPECT_EQ(flat.generation(), flat.parameters().tolfun_history);

  o = options_for(4);
  o.tolfun = 0;
  o.tolx = 1e-4;
  EXPECT_EQ(run(o, sphere).stop_reason(), "tolx");

  o = options_for(4);
  o.tolfun = 0;
  o.tolconditioncov = 1e3;
  EXPECT_EQ(run(o, ellipsoid).stop_reason(), "tolconditioncov");
}

TEST(Cma, RejectsBadOptions) {
  CmaOptions o = options_for(3);
  o.sigma0 = 0;
  EXPECT_THROW(Cma{o}, UsageError);
  o = options_for(3);
  o.x0 = Eigen::VectorXd::Zero(2);
  EXPECT_THROW(Cma{o}, UsageError);
  o = options_for(3);
  o.popsize = 1;
  EXPECT_THROW(Cma{o}, UsageError);
  EXPECT_THROW(parse_covariance("banana"), UsageError);
}

}  // namespace
}  // namespace bbt::es
