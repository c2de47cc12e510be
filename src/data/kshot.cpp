// numpy legacy MT19937 + shuffle, and the reference's true few-shot split.
#include "bbt/data/kshot.hpp"

#include "bbt/common/error.hpp"

namespace bbt::data {

NumpyLegacyRandom::NumpyLegacyRandom(std::uint32_t seed) {
  // numpy's mt19937_seed, i.e. Matsumoto & Nishimura's init_genrand.
  std::uint32_t s = seed;
  for (int i = 0; i < 624; ++i) {
    mt_[i] = s;
    s = 1812433253u * (s ^ (s >> 30)) + static_cast<std::uint32_t>(i + 1);
  }
  pos_ = 624;
}

void NumpyLegacyRandom::refill() {
  constexpr std::uint32_t kUpper = 0x80000000u, kLower = 0x7fffffffu, kMatrixA = 0x9908b0dfu;
  for (int i = 0; i < 624; ++i) {
    const std::uint32_t y = (mt_[i] & kUpper) | (mt_[(i + 1) % 624] & kLower);
    mt_[i] = mt_[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? kMatrixA : 0u);
  }
  pos_ = 0;
}

std::uint32_t NumpyLegacyRandom::next_uint32() {
  if (pos_ == 624) refill();
  std::uint32_t y = mt_[pos_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

std::uint64_t NumpyLegacyRandom::next_uint64() {
  const std::uint64_t hi = next_uint32();
  return (hi << 32) | next_uint32();
}

std::uint64_t NumpyLegacyRandom::interval(std::uint64_t max) {
  if (max == 0) return 0;
  std::uint64_t mask = max;  // smallest all-ones mask >= max
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  mask |= mask >> 32;
  std::uint64_t value;
  if (max <= 0xffffffffull) {
    while ((value = (next_uint32() & mask)) > max) {
    }
  } else {
    while ((value = (next_uint64() & mask)) > max) {
    }
  }
  return value;
}

std::vector<std::size_t> numpy_permutation(std::size_t n, std::uint32_t seed) {
  std::vector<std::size_t> idx(n);
  for (std::size_t i = 0; i < n; ++i) idx[i] = i;
  NumpyLegacyRandom rng(seed);
  // RandomState.shuffle: Fisher-Yates from the end, j = random_interval(i).
  for (std::size_t i = n; i-- > 1;) std::swap(idx[i], idx[rng.interval(i)]);
  return idx;
}

KShotSplit sample_k_shot(const std::vector<int>& labels, int num_labels, int k, std::int64_t seed,
                         const std::vector<std::string>& label_names) {
  if (seed < 0 || seed > 0xffffffffll)
    throw UsageError("split seed " + std::to_string(seed) + " is outside numpy's range 0 .. 2^32-1");
  if (k < 1) throw UsageError("k_shot must be at least 1, got " + std::to_string(k));
  std::vector<long> available(num_labels, 0);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_labels)
      throw Error("k-shot sampling: label " + std::to_string(labels[i]) + " at position " +
                  std::to_string(i) + " is outside 0.." + std::to_string(num_labels - 1));
    ++available[labels[i]];
  }
  for (int c = 0; c < num_labels; ++c) {
    if (available[c] < 2L * k) {
      const std::string name = c < static_cast<int>(label_names.size())
                                   ? "class " + std::to_string(c) + " (" + label_names[c] + ")"
                                   : "class " + std::to_string(c);
      throw Error("k-shot sampling: " + name + " has " + std::to_string(available[c]) + " examples, " +
                  std::to_string(2 * k) + " needed (k = " + std::to_string(k) + " for train and " +
                  std::to_string(k) + " for dev)");
    }
  }
  KShotSplit split;
  std::vector<int> n_train(num_labels, 0), n_dev(num_labels, 0);
  for (std::size_t index : numpy_permutation(labels.size(), static_cast<std::uint32_t>(seed))) {
    const int c = labels[index];
    if (n_train[c] < k) {
      split.train_index.push_back(index);
      ++n_train[c];
    } else if (n_dev[c] < k) {
      split.dev_index.push_back(index);
      ++n_dev[c];
    }
  }
  return split;
}

}  // namespace bbt::data
