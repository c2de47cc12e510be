#pragma once
// Reading (memory-mapped) and writing .safetensors checkpoints as torch tensors.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bbt/model/safetensors_header.hpp"

namespace bbt::model {

// A read-only memory mapping of a whole file, unmapped on destruction.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const char* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  const char* data_ = nullptr;
  std::size_t size_ = 0;
};

// An opened checkpoint: the header is validated on open; tensors are copied out on request.
class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  // Throws bbt::Error naming the file and tensor when absent.
  const TensorInfo& info(const std::string& name) const;
  // A float32 CPU copy of the tensor (F16/BF16 widened exactly).
  torch::Tensor tensor(const std::string& name) const;
  // The same float32 values written to dst (info(name).numel() floats), with no other copy.
  void read_into(const std::string& name, float* dst) const;
  const SafetensorsHeader& header() const { return header_; }

 private:
  SafetensorsFile(std::string path, std::shared_ptr<MappedFile> map, SafetensorsHeader header);
  std::string path_;
  std::shared_ptr<MappedFile> map_;
  SafetensorsHeader header_;
};

// Returns `t` if every value of it is finite; otherwise throws bbt::Error naming the file, the
// tensor and how many values are NaN or Inf. For everything loaded from disk (weights, prompts).
torch::Tensor finite_or_throw(const torch::Tensor& t, const std::string& file, const std::string& name);

// Writes tensors (float32, float16 or bfloat16; any device) in the safetensors format.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

}  // namespace bbt::model
