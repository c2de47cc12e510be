#include "bbt/model/npy.hpp"

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "bbt/common/error.hpp"
#include "bbt/model/safetensors.hpp"

namespace bbt::model {

torch::Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read '" + path + "'");
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    throw Error(path + ": not a .npy file (bad magic)");
  const int major = magic[6];
  std::uint32_t header_len = 0;
  if (major == 1) {
    unsigned char b[2];
    if (!in.read(reinterpret_cast<char*>(b), 2)) throw Error(path + ": truncated .npy header");
    header_len = b[0] | (b[1] << 8);
  } else if (major == 2 || major == 3) {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4)) throw Error(path + ": truncated .npy header");
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
  } else {
    throw Error(path + ": unsupported .npy version " + std::to_string(major));
  }
  if (header_len > (1u << 20)) throw Error(path + ": .npy header too large");
  std::string header(header_len, '\0');
  if (!in.read(header.data(), header_len)) throw Error(path + ": truncated .npy header");
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr'\\s*:\\s*'([^']*)'")))
    throw Error(path + ": .npy header has no descr");
  const std::string descr = m[1];
  if (std::regex_search(header, std::regex("'fortran_order'\\s*:\\s*True")))
    throw Error(path + ": Fortran-order .npy arrays are not supported");
  if (!std::regex_search(header, m, std::regex("'shape'\\s*:\\s*\\(([^)]*)\\)")))
    throw Error(path + ": .npy header has no shape");
  std::vector<std::int64_t> shape;
  std::stringstream ss(m[1].str());
  std::string item;
  std::int64_t numel = 1;
  while (std::getline(ss, item, ',')) {
    if (item.find_first_not_of(" ") == std::string::npos) continue;
    const long long v = std::stoll(item);
    if (v < 0 || v > (1LL << 40)) throw Error(path + ": bad .npy shape");
    shape.push_back(v);
    numel *= v;
    if (numel > (1LL << 40)) throw Error(path + ": .npy array too large");
  }
  torch::ScalarType type;
  std::size_t elem = 0;
  if (descr == "<f4" || descr == "=f4") {
    type = torch::kFloat32;
    elem = 4;
  } else if (descr == "<f8" || descr == "=f8") {
    type = torch::kFloat64;
    elem = 8;
  } else {
    throw Error(path + ": .npy dtype '" + descr + "' is not float32 or float64");
  }
  torch::Tensor t = torch::empty(shape, type);
  if (!in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(numel * elem)))
    throw Error(path + ": .npy data shorter than its shape says");
  return t.to(torch::kFloat32);
}

void write_npy(const std::string& path, const torch::Tensor& tensor) {
  const torch::Tensor t = tensor.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  std::string shape = "(";
  for (std::int64_t i = 0; i < t.dim(); ++i) shape += (i ? ", " : "") + std::to_string(t.size(i));
  shape += t.dim() == 1 ? ",)" : ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error("cannot write '" + path + "'");
  out.write("\x93NUMPY\x01\x00", 8);
  const std::uint16_t len = static_cast<std::uint16_t>(header.size());
  const char lb[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
  out.write(lb, 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * 4));
  if (!out) throw Error("cannot write '" + path + "'");
}

torch::Tensor read_prompt_file(const std::string& path, std::int64_t n_tokens, std::int64_t hidden) {
  torch::Tensor t;
  std::string name = "prompt";
  const bool is_st = path.size() >= 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0;
  if (is_st) {
    const auto file = SafetensorsFile::open(path);
    const auto names = file.names();
    if (file.contains("prompt")) {
      t = file.tensor("prompt");
    } else if (names.size() == 1) {
      name = names[0];
      t = file.tensor(name);
    } else {
      throw Error(path + ": expected one tensor or one named 'prompt'");
    }
  } else {
    t = read_npy(path);
  }
  if (t.dim() != 2 || t.size(0) != n_tokens || t.size(1) != hidden) {
    std::ostringstream ss;
    ss << path << ": prompt has shape " << t.sizes() << ", expected [" << n_tokens << ", " << hidden << "]";
    throw Error(ss.str());
  }
  return finite_or_throw(t, path, name);
}

}  // namespace bbt::model
