#pragma once
// Prompts as files: float32 .npy arrays (numpy's format version 1/2, little-endian, C order),
// and p0 from .npy or .safetensors.
#include <torch/torch.h>

#include <string>

namespace bbt::model {

// Reads a float32 (or float64, converted) C-order array; errors name the file.
torch::Tensor read_npy(const std::string& path);
// Writes a float32 C-order array (any shape).
void write_npy(const std::string& path, const torch::Tensor& tensor);
// A prompt matrix [n_tokens, hidden] from .npy or .safetensors (its only tensor, or "prompt");
// the shape is checked against the expectation and named in the error.
torch::Tensor read_prompt_file(const std::string& path, std::int64_t n_tokens, std::int64_t hidden);

}  // namespace bbt::model
