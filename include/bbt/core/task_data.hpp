#pragma once
// Rank 0's data preparation for a run: the task's verbalizer, the k-shot train/dev split and the
// test split, tokenized and ready to broadcast. Built-in and custom tasks read files; the planted
// demo task generates its data with the model.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bbt/core/evaluator.hpp"
#include "bbt/data/task.hpp"
#include "bbt/io/config.hpp"
#include "bbt/text/tokenizer.hpp"

namespace bbt::core {

// The task as far as the model and the losses need it.
struct TaskInfo {
  data::TaskSpec spec;  // planted: a two-label spec with no files
  std::vector<std::int64_t> label_ids;
};

TaskInfo resolve_task(const io::RunConfig& config, const text::Tokenizer& tokenizer);

struct TaskData {
  EncodedSplit train, dev, test;
  std::vector<std::int64_t> train_index, dev_index;  // positions in the train file's examples
  std::map<std::string, long> dropped;               // "train: too long" -> count, ...
  std::string summary;                               // one line for the log
};

// Reads (or, for the planted task, generates) and tokenizes the data of a run.
TaskData prepare_task_data(const io::RunConfig& config, const TaskInfo& task,
                           const text::Tokenizer& tokenizer, const Evaluator& evaluator);

}  // namespace bbt::core
