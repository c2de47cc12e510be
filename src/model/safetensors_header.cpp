// Parser for the safetensors header. Deliberately free of torch so that it can be fuzzed alone.
#include "bbt/model/safetensors_header.hpp"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "bbt/common/error.hpp"

namespace bbt::model {

namespace {

[[noreturn]] void fail(const std::string& file, const std::string& what) {
  throw Error("safetensors file '" + file + "': " + what);
}

[[noreturn]] void fail_tensor(const std::string& file, const std::string& tensor, const std::string& what) {
  fail(file, "tensor '" + tensor + "': " + what);
}

// A JSON value as a non-negative 64-bit integer, or a tensor-named error.
std::uint64_t as_u64(const nlohmann::json& v, const std::string& file, const std::string& tensor,
                     const std::string& what) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer()) fail_tensor(file, tensor, what + " is negative (" + v.dump() + ")");
  fail_tensor(file, tensor, what + " is not an integer (" + v.dump() + ")");
}

TensorInfo parse_entry(const std::string& name, const nlohmann::json& e, std::uint64_t data_size,
                       const std::string& file) {
  if (!e.is_object()) fail_tensor(file, name, "entry is not a JSON object");
  TensorInfo info;
  info.name = name;
  const auto dt = e.find("dtype");
  if (dt == e.end() || !dt->is_string()) fail_tensor(file, name, "missing or non-string 'dtype'");
  const auto dts = dt->get<std::string>();
  if (dts == "F32") {
    info.dtype = Dtype::kF32;
  } else if (dts == "F16") {
    info.dtype = Dtype::kF16;
  } else if (dts == "BF16") {
    info.dtype = Dtype::kBF16;
  } else {
    fail_tensor(file, name, "unsupported dtype '" + dts + "' (expected F32, F16 or BF16)");
  }
  const auto sh = e.find("shape");
  if (sh == e.end() || !sh->is_array()) fail_tensor(file, name, "missing or non-array 'shape'");
  if (sh->size() > 8) fail_tensor(file, name, "shape has " + std::to_string(sh->size()) + " dimensions");
  // Element count and byte size in unsigned 64 bits with explicit overflow checks.
  const std::uint64_t limit = std::numeric_limits<std::int64_t>::max();
  std::uint64_t numel = 1;
  for (const auto& d : *sh) {
    const std::uint64_t n = as_u64(d, file, name, "shape dimension");
    if (n > limit) fail_tensor(file, name, "shape dimension " + std::to_string(n) + " too large");
    if (n != 0 && numel > limit / n) fail_tensor(file, name, "shape " + sh->dump() + " overflows");
    numel *= n;
    info.shape.push_back(static_cast<std::int64_t>(n));
  }
  const std::uint64_t elem = dtype_size(info.dtype);
  if (numel > limit / elem) fail_tensor(file, name, "byte size of shape " + sh->dump() + " overflows");
  const std::uint64_t nbytes = numel * elem;
  const auto off = e.find("data_offsets");
  if (off == e.end() || !off->is_array() || off->size() != 2)
    fail_tensor(file, name, "'data_offsets' must be an array [begin, end]");
  info.begin = as_u64((*off)[0], file, name, "data_offsets begin");
  info.end = as_u64((*off)[1], file, name, "data_offsets end");
  if (info.begin > info.end)
    fail_tensor(file, name,
                "data_offsets begin " + std::to_string(info.begin) + " > end " + std::to_string(info.end));
  if (info.end > data_size)
    fail_tensor(file, name,
                "data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
                    ") outside the data region of " + std::to_string(data_size) + " bytes");
  if (info.end - info.begin != nbytes)
    fail_tensor(file, name,
                "data_offsets span " + std::to_string(info.end - info.begin) + " bytes but " + dts +
                    " shape " + sh->dump() + " needs " + std::to_string(nbytes));
  return info;
}

}  // namespace

std::size_t dtype_size(Dtype dtype) { return dtype == Dtype::kF32 ? 4 : 2; }

const char* dtype_name(Dtype dtype) {
  switch (dtype) {
    case Dtype::kF32:
      return "F32";
    case Dtype::kF16:
      return "F16";
    case Dtype::kBF16:
      return "BF16";
  }
  return "?";
}

std::int64_t TensorInfo::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

SafetensorsHeader parse_safetensors_header(const char* data, std::size_t size, std::size_t file_size,
                                           const std::string& file_name) {
  if (size > file_size) fail(file_name, "more bytes given than the file holds");
  if (size < 8)
    fail(file_name, "truncated: " + std::to_string(file_size) + " bytes, no 8-byte header length");
  std::uint64_t len = 0;
  for (int i = 7; i >= 0; --i) len = (len << 8) | static_cast<unsigned char>(data[i]);  // little-endian
  if (len > kMaxSafetensorsHeader)
    fail(file_name, "header length " + std::to_string(len) + " exceeds the limit of " +
                        std::to_string(kMaxSafetensorsHeader) + " bytes");
  if (len > file_size - 8)
    fail(file_name, "truncated: header length " + std::to_string(len) + " but only " +
                        std::to_string(file_size - 8) + " bytes follow");
  if (len > size - 8) fail(file_name, "header not fully readable");
  SafetensorsHeader header;
  header.data_offset = 8 + len;
  header.data_size = file_size - header.data_offset;

  nlohmann::json j;
  try {
    j = nlohmann::json::parse(data + 8, data + 8 + len);
  } catch (const nlohmann::json::exception& e) {
    fail(file_name, std::string("header is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail(file_name, "header is not a JSON object");

  std::vector<const TensorInfo*> by_offset;
  for (const auto& [key, value] : j.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail(file_name, "'__metadata__' is not a JSON object");
      for (const auto& [mk, mv] : value.items())
        header.metadata[mk] = mv.is_string() ? mv.get<std::string>() : mv.dump();
      continue;
    }
    auto info = parse_entry(key, value, header.data_size, file_name);
    header.tensors.emplace(key, std::move(info));
  }
  // Empty tensors occupy no bytes and cannot overlap anything.
  for (const auto& [name, info] : header.tensors)
    if (info.end > info.begin) by_offset.push_back(&info);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (std::size_t i = 1; i < by_offset.size(); ++i) {
    const auto* prev = by_offset[i - 1];
    const auto* cur = by_offset[i];
    if (cur->begin < prev->end)
      fail(file_name, "tensor '" + cur->name + "' [" + std::to_string(cur->begin) + ", " +
                          std::to_string(cur->end) + ") overlaps tensor '" + prev->name + "' [" +
                          std::to_string(prev->begin) + ", " + std::to_string(prev->end) + ")");
  }
  return header;
}

}  // namespace bbt::model
