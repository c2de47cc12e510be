// libFuzzer target for the safetensors header parser (scripts/fuzz.sh builds and runs it).
// The input is a whole file; any bbt::Error is an accepted rejection, anything else a bug.
#include <cstddef>
#include <cstdint>

#include "bbt/common/error.hpp"
#include "bbt/model/safetensors_header.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto header =
        bbt::model::parse_safetensors_header(reinterpret_cast<const char*>(data), size, size, "fuzz");
    // Accepted headers must describe spans inside the input.
    for (const auto& [name, info] : header.tensors)
      if (header.data_offset + info.end > size || info.begin > info.end) __builtin_trap();
  } catch (const bbt::Error&) {
  }
  return 0;
}
