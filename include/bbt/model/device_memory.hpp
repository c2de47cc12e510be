#pragma once
// Device memory of the model's accelerator (the paper's Table 4 server memory on a GPU).
#include <torch/torch.h>

#include <cstdint>

namespace bbt::model {

// Peak bytes the CUDA caching allocator has reserved on `device` so far; 0 on CPU, and 0 in a
// build whose libtorch has no CUDA.
std::int64_t peak_device_bytes(const torch::Device& device);

}  // namespace bbt::model
