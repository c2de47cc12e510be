#pragma once
// Writes a small random RoBERTa checkpoint (Hugging Face layout) for tests and demos.
#include <cstdint>
#include <string>

namespace bbt::model {

struct TinyModelOptions {
  std::string out_dir;
  std::int64_t layers = 2;
  std::int64_t hidden = 32;
  std::int64_t heads = 4;
  std::int64_t intermediate = 64;
  std::int64_t max_positions = 514;
  std::uint64_t seed = 0;
  double init_std = 0.02;
  std::string vocab_from;   // directory with vocab.json and merges.txt (required)
  bool tie_decoder = true;  // false: also write lm_head.decoder.weight (its own random matrix)
};

// Creates out_dir with config.json, model.safetensors, vocab.json, merges.txt.
void write_tiny_model(const TinyModelOptions& options);

}  // namespace bbt::model
