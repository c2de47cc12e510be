#pragma once
// The header of a .safetensors file, parsed and fully validated without touching tensor data.
// Only std + nlohmann json: a libFuzzer target can link this alone (tests/fuzz/).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bbt::model {

// The element types a checkpoint may use; everything else is rejected at parse time.
enum class Dtype { kF32, kF16, kBF16 };

std::size_t dtype_size(Dtype dtype);
const char* dtype_name(Dtype dtype);

// One tensor entry; begin/end are byte offsets relative to the start of the data region.
struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  std::int64_t numel() const;
};

// A validated header: every entry's span lies inside the data region and no two overlap.
struct SafetensorsHeader {
  std::uint64_t data_offset = 0;  // 8 + header length: where the data region starts in the file
  std::uint64_t data_size = 0;    // file size - data_offset
  std::map<std::string, TensorInfo> tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__", if any
};

// Largest header we accept; real headers are a few hundred kB at most.
constexpr std::uint64_t kMaxSafetensorsHeader = 100ull * 1000 * 1000;

// Parses the header at the start of `data` (`size` readable bytes of a file of `file_size` bytes).
// Throws bbt::Error naming `file_name` (and the tensor, where there is one) on any defect.
SafetensorsHeader parse_safetensors_header(const char* data, std::size_t size, std::size_t file_size,
                                           const std::string& file_name = "<memory>");

}  // namespace bbt::model
