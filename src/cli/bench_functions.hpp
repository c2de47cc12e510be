#pragma once
// Classic test functions for CMA-ES and a driver that runs the optimiser to a target value:
// used by `bbt bench cma-functions` and tests/unit/es_test.cpp (built once, as bbt_bench_functions).
#include <Eigen/Dense>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bbt/es/cma.hpp"

namespace bbt::cli {

using Objective = std::function<double(const Eigen::Ref<const Eigen::VectorXd>&)>;

double sphere(const Eigen::Ref<const Eigen::VectorXd>& x);
// sum_i 10^(6 i / (n - 1)) x_i^2: condition number 1e6.
double ellipsoid(const Eigen::Ref<const Eigen::VectorXd>& x);
double rosenbrock(const Eigen::Ref<const Eigen::VectorXd>& x);
// x_1^2 + 1e6 sum_{i>1} x_i^2.
double cigar(const Eigen::Ref<const Eigen::VectorXd>& x);
// A uniformly random rotation (QR of a Gaussian matrix, signs fixed) drawn from `seed`.
Eigen::MatrixXd random_rotation(int dim, std::uint64_t seed);
// ellipsoid(R x) for a fixed random rotation R.
Objective rotated_ellipsoid(int dim, std::uint64_t seed);

// A named function with the start the CMA-ES literature uses for it.
struct BenchmarkFunction {
  std::string name;
  Objective f;
  double x0;  // every coordinate
  double sigma0;
};
std::vector<BenchmarkFunction> benchmark_functions(int dim);

struct MinimiseResult {
  long evaluations = 0;  // when the target was first reached, or the total when it was not
  double best_f = 0;
  bool success = false;
  std::string stop_reason;
};
// ask/evaluate/tell until best f <= target, the optimiser stops, or max_evaluations.
MinimiseResult minimise(const es::CmaOptions& options, const Objective& f, double target);

}  // namespace bbt::cli
