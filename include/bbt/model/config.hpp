#pragma once
// The architecture fields of a Hugging Face RoBERTa config.json.
#include <cstdint>
#include <string>

namespace bbt::model {

struct RobertaConfig {
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t max_position_embeddings = 0;
  std::int64_t type_vocab_size = 0;
  double layer_norm_eps = 1e-5;
  std::int64_t pad_token_id = 1;
  std::int64_t bos_token_id = 0;
  std::int64_t eos_token_id = 2;
};

// Reads and checks config.json; errors name the file and the key.
RobertaConfig read_config(const std::string& path);

}  // namespace bbt::model
