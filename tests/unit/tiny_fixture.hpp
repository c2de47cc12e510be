#pragma once
// Test fixtures shared by the unit tests that need a model on disk: a per-process scratch
// directory, a vocabulary with RoBERTa's special tokens, and tiny random checkpoints.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "bbt/model/tiny_model.hpp"

namespace bbt_test {

// A fresh directory under the system's temporary directory, one per test process.
inline std::string scratch(const std::string& prefix) {
  static const std::string dir = [&] {
    auto d = std::filesystem::temp_directory_path() / (prefix + "_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  return dir;
}

// vocab.json with the RoBERTa specials (ids 0..3, <mask> = vocab - 1), filler tokens between,
// and an empty merges.txt; written into dir once.
inline std::string write_vocab(const std::string& dir, std::int64_t vocab) {
  if (std::filesystem::exists(dir + "/vocab.json")) return dir;
  std::filesystem::create_directories(dir);
  std::ofstream v(dir + "/vocab.json");
  v << "{\"<s>\": 0, \"<pad>\": 1, \"</s>\": 2, \"<unk>\": 3";
  for (std::int64_t i = 4; i < vocab - 1; ++i) v << ", \"tok" << i << "\": " << i;
  v << ", \"<mask>\": " << vocab - 1 << "}\n";
  std::ofstream(dir + "/merges.txt") << "#version: 0.2\n";
  return dir;
}

// Writes the tiny model described by o into o.out_dir unless it is there already.
inline std::string tiny_model(const bbt::model::TinyModelOptions& o) {
  if (!std::filesystem::exists(o.out_dir + "/model.safetensors")) bbt::model::write_tiny_model(o);
  return o.out_dir;
}

}  // namespace bbt_test
