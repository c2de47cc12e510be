// `bbt bench cma` (optimiser cost per generation), `bbt bench cma-functions` (evaluations to
// reach 1e-8 on classic functions, to compare with REFERENCE.md's libcmaes table) and
// `bbt bench eigen` (our eigensolver against Eigen's on a real CMA-ES covariance, side by side).
#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bbt/common/error.hpp"
#include "bbt/es/cma.hpp"
#include "bbt/es/dense.hpp"
#include "bbt/es/symmetric_eigen.hpp"
#include "bench_functions.hpp"
#include "commands.hpp"
#include "options.hpp"

namespace po = boost::program_options;

namespace bbt::cli {
namespace {

// Parses args[1..] into `vm`; returns false (after printing usage) for --help.
bool parse(const Args& args, const po::options_description& desc, po::variables_map& vm) {
  vm = parse_options(args, desc);
  if (vm.count("help")) {
    std::cout << "usage: " << args[0] << " [options]\n" << desc;
    return false;
  }
  return true;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

std::vector<int> parse_dims(const std::string& text) {
  std::vector<int> dims;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int d = 0;
    try {
      d = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || d < 2)
      throw UsageError("--dims: expected integers >= 2 like 10,20,40, got '" + text + "'");
    dims.push_back(d);
  }
  if (dims.empty()) throw UsageError("--dims: empty list");
  return dims;
}

}  // namespace

int bench_cma(const Args& args) {
  int dim = 500, popsize = 20, generations = 400, threads = 0;
  std::uint64_t seed = 42;
  std::string covariance = "full", kernels;
  bool active = true;
  po::options_description desc("options");
  desc.add_options()("help", "this text")("dim", po::value(&dim)->default_value(dim), "problem dimension")(
      "popsize", po::value(&popsize)->default_value(popsize), "lambda")(
      "generations", po::value(&generations)->default_value(generations), "generations to run")(
      "covariance", po::value(&covariance)->default_value(covariance), "full | diagonal")(
      "seed", po::value(&seed)->default_value(seed), "random seed")(
      "threads", po::value(&threads)->default_value(threads),
      "threads of the eigendecomposition (0: two where there are two cores)")(
      "kernels", po::value(&kernels),
      "dense kernels: avx512 | avx2 | generic (default: the best this CPU runs)")(
      "active", po::value(&active)->default_value(active), "active CMA-ES (negative weights); false: positive only");
  po::variables_map vm;
  if (!parse(args, desc, vm)) return 0;
  if (dim < 1) throw UsageError("--dim must be >= 1");
  if (popsize < 2) throw UsageError("--popsize must be >= 2");
  if (generations < 1) throw UsageError("--generations must be >= 1");

  es::CmaOptions options;
  options.dim = dim;
  options.popsize = popsize;
  options.seed = seed;
  options.covariance = es::parse_covariance(covariance);
  if (threads < 0) throw UsageError("--threads must be >= 0");
  options.threads = threads;
  if (!kernels.empty()) es::dense::use_kernels(kernels);
  options.active = active;
  options.stop = es::StopRules::budget;  // time exactly `generations` generations
  using Clock = std::chrono::steady_clock;
  const auto t_setup = Clock::now();
  es::Cma cma(options);
  const double seconds_setup = std::chrono::duration<double>(Clock::now() - t_setup).count();
  Eigen::VectorXd fitness(popsize);
  std::vector<double> per_generation;
  double ask_total = 0, tell_total = 0;
  for (int g = 0; g < generations && !cma.stopped(); ++g) {
    const auto t0 = Clock::now();
    const Eigen::MatrixXd& x = cma.ask();
    const auto t1 = Clock::now();
    for (int j = 0; j < popsize; ++j) fitness[j] = sphere(x.col(j));
    const auto t2 = Clock::now();
    cma.tell(fitness);
    const auto t3 = Clock::now();
    const double ask_s = std::chrono::duration<double>(t1 - t0).count();
    const double tell_s = std::chrono::duration<double>(t3 - t2).count();
    ask_total += ask_s;
    tell_total += tell_s;
    per_generation.push_back(ask_s + tell_s);
  }
  double total = 0;
  for (double s : per_generation) total += s;
  nlohmann::json out = {
      {"bench", "cma"},
      {"dim", dim},
      {"popsize", cma.popsize()},
      {"generations", static_cast<int>(per_generation.size())},
      {"covariance", es::to_string(options.covariance)},
      {"active", active},
      {"eigen_gap", cma.parameters().eigen_gap},
      {"threads", cma.eigen_threads()},
      {"kernels", es::dense::kernels_name()},
      {"seconds_total", total},
      {"seconds_ask", ask_total},
      {"seconds_tell", tell_total},
      {"seconds_setup", seconds_setup},
      {"seconds_per_generation_median", median(per_generation)},
      {"seconds_per_generation_max", *std::max_element(per_generation.begin(), per_generation.end())},
      {"best_f", cma.best_f()},
      {"sigma", cma.sigma()}};
  std::cout << out.dump() << "\n";
  return 0;
}

int bench_cma_functions(const Args& args) {
  std::string dims_text = "10,20,40", covariance = "full", functions = "", stop = "pycma";
  int seeds = 21;
  bool active = true;
  double target = 1e-8;
  po::options_description desc("options");
  desc.add_options()("help", "this text")("dims", po::value(&dims_text)->default_value(dims_text),
                                          "comma-separated dimensions")(
      "seeds", po::value(&seeds)->default_value(seeds), "runs per function and dimension (seeds 1..N)")(
      "covariance", po::value(&covariance)->default_value(covariance), "full | diagonal")(
      "functions", po::value(&functions), "comma-separated subset (default: all)")(
      "target", po::value(&target)->default_value(target), "success: best f <= target")(
      "active", po::value(&active)->default_value(active), "active CMA-ES (negative weights); false: positive only")(
      "stop", po::value(&stop)->default_value(stop), "pycma (its stopping rules end a run) | budget");
  po::variables_map vm;
  if (!parse(args, desc, vm)) return 0;
  if (seeds < 1) throw UsageError("--seeds must be >= 1");
  const std::vector<int> dims = parse_dims(dims_text);
  const es::Covariance cov = es::parse_covariance(covariance);
  const es::StopRules stop_rules = es::parse_stop_rules(stop);

  nlohmann::json out = nlohmann::json::array();
  for (int dim : dims) {
    for (const auto& fn : benchmark_functions(dim)) {
      if (!functions.empty() && ("," + functions + ",").find("," + fn.name + ",") == std::string::npos)
        continue;
      std::vector<double> evals;
      int successes = 0;
      for (int s = 1; s <= seeds; ++s) {
        es::CmaOptions o;
        o.dim = dim;
        o.covariance = cov;
        o.seed = static_cast<std::uint64_t>(s);
        o.x0 = Eigen::VectorXd::Constant(dim, fn.x0);
        o.sigma0 = fn.sigma0;
        o.max_evaluations = 2000L * dim * dim + 20000;
        o.active = active;
        o.stop = stop_rules;
        const MinimiseResult r = minimise(o, fn.f, target);
        if (r.success) {
          ++successes;
          evals.push_back(static_cast<double>(r.evaluations));
        }
      }
      out.push_back({{"function", fn.name},
                     {"dim", dim},
                     {"covariance", es::to_string(cov)},
                     {"active", active},
                     {"median_evals", median(evals)},
                     {"successes", successes},
                     {"runs", seeds},
                     {"success_rate", static_cast<double>(successes) / seeds}});
    }
  }
  std::cout << out.dump(1) << "\n";
  return 0;
}

int bench_eigen(const Args& args) {
  int dim = 500, generations = 100, repeats = 9;
  po::options_description desc("options");
  desc.add_options()("help", "this text")("dim", po::value(&dim)->default_value(dim), "matrix size")(
      "generations", po::value(&generations)->default_value(generations),
      "CMA-ES generations (sphere, popsize 20) that shape the covariance")(
      "repeats", po::value(&repeats)->default_value(repeats), "timed runs of each solver (alternating)");
  po::variables_map vm;
  if (!parse(args, desc, vm)) return 0;
  if (dim < 2) throw UsageError("--dim must be >= 2");
  if (generations < 0) throw UsageError("--generations must be >= 0");
  if (repeats < 1) throw UsageError("--repeats must be >= 1");

  es::CmaOptions options;
  options.dim = dim;
  options.popsize = 20;
  options.stop = es::StopRules::budget;
  es::Cma cma(options);
  Eigen::VectorXd fitness(cma.popsize());
  for (int g = 0; g < generations; ++g) {
    const Eigen::MatrixXd& x = cma.ask();
    for (int j = 0; j < cma.popsize(); ++j) fitness[j] = sphere(x.col(j));
    cma.tell(fitness);
  }
  const Eigen::MatrixXd cov = cma.state().cov;

  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  es::dense::Scratch scratch;
  es::SymmetricEigen ours1, ours2;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> theirs;
  std::vector<double> t_eigen, t_one, t_two;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = Clock::now();
    theirs.compute(cov, Eigen::ComputeEigenvectors);
    t_eigen.push_back(seconds(t0));
    t0 = Clock::now();
    es::symmetric_eigen(cov, ours1, 1, &scratch);
    t_one.push_back(seconds(t0));
    t0 = Clock::now();
    es::symmetric_eigen(cov, ours2, 2, &scratch);
    t_two.push_back(seconds(t0));
  }
  const bool same_bits = ours1.vectors == ours2.vectors && ours1.values == ours2.values;
  const double norm = cov.norm();
  const double residual = (cov * ours1.vectors - ours1.vectors * ours1.values.asDiagonal()).norm() / norm;
  const double orthogonality =
      (ours1.vectors.transpose() * ours1.vectors - Eigen::MatrixXd::Identity(dim, dim)).norm();
  const Eigen::VectorXd ev = theirs.eigenvalues();
  nlohmann::json out = {{"bench", "eigen"},
                        {"dim", dim},
                        {"kernels", es::dense::kernels_name()},
                        {"eigenvalue_range", {ev.minCoeff(), ev.maxCoeff()}},
                        {"seconds_eigen_median", median(t_eigen)},
                        {"seconds_bbt_1_thread_median", median(t_one)},
                        {"seconds_bbt_2_threads_median", median(t_two)},
                        {"speedup_1_thread", median(t_eigen) / median(t_one)},
                        {"speedup_2_threads", median(t_eigen) / median(t_two)},
                        {"same_bits_1_and_2_threads", same_bits},
                        {"residual_relative", residual},
                        {"orthogonality", orthogonality},
                        {"max_eigenvalue_difference_vs_eigen", (ev - ours1.values).cwiseAbs().maxCoeff()}};
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace bbt::cli
