// bbt::model safetensors: round trips and a corpus of hostile headers, each rejected with an
// error that names the file and (where there is one) the tensor.
#include "bbt/model/safetensors.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "bbt/common/error.hpp"

namespace fs = std::filesystem;
using bbt::model::SafetensorsFile;

namespace {

std::string scratch() {
  static const std::string dir = [] {
    auto d = fs::temp_directory_path() / ("bbt_safetensors_test_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d.string();
  }();
  return dir;
}

// Writes 8-byte length + header + `data_bytes` zero bytes; `length` overrides the stored length.
std::string write_raw(const std::string& name, const std::string& header, std::size_t data_bytes,
                      std::uint64_t length = UINT64_MAX) {
  const std::string path = scratch() + "/" + name + ".safetensors";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const std::uint64_t len = length == UINT64_MAX ? header.size() : length;
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((len >> (8 * i)) & 0xff));
  out << header << std::string(data_bytes, '\0');
  return path;
}

// Opens the file, expecting failure; returns the message.
std::string open_error(const std::string& path) {
  try {
    SafetensorsFile::open(path);
  } catch (const bbt::Error& e) {
    return e.what();
  }
  return "(no error)";
}

void expect_error(const std::string& name, const std::string& header, std::size_t data_bytes,
                  const std::vector<std::string>& fragments, std::uint64_t length = UINT64_MAX) {
  const auto path = write_raw(name, header, data_bytes, length);
  const auto msg = open_error(path);
  EXPECT_NE(msg.find(path), std::string::npos) << name << ": " << msg;
  for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << name << ": " << msg;
}

}  // namespace

TEST(Safetensors, RoundTripAllDtypes) {
  torch::manual_seed(0);
  const auto a = torch::randn({3, 5});
  const auto b = torch::randn({7}).to(torch::kFloat16);
  const auto c = torch::randn({2, 2, 2}).to(torch::kBFloat16);
  const auto e = torch::zeros({0, 4});
  const auto path = scratch() + "/round.safetensors";
  bbt::model::write_safetensors(path, {{"a", a}, {"b.half", b}, {"c", c}, {"empty", e}});
  const auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"a", "b.half", "c", "empty"}));
  EXPECT_TRUE(torch::equal(f.tensor("a"), a));
  EXPECT_TRUE(torch::equal(f.tensor("b.half"), b.to(torch::kFloat32)));
  EXPECT_TRUE(torch::equal(f.tensor("c"), c.to(torch::kFloat32)));
  EXPECT_EQ(f.tensor("empty").sizes(), e.sizes());
  EXPECT_EQ(f.info("b.half").dtype, bbt::model::Dtype::kF16);
  EXPECT_EQ(f.info("c").shape, (std::vector<std::int64_t>{2, 2, 2}));
}

TEST(Safetensors, UnalignedDataAndMetadataAreFine) {
  // Header length 61 (not a multiple of 8): data starts unaligned; __metadata__ is allowed.
  std::string h = R"({"__metadata__":{"format":"pt"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const auto path = write_raw("unaligned", h, 8);
  {
    std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(8 + h.size());
    const float v[2] = {1.5f, -2.0f};
    io.write(reinterpret_cast<const char*>(v), 8);
  }
  const auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f.header().metadata.at("format"), "pt");
  const auto t = f.tensor("x");
  EXPECT_EQ(t[0].item<float>(), 1.5f);
  EXPECT_EQ(t[1].item<float>(), -2.0f);
}

TEST(SafetensorsHostile, TruncatedFile) {
  const auto path = scratch() + "/tiny.safetensors";
  std::ofstream(path) << "abc";
  const auto msg = open_error(path);
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  std::ofstream(scratch() + "/empty.safetensors");
  EXPECT_NE(open_error(scratch() + "/empty.safetensors").find("truncated"), std::string::npos);
}

TEST(SafetensorsHostile, HeaderLengths) {
  expect_error("huge_len", "{}", 0, {"exceeds the limit"}, 1ull << 40);
  expect_error("max_len", "{}", 0, {"exceeds the limit"}, UINT64_MAX - 1);
  expect_error("len_past_eof", "{}", 0, {"truncated", "header length 100"}, 100);
}

TEST(SafetensorsHostile, BadJson) {
  expect_error("bad_json", R"({"x": {"dtype": "F32",)", 0, {"not valid JSON"});
  expect_error("not_object", R"([1, 2, 3])", 0, {"not a JSON object"});
  expect_error("entry_not_object", R"({"w": 5})", 0, {"tensor 'w'", "not a JSON object"});
  expect_error("bad_metadata", R"({"__metadata__": 3})", 0, {"__metadata__"});
}

TEST(SafetensorsHostile, UnknownDtype) {
  expect_error("i64", R"({"w.ids": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}})", 8,
               {"tensor 'w.ids'", "unsupported dtype 'I64'"});
  expect_error("no_dtype", R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4, {"tensor 'w'", "dtype"});
}

TEST(SafetensorsHostile, BadShapes) {
  expect_error("negative", R"({"neg": {"dtype": "F32", "shape": [2, -3], "data_offsets": [0, 0]}})", 0,
               {"tensor 'neg'", "negative"});
  expect_error("float_dim", R"({"f": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 0]}})", 0,
               {"tensor 'f'", "not an integer"});
  expect_error(
      "overflow",
      R"({"big": {"dtype": "F32", "shape": [4611686018427387904, 4611686018427387904], "data_offsets": [0, 0]}})",
      0, {"tensor 'big'", "overflows"});
  expect_error("byte_overflow",
               R"({"big": {"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 0]}})", 0,
               {"tensor 'big'", "overflows"});
  expect_error("u64_dim",
               R"({"big": {"dtype": "F16", "shape": [18446744073709551615], "data_offsets": [0, 0]}})", 0,
               {"tensor 'big'", "too large"});
}

TEST(SafetensorsHostile, BadSpans) {
  expect_error("mismatch", R"({"m": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})", 24,
               {"tensor 'm'", "span 20 bytes", "needs 24"});
  expect_error("outside", R"({"o": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})", 16,
               {"tensor 'o'", "outside the data region of 16 bytes"});
  expect_error("reversed", R"({"r": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", 16,
               {"tensor 'r'", "begin 8 > end 4"});
  expect_error("neg_offset", R"({"n": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", 16,
               {"tensor 'n'", "negative"});
  expect_error("one_offset", R"({"n": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 16,
               {"tensor 'n'", "data_offsets"});
  expect_error("overlap",
               R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                   "b": {"dtype": "F16", "shape": [4], "data_offsets": [4, 12]}})",
               16, {"tensor 'b'", "overlaps tensor 'a'"});
}

TEST(SafetensorsHostile, MissingTensorIsNamed) {
  const auto path = write_raw("one", R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 4);
  const auto f = SafetensorsFile::open(path);
  try {
    f.tensor("lm_head.bias");
    FAIL() << "no error";
  } catch (const bbt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tensor 'lm_head.bias'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(SafetensorsHostile, PureParserOnMemory) {
  // The fuzz entry point: bytes in memory, nothing touched past `size`.
  const std::string h = R"({"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]}})";
  std::string file(8, '\0');
  file[0] = static_cast<char>(h.size());
  file += h + std::string(6, '\0');
  const auto hdr = bbt::model::parse_safetensors_header(file.data(), file.size(), file.size());
  EXPECT_EQ(hdr.data_offset, 8 + h.size());
  EXPECT_EQ(hdr.tensors.at("a").end, 6u);
  for (std::size_t cut = 0; cut < file.size() - 6; ++cut)
    EXPECT_THROW(bbt::model::parse_safetensors_header(file.data(), cut, cut), bbt::Error) << cut;
}
