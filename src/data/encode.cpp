// Example -> ids layout shared by every backend (see REFERENCE.md, "add" and "cat" modes).
#include "bbt/data/encode.hpp"

#include <algorithm>
#include <set>

#include "bbt/common/error.hpp"

namespace bbt::data {
namespace {

std::string where(const Example& ex) { return "example at line " + std::to_string(ex.source_line); }

}  // namespace

std::string fill_template(const TaskSpec& task, const Example& example, PromptMode mode) {
  std::string tmpl = mode == PromptMode::kAdd ? task.template_add : task.template_cat;
  if (mode == PromptMode::kAdd) {
    static const std::string kPrompt = "{prompt}";
    if (tmpl.rfind(kPrompt, 0) != 0) throw UsageError("template '" + tmpl + "' does not start with {prompt}");
    tmpl.erase(0, kPrompt.size());
  }
  std::string out;
  out.reserve(tmpl.size() + example.text.size() + example.text_b.size());
  std::size_t i = 0;
  while (i < tmpl.size()) {
    if (tmpl.compare(i, 6, "{text}") == 0) {
      out += example.text;
      i += 6;
    } else if (tmpl.compare(i, 8, "{text_b}") == 0) {
      if (example.text_b.empty()) throw Error(where(example) + ": the template needs text_b, which is empty");
      out += example.text_b;
      i += 8;
    } else {
      out += tmpl[i++];
    }
  }
  return out;
}

EncodedExample encode_example(const TaskSpec& task, const Example& example, PromptMode mode,
                              int n_prompt_tokens, const SpecialIds& special, const EncodeFn& encode) {
  EncodedExample out;
  out.label = example.label;
  const std::string text = fill_template(task, example, mode);
  std::vector<std::int64_t> body = encode(text);
  const std::size_t n_prompt =
      mode == PromptMode::kAdd ? static_cast<std::size_t>(std::max(0, n_prompt_tokens)) : 0;
  out.ids.reserve(body.size() + n_prompt + 2);
  out.ids.push_back(special.bos);
  for (std::size_t i = 0; i < n_prompt; ++i)
    out.ids.push_back(kPromptPlaceholderOffset + static_cast<std::int64_t>(i));
  out.ids.insert(out.ids.end(), body.begin(), body.end());
  out.ids.push_back(special.eos);
  const auto masks = std::count(out.ids.begin(), out.ids.end(), special.mask);
  if (masks != 1)
    throw Error(where(example) + ": encoded input has " + std::to_string(masks) +
                " <mask> tokens, expected exactly one (does the text itself contain <mask>?)");
  out.mask_pos = static_cast<int>(std::find(out.ids.begin(), out.ids.end(), special.mask) - out.ids.begin());
  return out;
}

std::vector<int> EncodedDataset::labels() const {
  std::vector<int> out;
  out.reserve(examples.size());
  for (const EncodedExample& e : examples) out.push_back(e.label);
  return out;
}

EncodedDataset encode_dataset(const TaskSpec& task, const Dataset& data, PromptMode mode, int n_prompt_tokens,
                              const SpecialIds& special, const EncodeFn& encode, std::size_t max_len) {
  EncodedDataset out;
  out.examples.reserve(data.examples.size());
  for (std::size_t i = 0; i < data.examples.size(); ++i) {
    EncodedExample e;
    try {
      e = encode_example(task, data.examples[i], mode, n_prompt_tokens, special, encode);
    } catch (const UsageError&) {
      throw;
    } catch (const Error& err) {
      throw Error(data.path + ": " + err.what());
    }
    if (e.ids.size() > max_len) {
      ++out.dropped_too_long;
      continue;
    }
    out.examples.push_back(std::move(e));
    out.source_index.push_back(i);
  }
  return out;
}

std::vector<std::int64_t> verbalizer_ids(const TaskSpec& task, const EncodeFn& encode, bool strict) {
  std::vector<std::int64_t> ids;
  std::set<std::int64_t> seen;
  for (std::size_t k = 0; k < task.label_words.size(); ++k) {
    const std::string& word = task.label_words[k];
    const std::vector<std::int64_t> tokens = encode(word);
    if (tokens.empty()) throw UsageError("label word '" + word + "' encodes to no token");
    if (strict && tokens.size() != 1)
      throw UsageError("label word '" + word + "' is " + std::to_string(tokens.size()) +
                       " BPE tokens without a leading space; a verbalizer word must be a single token");
    if (!seen.insert(tokens[0]).second)
      throw UsageError("label word '" + word + "' shares its first BPE token with another label word");
    ids.push_back(tokens[0]);
  }
  return ids;
}

}  // namespace bbt::data
