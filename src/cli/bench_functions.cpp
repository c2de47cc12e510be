#include "bench_functions.hpp"

#include <cmath>

#include "bbt/common/rng.hpp"

namespace bbt::cli {

double sphere(const Eigen::Ref<const Eigen::VectorXd>& x) { return x.squaredNorm(); }

double ellipsoid(const Eigen::Ref<const Eigen::VectorXd>& x) {
  const Eigen::Index n = x.size();
  double f = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    const double scale = n > 1 ? std::pow(1e6, static_cast<double>(i) / (n - 1)) : 1.0;
    f += scale * x[i] * x[i];
  }
  return f;
}

double rosenbrock(const Eigen::Ref<const Eigen::VectorXd>& x) {
  double f = 0;
  for (Eigen::Index i = 0; i + 1 < x.size(); ++i) {
    const double a = x[i] * x[i] - x[i + 1], b = x[i] - 1.0;
    f += 100.0 * a * a + b * b;
  }
  return f;
}

double cigar(const Eigen::Ref<const Eigen::VectorXd>& x) {
  return x[0] * x[0] + 1e6 * x.tail(x.size() - 1).squaredNorm();
}

Eigen::MatrixXd random_rotation(int dim, std::uint64_t seed) {
  Rng rng(seed);
  Eigen::MatrixXd g(dim, dim);
  for (int j = 0; j < dim; ++j)
    for (int i = 0; i < dim; ++i) g(i, j) = rng.normal();
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
  Eigen::MatrixXd q = qr.householderQ();
  // Signs of R's diagonal folded in: makes the distribution uniform (Haar).
  for (int j = 0; j < dim; ++j)
    if (qr.matrixQR()(j, j) < 0) q.col(j) = -q.col(j);
  return q;
}

Objective rotated_ellipsoid(int dim, std::uint64_t seed) {
  const Eigen::MatrixXd r = random_rotation(dim, seed);
  return [r](const Eigen::Ref<const Eigen::VectorXd>& x) { return ellipsoid(r * x); };
}

std::vector<BenchmarkFunction> benchmark_functions(int dim) {
  return {{"sphere", sphere, 1.0, 1.0},
          {"ellipsoid", ellipsoid, 1.0, 1.0},
          {"rosenbrock", rosenbrock, 0.0, 0.5},
          {"cigar", cigar, 1.0, 1.0},
          {"rotated_ellipsoid", rotated_ellipsoid(dim, 12345), 1.0, 1.0}};
}

MinimiseResult minimise(const es::CmaOptions& options, const Objective& f, double target) {
  es::Cma cma(options);
  Eigen::VectorXd fitness(cma.popsize());
  MinimiseResult result;
  while (!cma.stopped()) {
    const Eigen::MatrixXd& x = cma.ask();
    for (int j = 0; j < cma.popsize(); ++j) {
      fitness[j] = f(x.col(j));
      if (!result.success && fitness[j] <= target) {
        result.success = true;
        result.evaluations = cma.evaluations() + j + 1;
      }
    }
    cma.tell(fitness);
    if (result.success) break;
  }
  result.best_f = cma.best_f();
  if (!result.success) result.evaluations = cma.evaluations();
  result.stop_reason = cma.stop_reason();
  return result;
}

}  // namespace bbt::cli
