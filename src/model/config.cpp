// config.json reader for RoBERTa checkpoints.
#include "bbt/model/config.hpp"

#include <nlohmann/json.hpp>

#include "bbt/common/error.hpp"
#include "bbt/common/json.hpp"

namespace bbt::model {

namespace {

std::int64_t get_int(const nlohmann::json& j, const std::string& path, const char* key, std::int64_t min) {
  const auto it = j.find(key);
  if (it == j.end()) throw Error("config file '" + path + "': missing key '" + key + "'");
  if (!it->is_number_integer())
    throw Error("config file '" + path + "': key '" + key + "' is not an integer (" + it->dump() + ")");
  const auto v = it->get<std::int64_t>();
  if (v < min)
    throw Error("config file '" + path + "': key '" + key + "' = " + std::to_string(v) + " is below " +
                std::to_string(min));
  return v;
}

void expect_string(const nlohmann::json& j, const std::string& path, const char* key, const char* want) {
  const auto it = j.find(key);
  if (it == j.end()) return;
  if (!it->is_string() || it->get<std::string>() != want)
    throw Error("config file '" + path + "': key '" + key + "' = " + it->dump() +
                " is not supported (want \"" + want + "\")");
}

}  // namespace

RobertaConfig read_config(const std::string& path) {
  const nlohmann::json j = read_json_file(path);
  if (!j.is_object()) throw Error("config file '" + path + "': not a JSON object");
  RobertaConfig c;
  c.vocab_size = get_int(j, path, "vocab_size", 1);
  c.hidden_size = get_int(j, path, "hidden_size", 1);
  c.num_hidden_layers = get_int(j, path, "num_hidden_layers", 0);
  c.num_attention_heads = get_int(j, path, "num_attention_heads", 1);
  c.intermediate_size = get_int(j, path, "intermediate_size", 1);
  c.max_position_embeddings = get_int(j, path, "max_position_embeddings", 1);
  c.type_vocab_size = get_int(j, path, "type_vocab_size", 1);
  c.pad_token_id = get_int(j, path, "pad_token_id", 0);
  c.bos_token_id = get_int(j, path, "bos_token_id", 0);
  c.eos_token_id = get_int(j, path, "eos_token_id", 0);
  const auto eps = j.find("layer_norm_eps");
  if (eps == j.end()) throw Error("config file '" + path + "': missing key 'layer_norm_eps'");
  if (!eps->is_number() || eps->get<double>() <= 0)
    throw Error("config file '" + path + "': key 'layer_norm_eps' is not a positive number (" + eps->dump() +
                ")");
  c.layer_norm_eps = eps->get<double>();
  if (c.hidden_size % c.num_attention_heads != 0)
    throw Error("config file '" + path + "': key 'hidden_size' = " + std::to_string(c.hidden_size) +
                " is not a multiple of 'num_attention_heads' = " + std::to_string(c.num_attention_heads));
  if (c.pad_token_id >= c.vocab_size)
    throw Error("config file '" + path + "': key 'pad_token_id' is outside the vocabulary");
  if (c.max_position_embeddings <= c.pad_token_id + 1)
    throw Error("config file '" + path + "': key 'max_position_embeddings' leaves no room after padding_idx");
  // Only the architecture this code implements.
  expect_string(j, path, "hidden_act", "gelu");
  expect_string(j, path, "position_embedding_type", "absolute");
  return c;
}

}  // namespace bbt::model
