#include "bbt/methods/icl.hpp"

#include <algorithm>
#include <numeric>
#include <sstream>
#include <tuple>

#include "bbt/common/error.hpp"
#include "bbt/common/rng.hpp"

namespace bbt::methods {
namespace {

constexpr std::uint64_t kDevStream = 1, kTestStream = 2;

// Train row `t` as a demonstration: no <s> / </s>, its label word at <mask>.
std::vector<std::int64_t> demonstration(const core::EncodedSplit& train, std::size_t t,
                                        const std::vector<std::int64_t>& label_ids) {
  std::vector<std::int64_t> ids = train.ids.at(t);
  ids[static_cast<std::size_t>(train.mask_pos.at(t))] = label_ids.at(static_cast<std::size_t>(train.labels.at(t)));
  return std::vector<std::int64_t>(ids.begin() + 1, ids.end() - 1);
}

// One row's draw of min(m, n) distinct positions out of n (partial Fisher-Yates, portable RNG).
std::vector<std::int64_t> draw(std::size_t n, int m, std::uint64_t seed) {
  std::vector<std::int64_t> pool(n);
  std::iota(pool.begin(), pool.end(), 0);
  Rng rng(seed);
  const std::size_t take = std::min<std::size_t>(n, static_cast<std::size_t>(m));
  for (std::size_t j = 0; j < take; ++j) {
    const std::size_t k = j + static_cast<std::size_t>(rng.next_u64() % (n - j));
    std::swap(pool[j], pool[k]);
  }
  pool.resize(take);
  return pool;
}

}  // namespace

IclInputs icl_inputs(const core::EncodedSplit& split, const core::EncodedSplit& train,
                     const std::vector<std::int64_t>& label_ids, int m, std::uint64_t seed,
                     std::uint64_t stream, std::size_t max_len) {
  IclInputs out;
  const std::uint64_t split_seed = derive_seed(seed, stream);
  for (std::size_t i = 0; i < split.ids.size(); ++i) {
    const std::vector<std::int64_t>& row = split.ids[i];
    if (row.size() < 2 || row.size() > max_len)
      throw Error("icl: input row " + std::to_string(i) + " has " + std::to_string(row.size()) +
                  " tokens; the model takes at most " + std::to_string(max_len));
    std::vector<std::int64_t> picked = draw(train.ids.size(), m, derive_seed(split_seed, i));
    std::vector<std::vector<std::int64_t>> bodies;
    std::size_t total = row.size();
    for (std::int64_t t : picked) {
      bodies.push_back(demonstration(train, static_cast<std::size_t>(t), label_ids));
      total += bodies.back().size();
    }
    // The rule: drop demonstrations from the end of the draw until the whole fits.
    while (total > max_len) {
      total -= bodies.back().size();
      bodies.pop_back();
      picked.pop_back();
    }
    std::vector<std::int64_t> ids{row.front()};  // <s>
    for (const auto& b : bodies) ids.insert(ids.end(), b.begin(), b.end());
    const std::int64_t offset = static_cast<std::int64_t>(ids.size()) - 1;
    ids.insert(ids.end(), row.begin() + 1, row.end());  // the input's template and </s>
    out.inputs.ids.push_back(std::move(ids));
    out.inputs.mask_pos.push_back(split.mask_pos[i] + offset);
    out.inputs.labels.push_back(split.labels[i]);
    out.demos.push_back(std::move(picked));
  }
  return out;
}

Icl::Icl(int demonstrations, std::uint64_t seed, std::vector<std::int64_t> label_ids, std::size_t max_len,
         std::int64_t n_dev, std::int64_t n_test)
    : m_(demonstrations),
      seed_(seed),
      label_ids_(std::move(label_ids)),
      max_len_(max_len),
      n_dev_(n_dev),
      n_test_(n_test) {}

std::vector<ArraySpec> Icl::arrays() const {
  // Train positions (rows of /data/train_index) each input used, in order; -1 pads.
  const std::size_t m = static_cast<std::size_t>(std::max(1, m_));
  return {{"icl_dev_demonstrations", {static_cast<std::size_t>(n_dev_), m}},
          {"icl_test_demonstrations", {static_cast<std::size_t>(n_test_), m}}};
}

const IclInputs& Icl::inputs_for(const cluster::Cluster& cluster, cluster::Split split) {
  if (!built_) {
    const core::EncodedSplit& train = cluster.split(cluster::Split::kTrain);
    dev_ = icl_inputs(cluster.split(cluster::Split::kDev), train, label_ids_, m_, seed_, kDevStream, max_len_);
    test_ = icl_inputs(cluster.split(cluster::Split::kTest), train, label_ids_, m_, seed_, kTestStream, max_len_);
    built_ = true;
  }
  if (split == cluster::Split::kTrain) throw Error("internal: icl scores dev and test only");
  return split == cluster::Split::kDev ? dev_ : test_;
}

Fit Icl::fit(cluster::Cluster& cluster, const core::Scorer& /*scorer*/, FitProgress& /*progress*/) {
  Fit out;
  const std::size_t m = static_cast<std::size_t>(std::max(1, m_));
  double used = 0, rows = 0;
  for (auto [split, name] : {std::pair{cluster::Split::kDev, "icl_dev_demonstrations"},
                             std::pair{cluster::Split::kTest, "icl_test_demonstrations"}}) {
    const IclInputs& in = inputs_for(cluster, split);
    std::vector<std::int64_t> flat;
    for (const auto& d : in.demos) {
      for (std::size_t j = 0; j < m; ++j) flat.push_back(j < d.size() ? d[j] : -1);
      used += static_cast<double>(d.size());
      rows += 1;
    }
    out.arrays.emplace_back(name, std::move(flat));
  }
  // Nothing to train: no query spent. The cost columns: what a query of the dev inputs moves.
  std::tie(out.bytes_up, out.bytes_down) = cluster.query_bytes(core::RowQuery::kMaskLogits, dev_.inputs);
  std::ostringstream s;
  s << "in-context learning: " << m_ << " demonstrations drawn per input, " << (rows > 0 ? used / rows : 0.0)
    << " used on average after the " << max_len_ << "-position limit";
  out.summary = s.str();
  return out;
}

std::vector<float> Icl::split_logits(cluster::Cluster& cluster, cluster::Split split,
                                     const Eigen::VectorXd& /*kept*/) {
  return cluster.query(core::RowQuery::kMaskLogits, inputs_for(cluster, split).inputs);
}

}  // namespace bbt::methods
