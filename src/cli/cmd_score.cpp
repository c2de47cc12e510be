// `bbt score`: the verbalizer logits of a model on a data file under a given (or zero) prompt,
// one CSV row per example, for checking a prompt outside a run and comparing with other tools.
#include <torch/torch.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "bbt/common/error.hpp"
#include "bbt/data/dataset.hpp"
#include "bbt/data/encode.hpp"
#include "bbt/data/task.hpp"
#include "bbt/app/config.hpp"
#include "bbt/app/task_data.hpp"
#include "bbt/model/npy.hpp"
#include "bbt/model/roberta.hpp"
#include "bbt/text/tokenizer.hpp"
#include "commands.hpp"
#include "options.hpp"

namespace bbt::cli {

namespace po = boost::program_options;

namespace {

// The keys score shares with `bbt train`, and the spellings it had before.
const std::vector<FlagAlias> kAliases = {
    {"model.path", "model"},        {"task.name", "task"},
    {"prompt.mode", "prompt-mode"}, {"prompt.n_tokens", "n-prompt-tokens"},
    {"task.template", "template"},  {"task.verbalizer", "verbalizer"},
    {"model.threads", "threads"},   {"eval.batch_size", "batch-size"},
};

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};

// The prompt matrix [n, hidden]: from the .npy (its rows fix n), else zeros of n_tokens rows.
torch::Tensor load_prompt(const std::string& npy, int n_tokens, bool n_given, std::int64_t hidden) {
  if (npy.empty()) return torch::zeros({n_tokens, hidden}, torch::kFloat32);
  torch::Tensor p = model::read_npy(npy);
  if (p.dim() != 2 || p.size(1) != hidden)
    throw UsageError("--prompt-npy '" + npy + "': expected a float32 array [n_prompt_tokens, " +
                     std::to_string(hidden) + "], got shape " + c10::str(p.sizes()));
  if (n_given && p.size(0) != n_tokens)
    throw UsageError("--prompt-npy '" + npy + "' has " + std::to_string(p.size(0)) +
                     " rows but --prompt.n_tokens/--n-prompt-tokens is " + std::to_string(n_tokens));
  if (!torch::isfinite(p).all().item<bool>())
    throw Error("--prompt-npy '" + npy + "': the prompt holds NaN or infinite values");
  return p.to(torch::kFloat32).contiguous();
}

}  // namespace

int cmd_score(const Args& args) {
  std::string model_dir, task_name, data_path, prompt_npy, mode_name, out_path, tmpl, verbalizer;
  int n_tokens = 50, threads = 0;
  std::int64_t batch = 64;
  po::options_description desc(
      "usage: bbt score --model.path DIR --task.name NAME --data FILE [--prompt-npy FILE] --out OUT.csv\n\n"
      "Writes index,label,logit_0,...,logit_{K-1} per example of FILE (index = 0-based position among\n"
      "the examples the reader keeps; examples over 512 tokens are skipped). Keys shared with\n"
      "`bbt train` are spelled as there; the older spellings (--model, --task, --prompt-mode,\n"
      "--n-prompt-tokens, --template, --verbalizer, --threads, --batch-size) still work.\n\noptions");
  desc.add_options()("help", "this text")                                                                   //
      ("model.path", po::value(&model_dir), "model directory (config.json, model.safetensors, tokenizer)")  //
      ("task.name", po::value(&task_name),
       "sst2 | yelp_polarity | ag_news | dbpedia | mrpc | snli | rte | custom")            //
      ("data", po::value(&data_path), "data file in the task's canonical format")          //
      ("prompt-npy", po::value(&prompt_npy), "prompt, float32 [n_prompt_tokens, hidden]")  //
      ("prompt.mode", po::value(&mode_name)->default_value("add"),
       "add: added to placeholder embeddings; cat: inserted after <s>")  //
      ("prompt.n_tokens", po::value(&n_tokens)->default_value(50),
       "prompt length when no --prompt-npy is given (a given .npy fixes it)")  //
      ("task.template", po::value(&tmpl),
       "custom task: template, e.g. '{prompt} {text} It was <mask> .'")                          //
      ("task.verbalizer", po::value(&verbalizer), "custom task: label words, e.g. 'bad,great'")  //
      ("model.threads", po::value(&threads)->default_value(0),
       "intra-op threads (0 = libtorch's default)")                                       //
      ("eval.batch_size", po::value(&batch)->default_value(64), "rows per forward pass")  //
      ("out", po::value(&out_path), "output CSV");
  const po::variables_map vm = parse_options(args, desc, nullptr, kAliases);
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  for (const char* required : {"model.path", "task.name", "data", "out"})
    if (!vm.count(required))
      throw UsageError(args[0] + ": option '--" + std::string(required) + "' is required");
  if (n_tokens < 0) throw UsageError(args[0] + ": --prompt.n_tokens must be >= 0");
  if (threads < 0) throw UsageError(args[0] + ": --model.threads must be >= 0");
  if (batch < 1) throw UsageError(args[0] + ": --eval.batch_size must be >= 1");
  // The task pipeline of `bbt train` (app/task_data): the same task resolution, reader, encoding
  // and length rule (examples over 512 ids dropped, whatever the prompt).
  app::RunConfig cfg;
  try {
    app::set_config_value(cfg, "prompt.mode", mode_name);
  } catch (const UsageError& e) {
    throw UsageError(args[0] + ": " + flag_names(kAliases[2]) + ": " + e.what());
  }
  if (task_name == "planted")
    throw UsageError(args[0] + ": the planted task has no data files; score a built-in or custom task");
  if (task_name == "custom" && (tmpl.empty() || verbalizer.empty()))
    throw UsageError(args[0] + ": --task.name custom needs --task.template and --task.verbalizer");
  if (task_name != "custom" && (!tmpl.empty() || !verbalizer.empty()))
    throw UsageError(args[0] + ": --task.template and --task.verbalizer are for --task.name custom only");
  app::set_config_value(cfg, "task.name", task_name);
  cfg.task.template_text = tmpl;
  cfg.task.verbalizer = verbalizer;
  if (threads > 0) at::set_num_threads(threads);

  const text::Tokenizer tokenizer = text::Tokenizer::load(model_dir);
  const app::TaskInfo task = app::resolve_task(cfg, tokenizer);
  const std::vector<std::int64_t>& label_ids = task.label_ids;

  model::LoadOptions lo;
  lo.max_batch = batch;
  const model::Roberta model = model::Roberta::load(model_dir, lo);
  const std::int64_t hidden = model.config().hidden_size;
  const torch::Tensor prompt =
      load_prompt(prompt_npy, n_tokens, !vm["prompt.n_tokens"].defaulted(), hidden);  // [n, H]
  const int n = static_cast<int>(prompt.size(0));
  const model::PromptMode mode = cfg.prompt.mode;
  cfg.prompt.n_tokens = n;

  const app::TaskFile file = app::read_task_file(cfg, task, tokenizer, data_path);
  const data::EncodedDataset& enc = file.encoded;

  torch::Tensor logits;  // [rows, K]
  const std::size_t m = enc.examples.size();
  if (m > 0) {
    model::MaskBatch mb;
    for (const auto& e : enc.examples) {
      mb.ids.push_back(e.ids);
      mb.mask_pos.push_back(e.mask_pos);
    }
    torch::Tensor prompts;  // undefined = no prompt: add mode with 0 tokens
    if (n > 0) prompts = prompt.unsqueeze(0);
    logits = model
                 .mask_logits(mb, prompts, torch::zeros({static_cast<std::int64_t>(m)}, torch::kInt64), mode,
                              torch::tensor(label_ids, torch::kInt64))
                 .to(torch::kFloat32)
                 .contiguous();
  }

  std::unique_ptr<std::FILE, FileCloser> out(std::fopen(out_path.c_str(), "w"));
  if (!out) throw Error("cannot write '" + out_path + "'");
  std::fprintf(out.get(), "index,label");
  for (std::size_t k = 0; k < label_ids.size(); ++k) std::fprintf(out.get(), ",logit_%zu", k);
  std::fprintf(out.get(), "\n");
  const std::size_t k_labels = label_ids.size();
  const float* ptr = m > 0 ? logits.data_ptr<float>() : nullptr;
  for (std::size_t i = 0; i < m; ++i) {
    std::fprintf(out.get(), "%zu,%d", enc.source_index[i], enc.examples[i].label);
    // %.9g round-trips every float32.
    for (std::size_t k = 0; k < k_labels; ++k) std::fprintf(out.get(), ",%.9g", ptr[i * k_labels + k]);
    std::fprintf(out.get(), "\n");
  }
  if (std::fflush(out.get()) != 0 || std::ferror(out.get())) throw Error("error writing '" + out_path + "'");
  if (std::fclose(out.release()) != 0) throw Error("error writing '" + out_path + "'");

  std::cerr << "bbt score: " << m << " example(s) of " << data_path << " -> " << out_path;
  for (const auto& [reason, count] : file.dropped)
    if (count > 0) std::cerr << "; dropped " << count << " (" << reason << ")";
  std::cerr << "\n";
  return 0;
}

}  // namespace bbt::cli
