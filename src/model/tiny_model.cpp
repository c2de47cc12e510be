// Random small RoBERTa checkpoints: the fixture every model/CLI test runs on.
#include "bbt/model/tiny_model.hpp"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bbt/common/error.hpp"
#include "bbt/common/json.hpp"
#include "bbt/common/rng.hpp"
#include "bbt/model/safetensors.hpp"

namespace bbt::model {

namespace fs = std::filesystem;

namespace {

std::int64_t vocab_id(const nlohmann::json& vocab, const std::string& file, const char* token) {
  const auto it = vocab.find(token);
  if (it == vocab.end() || !it->is_number_integer())
    throw Error("vocabulary '" + file + "': no integer id for '" + token + "'");
  return it->get<std::int64_t>();
}

}  // namespace

void write_tiny_model(const TinyModelOptions& o) {
  if (o.layers < 0 || o.hidden < 1 || o.heads < 1 || o.intermediate < 1)
    throw UsageError("tiny model: layers must be >= 0, hidden, heads and intermediate >= 1");
  if (o.hidden % o.heads != 0)
    throw UsageError("tiny model: the hidden size must be a multiple of the heads");
  if (!(o.init_std > 0)) throw UsageError("tiny model: the init std must be positive");
  if (o.vocab_from.empty()) throw UsageError("tiny model: no vocabulary directory given");
  const std::string vocab_path = o.vocab_from + "/vocab.json";
  const std::string merges_path = o.vocab_from + "/merges.txt";
  const nlohmann::json vocab = read_json_file(vocab_path);
  if (!fs::exists(merges_path)) throw Error("missing merges file '" + merges_path + "'");
  if (!vocab.is_object()) throw Error("vocabulary '" + vocab_path + "': not a JSON object");
  const auto V = static_cast<std::int64_t>(vocab.size());
  if (V < 1050)
    throw Error("vocabulary '" + vocab_path + "' has " + std::to_string(V) +
                " entries; at least 1050 are needed for the prompt placeholder ids 1000..1049");
  for (const auto& [tok, id] : vocab.items())
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() >= V)
      throw Error("vocabulary '" + vocab_path + "': id of '" + tok + "' is not in 0.." +
                  std::to_string(V - 1));
  const auto bos = vocab_id(vocab, vocab_path, "<s>");
  const auto pad = vocab_id(vocab, vocab_path, "<pad>");
  const auto eos = vocab_id(vocab, vocab_path, "</s>");
  vocab_id(vocab, vocab_path, "<mask>");
  if (o.max_positions < pad + 3)
    throw UsageError("tiny model: " + std::to_string(o.max_positions) +
                     " positions is too few for <pad> id " + std::to_string(pad) + " (at least " +
                     std::to_string(pad + 3) + ")");

  const std::int64_t H = o.hidden, F = o.intermediate;
  Rng rng(o.seed);
  // Tensors are drawn in the order they are listed: the same seed gives the same checkpoint anywhere.
  auto normal = [&](std::vector<std::int64_t> shape) {
    auto t = torch::empty(shape, torch::kFloat32);
    float* p = t.data_ptr<float>();
    for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(o.init_std * rng.normal());
    return t;
  };
  auto ones = [](std::int64_t n) { return torch::ones({n}, torch::kFloat32); };
  auto zeros = [](std::int64_t n) { return torch::zeros({n}, torch::kFloat32); };
  std::vector<std::pair<std::string, torch::Tensor>> w;
  const std::string e = "roberta.embeddings.";
  w.emplace_back(e + "word_embeddings.weight", normal({V, H}));
  w.emplace_back(e + "position_embeddings.weight", normal({o.max_positions, H}));
  w.emplace_back(e + "token_type_embeddings.weight", normal({1, H}));
  w.emplace_back(e + "LayerNorm.weight", ones(H));
  w.emplace_back(e + "LayerNorm.bias", zeros(H));
  for (std::int64_t l = 0; l < o.layers; ++l) {
    const std::string p = "roberta.encoder.layer." + std::to_string(l) + ".";
    for (const char* s : {"query", "key", "value"}) {
      w.emplace_back(p + "attention.self." + s + ".weight", normal({H, H}));
      w.emplace_back(p + "attention.self." + s + ".bias", normal({H}));
    }
    w.emplace_back(p + "attention.output.dense.weight", normal({H, H}));
    w.emplace_back(p + "attention.output.dense.bias", normal({H}));
    w.emplace_back(p + "attention.output.LayerNorm.weight", ones(H));
    w.emplace_back(p + "attention.output.LayerNorm.bias", zeros(H));
    w.emplace_back(p + "intermediate.dense.weight", normal({F, H}));
    w.emplace_back(p + "intermediate.dense.bias", normal({F}));
    w.emplace_back(p + "output.dense.weight", normal({H, F}));
    w.emplace_back(p + "output.dense.bias", normal({H}));
    w.emplace_back(p + "output.LayerNorm.weight", ones(H));
    w.emplace_back(p + "output.LayerNorm.bias", zeros(H));
  }
  w.emplace_back("lm_head.dense.weight", normal({H, H}));
  w.emplace_back("lm_head.dense.bias", normal({H}));
  w.emplace_back("lm_head.layer_norm.weight", ones(H));
  w.emplace_back("lm_head.layer_norm.bias", zeros(H));
  w.emplace_back("lm_head.bias", normal({V}));
  if (!o.tie_decoder) w.emplace_back("lm_head.decoder.weight", normal({V, H}));

  nlohmann::json cfg = {
      {"architectures", {"RobertaForMaskedLM"}},
      {"model_type", "roberta"},
      {"vocab_size", V},
      {"hidden_size", H},
      {"num_hidden_layers", o.layers},
      {"num_attention_heads", o.heads},
      {"intermediate_size", F},
      {"hidden_act", "gelu"},
      {"hidden_dropout_prob", 0.1},
      {"attention_probs_dropout_prob", 0.1},
      {"max_position_embeddings", o.max_positions},
      {"type_vocab_size", 1},
      {"initializer_range", o.init_std},
      {"layer_norm_eps", 1e-5},
      {"pad_token_id", pad},
      {"bos_token_id", bos},
      {"eos_token_id", eos},
      {"position_embedding_type", "absolute"},
      {"tie_word_embeddings", o.tie_decoder},
  };
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) throw Error("cannot create directory '" + o.out_dir + "': " + ec.message());
  {
    std::ofstream out(o.out_dir + "/config.json");
    if (!out) throw Error("cannot write '" + o.out_dir + "/config.json'");
    out << cfg.dump(2) << "\n";
  }
  write_safetensors(o.out_dir + "/model.safetensors", w);
  fs::copy_file(vocab_path, o.out_dir + "/vocab.json", fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::copy_file(merges_path, o.out_dir + "/merges.txt", fs::copy_options::overwrite_existing, ec);
  if (ec) throw Error("cannot copy the vocabulary into '" + o.out_dir + "': " + ec.message());
}

}  // namespace bbt::model
