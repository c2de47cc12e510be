#pragma once
// Turns examples into model inputs: <s> + prompt placeholders (add mode) + the BPE ids of the
// filled-in template + </s>, and label words into verbalizer ids. The tokenizer is passed in.
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "bbt/data/dataset.hpp"
#include "bbt/data/task.hpp"

namespace bbt::data {

// Encodes text without adding <s> </s>; recognises special tokens such as <mask> inside it.
using EncodeFn = std::function<std::vector<std::int64_t>(std::string_view)>;

struct SpecialIds {
  std::int64_t bos, eos, mask;
};

// Vocabulary id of the first prompt placeholder in add mode (the reference uses 1000..1000+n-1).
constexpr std::int64_t kPromptPlaceholderOffset = 1000;
// RoBERTa's maximum input length; longer examples are dropped, never truncated.
constexpr std::size_t kMaxSequenceLength = 512;

struct EncodedExample {
  std::vector<std::int64_t> ids;
  int mask_pos;  // index of <mask> in ids (cat mode: before the model inserts its prompt positions)
  int label;
};

// The template of `mode` with {text} / {text_b} filled in (one pass: text is never re-scanned).
// In add mode the leading {prompt} is removed: what remains is encoded after the placeholders.
std::string fill_template(const TaskSpec& task, const Example& example, PromptMode mode);

// Throws bbt::Error when the encoded input has no or several <mask> ids, or the template needs
// {text_b} and the example has none.
EncodedExample encode_example(const TaskSpec& task, const Example& example, PromptMode mode,
                              int n_prompt_tokens, const SpecialIds& special, const EncodeFn& encode);

// A data set ready for the model. source_index[i] = index in Dataset::examples of examples[i].
struct EncodedDataset {
  std::vector<EncodedExample> examples;
  std::vector<std::size_t> source_index;
  long dropped_too_long = 0;

  std::vector<int> labels() const;
};

// Encodes every example, dropping (and counting) those with more than max_len ids, as the
// reference does before k-shot sampling.
EncodedDataset encode_dataset(const TaskSpec& task, const Dataset& data, PromptMode mode, int n_prompt_tokens,
                              const SpecialIds& special, const EncodeFn& encode,
                              std::size_t max_len = kMaxSequenceLength);

// First BPE id of each label word encoded WITHOUT a leading space. With `strict` (custom tasks)
// a word that is not exactly one token is a bbt::UsageError; two labels sharing an id always are.
std::vector<std::int64_t> verbalizer_ids(const TaskSpec& task, const EncodeFn& encode, bool strict);

}  // namespace bbt::data
