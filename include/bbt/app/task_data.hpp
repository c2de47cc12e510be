#pragma once
// The task pipeline of every subcommand (train, eval, score): the task's verbalizer, then each
// data file read and tokenized once with the reference's length rule (examples over 512 ids are
// dropped, whatever the prompt), then for a run the k-shot train/dev split and the test split,
// ready to broadcast. Built-in and custom tasks read files; the planted demo task generates its
// data with the model.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bbt/app/config.hpp"
#include "bbt/core/evaluator.hpp"
#include "bbt/data/encode.hpp"
#include "bbt/data/task.hpp"
#include "bbt/text/tokenizer.hpp"

namespace bbt::app {

// The task as far as the model and the losses need it.
struct TaskInfo {
  data::TaskSpec spec;  // planted: a two-label spec with no files
  std::vector<std::int64_t> label_ids;
};

TaskInfo resolve_task(const RunConfig& config, const text::Tokenizer& tokenizer);

// One data file of the task, read and encoded for config.prompt's mode and length.
struct TaskFile {
  std::size_t rows = 0;                // examples the reader kept
  data::EncodedDataset encoded;        // those within the length rule, with their source index
  std::map<std::string, long> dropped;  // reason -> count (the reader's and "longer than 512 tokens")
};

TaskFile read_task_file(const RunConfig& config, const TaskInfo& task, const text::Tokenizer& tokenizer,
                        const std::string& path);

// The examples at `positions` of an encoded file, as the evaluator takes them.
core::EncodedSplit to_split(const data::EncodedDataset& encoded, const std::vector<std::size_t>& positions);

struct TaskData {
  core::EncodedSplit train, dev, test;
  std::vector<std::int64_t> train_index, dev_index;  // positions in the train file's examples
  std::map<std::string, long> dropped;               // "train: too long" -> count, ...
  std::string summary;                               // one line for the log
};

// Reads (or, for the planted task, generates) and tokenizes the data of a run.
TaskData prepare_task_data(const RunConfig& config, const TaskInfo& task, const text::Tokenizer& tokenizer,
                           const core::Evaluator& evaluator);

}  // namespace bbt::app
