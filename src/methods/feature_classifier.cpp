#include "bbt/methods/feature_classifier.hpp"

#include <ATen/Parallel.h>

#include <limits>
#include <sstream>

#include "bbt/common/error.hpp"

namespace bbt::methods {
namespace {

constexpr std::int64_t kEvalRows = 256;  // rows per classifier forward when scoring (fixed chunks)

// The classifier trains on one thread: its bits then do not depend on the rank's thread count.
class OneThread {
 public:
  OneThread() : saved_(at::get_num_threads()) { at::set_num_threads(1); }
  ~OneThread() { at::set_num_threads(saved_); }
  OneThread(const OneThread&) = delete;
  OneThread& operator=(const OneThread&) = delete;

 private:
  int saved_;
};

std::vector<float> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

struct FeatureClassifier::Net : torch::nn::Module {
  Net(const ClassifierOptions& o) : head(o.head) {
    if (head == FeatureHead::kMlp) {
      fc1 = register_module("fc1", torch::nn::Linear(o.hidden_size, o.hidden));
      fc2 = register_module("fc2", torch::nn::Linear(o.hidden, o.num_labels));
    } else {
      lstm = register_module(
          "lstm", torch::nn::LSTM(torch::nn::LSTMOptions(o.hidden_size, o.hidden).bidirectional(true).batch_first(true)));
      fc2 = register_module("fc2", torch::nn::Linear(2 * o.hidden, o.num_labels));
    }
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& lengths) {
    if (head == FeatureHead::kMlp) return fc2(torch::relu(fc1(x)));  // [B, K]
    const auto packed = torch::nn::utils::rnn::pack_padded_sequence(x, lengths, /*batch_first=*/true,
                                                                    /*enforce_sorted=*/false);
    const auto out = lstm->forward_with_packed_input(packed);
    const torch::Tensor h = std::get<0>(std::get<1>(out));  // [2, B, hidden]: final state per direction
    return fc2(torch::cat({h[0], h[1]}, 1));                // [B, K]
  }
  FeatureHead head;
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::LSTM lstm{nullptr};
};

FeatureClassifier::FeatureClassifier(const ClassifierOptions& options) : options_(options) {}
FeatureClassifier::~FeatureClassifier() = default;

std::vector<SeriesSpec> FeatureClassifier::series() const {
  return {{"classifier_loss", 0, false},
          {"classifier_train_accuracy", 0, false},
          {"classifier_dev_metric", 0, false},
          {"classifier_dev_loss", 0, false}};
}

core::RowQuery FeatureClassifier::query() const {
  return options_.head == FeatureHead::kMlp ? core::RowQuery::kFirstState : core::RowQuery::kTokenStates;
}

FeatureClassifier::Features FeatureClassifier::features(cluster::Cluster& cluster, const core::EncodedSplit& split,
                                                        cluster::EvalCosts* costs) {
  const std::vector<float> flat = cluster.query(query(), split, costs);
  const std::int64_t n = split.size(), h = options_.hidden_size;
  Features f;
  if (options_.head == FeatureHead::kMlp) {
    f.x = torch::from_blob(const_cast<float*>(flat.data()), {n, h}, torch::kFloat32).clone();  // [n, H]
    return f;
  }
  std::int64_t l_max = 1;
  std::vector<std::int64_t> lengths(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    lengths[static_cast<std::size_t>(i)] = static_cast<std::int64_t>(split.ids[static_cast<std::size_t>(i)].size());
    l_max = std::max(l_max, lengths[static_cast<std::size_t>(i)]);
  }
  f.x = torch::zeros({n, l_max, h}, torch::kFloat32);  // [n, L, H], zero padded
  std::int64_t at = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t len = lengths[static_cast<std::size_t>(i)];
    f.x[i].narrow(0, 0, len).copy_(
        torch::from_blob(const_cast<float*>(flat.data()) + at * h, {len, h}, torch::kFloat32));
    at += len;
  }
  if (static_cast<std::size_t>(at * h) != flat.size()) throw Error("internal: token features do not add up");
  f.lengths = torch::tensor(lengths, torch::kInt64);
  return f;
}

torch::Tensor FeatureClassifier::logits(const Features& f) {
  torch::NoGradGuard no_grad;
  net_->eval();
  std::vector<torch::Tensor> parts;
  const std::int64_t n = f.x.size(0);
  for (std::int64_t r0 = 0; r0 < n; r0 += kEvalRows) {
    const std::int64_t count = std::min(kEvalRows, n - r0);
    const torch::Tensor lengths = f.lengths.defined() ? f.lengths.narrow(0, r0, count) : torch::Tensor();
    parts.push_back(net_->forward(f.x.narrow(0, r0, count), lengths));
  }
  if (parts.empty()) return torch::empty({0, options_.num_labels});
  return torch::cat(parts);  // [n, K]
}

Fit FeatureClassifier::fit(cluster::Cluster& cluster, const core::Scorer& scorer, FitProgress& /*progress*/) {
  Fit out;
  cluster::EvalCosts costs;
  const core::EncodedSplit& train = cluster.split(cluster::Split::kTrain);
  const core::EncodedSplit& dev = cluster.split(cluster::Split::kDev);
  const Features train_f = features(cluster, train, &costs);
  for (double b : costs.bytes_received) out.bytes_up += b;
  for (double b : costs.bytes_sent) out.bytes_down += b;
  dev_features_ = features(cluster, dev, nullptr);
  const Features& dev_f = dev_features_;
  out.api_calls = 2;  // the train and the dev features

  const OneThread one_thread;
  torch::manual_seed(options_.seed);
  net_ = std::make_unique<Net>(options_);
  torch::optim::Adam adam(net_->parameters(),
                          torch::optim::AdamOptions(options_.lr).weight_decay(options_.weight_decay));
  const torch::Tensor y = torch::tensor(train.labels, torch::kInt64);
  std::vector<torch::Tensor> best;  // parameters of the epoch with the best dev metric
  double best_dev = -std::numeric_limits<double>::infinity();
  int best_epoch = -1, since_best = 0, epoch = 0;
  for (; epoch < options_.epochs && since_best < options_.patience; ++epoch) {
    net_->train();
    adam.zero_grad();
    const torch::Tensor z = net_->forward(train_f.x, train_f.lengths);  // [n, K]
    const torch::Tensor loss = torch::nn::functional::cross_entropy(z, y);
    loss.backward();
    adam.step();
    const double train_acc = z.argmax(1).eq(y).to(torch::kFloat64).mean().item<double>();
    double dev_metric = std::numeric_limits<double>::quiet_NaN(), dev_loss = dev_metric;
    if (dev.size() > 0) {
      const core::Scores s = scorer.score(to_vector(logits(dev_f)), 0, dev);
      dev_metric = s.metric;
      dev_loss = s.loss;
    }
    out.rows.push_back({{loss.item<double>()}, {train_acc}, {dev_metric}, {dev_loss}});
    if (dev.size() == 0 || dev_metric > best_dev) {
      best_dev = dev_metric;
      best_epoch = epoch;
      since_best = 0;
      best.clear();
      for (const auto& p : net_->parameters()) best.push_back(p.detach().clone());
    } else {
      ++since_best;
    }
  }
  {
    torch::NoGradGuard no_grad;
    const auto params = net_->parameters();
    for (std::size_t i = 0; i < params.size(); ++i) params[i].copy_(best[i]);
  }
  std::int64_t n_params = 0;
  for (const auto& p : net_->parameters()) n_params += p.numel();
  // Parameters, their gradients and Adam's two moments, plus the train and dev features held.
  out.user_bytes = 4.0 * static_cast<double>(4 * n_params + train_f.x.numel() + dev_f.x.numel());
  out.tuned_parameters = n_params;
  std::ostringstream s;
  s << (options_.head == FeatureHead::kMlp ? "feature-MLP" : "feature-BiLSTM") << ": " << n_params
    << " parameters, " << epoch << " epochs, kept epoch " << best_epoch << " (dev " << best_dev << ")";
  out.summary = s.str();
  return out;
}

std::vector<float> FeatureClassifier::split_logits(cluster::Cluster& cluster, cluster::Split split,
                                                   const Eigen::VectorXd& /*kept*/) {
  if (!net_) throw Error("internal: the classifier is scored before it is fitted");
  const Features f = split == cluster::Split::kDev ? dev_features_ : features(cluster, cluster.split(split), nullptr);
  const OneThread one_thread;
  return to_vector(logits(f));
}

}  // namespace bbt::methods
