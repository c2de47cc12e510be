#pragma once
// The reference's k-shot split, bit for bit: np.random.seed(seed); np.random.shuffle(indices);
// then the first k of each class go to train and the next k of each class to dev.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace bbt::data {

// numpy's legacy RandomState generator (MT19937) as far as shuffle needs it.
class NumpyLegacyRandom {
 public:
  // np.random.seed(seed) with an integer seed: MT19937 init_genrand (not init_by_array).
  explicit NumpyLegacyRandom(std::uint32_t seed);
  std::uint32_t next_uint32();
  std::uint64_t next_uint64();  // two 32-bit draws, high word first (numpy's mt19937_next64)
  // numpy's random_interval: uniform in [0, max] by masked rejection (32- or 64-bit draws).
  std::uint64_t interval(std::uint64_t max);

 private:
  void refill();
  std::array<std::uint32_t, 624> mt_;
  int pos_;
};

// The permutation np.random.shuffle(list(range(n))) gives after np.random.seed(seed).
std::vector<std::size_t> numpy_permutation(std::size_t n, std::uint32_t seed);

// Positions (0-based, into the labels given) picked for train and dev, in the order picked.
struct KShotSplit {
  std::vector<std::size_t> train_index, dev_index;
};

// labels[i] in [0, num_labels). A class with fewer than 2k examples is a bbt::Error naming the
// class (label_names[c] when given) and the counts. seed is np.random.seed's: 0 .. 2^32-1.
KShotSplit sample_k_shot(const std::vector<int>& labels, int num_labels, int k, std::int64_t seed,
                         const std::vector<std::string>& label_names = {});

}  // namespace bbt::data
