// Memory-mapped safetensors reading and a plain writer.
#include "bbt/model/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bbt/common/error.hpp"

namespace bbt::model {

namespace {

torch::ScalarType to_scalar_type(Dtype dtype) {
  switch (dtype) {
    case Dtype::kF32:
      return torch::kFloat32;
    case Dtype::kF16:
      return torch::kFloat16;
    case Dtype::kBF16:
      return torch::kBFloat16;
  }
  return torch::kFloat32;
}

}  // namespace

MappedFile::MappedFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error("cannot stat '" + path + "': " + std::strerror(err));
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ > 0) {
    // MAP_POPULATE: the whole file is mapped up front (page cache warm: no copy), far cheaper than
    // one page fault per 4 KiB as the weights are read (a large share of the load time otherwise).
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw Error("cannot mmap '" + path + "': " + std::strerror(err));
    }
    data_ = static_cast<const char*>(p);
  }
  ::close(fd);  // the mapping stays valid without the descriptor
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
}

SafetensorsFile::SafetensorsFile(std::string path, std::shared_ptr<MappedFile> map, SafetensorsHeader header)
    : path_(std::move(path)), map_(std::move(map)), header_(std::move(header)) {}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto map = std::make_shared<MappedFile>(path);
  auto header = parse_safetensors_header(map->data(), map->size(), map->size(), path);
  return SafetensorsFile(path, std::move(map), std::move(header));
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& [name, info] : header_.tensors) out.push_back(name);
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const { return header_.tensors.count(name) > 0; }

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = header_.tensors.find(name);
  if (it == header_.tensors.end()) throw Error("safetensors file '" + path_ + "': no tensor '" + name + "'");
  return it->second;
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const auto& ti = info(name);
  // Copy first: data offsets need not be aligned for the element type.
  auto raw = torch::empty(ti.shape, torch::TensorOptions().dtype(to_scalar_type(ti.dtype)));
  if (ti.end > ti.begin)
    std::memcpy(raw.data_ptr(), map_->data() + header_.data_offset + ti.begin, ti.end - ti.begin);
  return ti.dtype == Dtype::kF32 ? raw : raw.to(torch::kFloat32);
}

void SafetensorsFile::read_into(const std::string& name, float* dst) const {
  const auto& ti = info(name);
  const char* src = map_->data() + header_.data_offset + ti.begin;
  const std::size_t bytes = ti.end - ti.begin;
  if (ti.dtype == Dtype::kF32) {
    if (bytes > 0) std::memcpy(dst, src, bytes);
    return;
  }
  // 16-bit types: copied into an aligned buffer first (offsets need not be aligned), then widened
  // exactly into dst.
  auto raw = torch::empty(ti.shape, torch::TensorOptions().dtype(to_scalar_type(ti.dtype)));
  if (bytes > 0) std::memcpy(raw.data_ptr(), src, bytes);
  torch::from_blob(dst, ti.shape, torch::kFloat32).copy_(raw);
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<torch::Tensor> host;
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    std::string dtype;
    if (t.scalar_type() == torch::kFloat32) {
      dtype = "F32";
    } else if (t.scalar_type() == torch::kFloat16) {
      dtype = "F16";
    } else if (t.scalar_type() == torch::kBFloat16) {
      dtype = "BF16";
    } else {
      throw Error("write_safetensors '" + path + "': tensor '" + name + "' has an unsupported dtype");
    }
    auto c = t.to(torch::kCPU).contiguous();
    const std::uint64_t nbytes = c.numel() * c.element_size();
    header[name] = {
        {"dtype", dtype}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    host.push_back(std::move(c));
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');  // the format pads the header with spaces
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error("cannot write '" + path + "'");
  const std::uint64_t len = text.size();
  char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  out.write(len_bytes, 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& c : host)
    out.write(static_cast<const char*>(c.data_ptr()),
              static_cast<std::streamsize>(c.numel() * c.element_size()));
  if (!out) throw Error("error writing '" + path + "'");
}

torch::Tensor finite_or_throw(const torch::Tensor& t, const std::string& file, const std::string& name) {
  if (!t.is_floating_point()) return t;
  const std::int64_t bad = t.numel() - torch::isfinite(t).sum().item<std::int64_t>();
  if (bad > 0)
    throw Error(file + ": tensor '" + name + "' holds " + std::to_string(bad) + " non-finite value" +
                (bad == 1 ? "" : "s") + " (NaN or Inf) of " + std::to_string(t.numel()));
  return t;
}

}  // namespace bbt::model
