// bbt (common): the portable generator and math, UTF-8 and white space, whole-file and JSON reading.
#include <gtest/gtest.h>
#include <malloc.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "bbt/common/memory.hpp"
#include "bbt/common/error.hpp"
#include "bbt/common/files.hpp"
#include "bbt/common/json.hpp"
#include "bbt/common/portable_math.hpp"
#include "bbt/common/rng.hpp"
#include "bbt/common/utf8.hpp"

TEST(Rng, SameSeedSameBits) {
  bbt::Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    EXPECT_NE(x, c.next_u64());
  }
}

TEST(Rng, KnownFirstValues) {
  // Pinned so that a change to the generator (which would change every projection A) is seen.
  bbt::Rng r(0);
  EXPECT_EQ(r.next_u64(), 0x99ec5f36cb75f2b4ULL);
}

TEST(Rng, PortableLogMatchesLibm) {
  for (double x : {1e-300, 1e-10, 0.1, 0.5, 0.7071, 1.0, 1.5, 2.0, 3.0, 10.0, 12345.678, 1e300}) {
    EXPECT_NEAR(bbt::portable_log(x), std::log(x), 4e-16 * std::max(1.0, std::fabs(std::log(x)))) << x;
  }
}

TEST(Rng, PortableExpMatchesLibm) {
  for (double x : {-700.0, -20.0, -1.0, -1e-10, 0.0, 1e-10, 0.3, 1.0, 2.5, 20.0, 700.0}) {
    EXPECT_NEAR(bbt::portable_exp(x), std::exp(x), 4e-16 * std::exp(x)) << x;
  }
  EXPECT_EQ(bbt::portable_exp(710.0), HUGE_VAL);
  EXPECT_EQ(bbt::portable_exp(-746.0), 0.0);
  EXPECT_TRUE(std::isnan(bbt::portable_exp(NAN)));
}

TEST(Rng, FillNormalsUsesTwoUniformsPerPairAndDropsAnOddSpare) {
  bbt::Rng odd(11), even(11);
  std::vector<double> three(3), four(4);
  bbt::fill_normals(odd, three.data(), three.size());
  bbt::fill_normals(even, four.data(), four.size());
  EXPECT_EQ(std::vector<double>(four.begin(), four.begin() + 3), three);
  EXPECT_EQ(odd.next_u64(), even.next_u64());  // the dropped spare cost no extra draw
  std::vector<double> many(200001);
  bbt::fill_normals(odd, many.data(), many.size());
  double sum = 0, sum2 = 0;
  for (double x : many) {
    sum += x;
    sum2 += x * x;
  }
  EXPECT_NEAR(sum / many.size(), 0.0, 0.01);
  EXPECT_NEAR(sum2 / many.size(), 1.0, 0.01);
}

TEST(Rng, NormalMoments) {
  bbt::Rng r(7);
  const int n = 200000;
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; ++i) {
    const double x = r.normal();
    sum += x;
    sum2 += x * x;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sum2 / n, 1.0, 0.01);
}

TEST(Rng, StateRoundTrip) {
  bbt::Rng a(5);
  a.normal();  // leaves a spare
  bbt::Rng b(99);
  b.set_state(a.state());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.normal(), b.normal());
}

// ---------------------------------------------------------------- UTF-8

TEST(Utf8, ValidTextHasNoInvalidByte) {
  EXPECT_EQ(bbt::find_invalid_utf8(""), std::string_view::npos);
  EXPECT_EQ(bbt::find_invalid_utf8("plain ascii"), std::string_view::npos);
  EXPECT_EQ(bbt::find_invalid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), std::string_view::npos);
  // The edges of the valid ranges: U+D7FF and U+E000 around the surrogates, U+10FFFF.
  EXPECT_EQ(bbt::find_invalid_utf8("\xED\x9F\xBF\xEE\x80\x80\xF4\x8F\xBF\xBF"), std::string_view::npos);
}

TEST(Utf8, InvalidSequencesGiveTheirOffset) {
  EXPECT_EQ(bbt::find_invalid_utf8("ab\xC3"), 2u);                // truncated 2-byte
  EXPECT_EQ(bbt::find_invalid_utf8("ab\xF0\x9F\x98"), 2u);        // truncated 4-byte
  EXPECT_EQ(bbt::find_invalid_utf8("a\xC0\xAF"), 1u);             // overlong '/'
  EXPECT_EQ(bbt::find_invalid_utf8("\xC1\xBF"), 0u);              // overlong 2-byte
  EXPECT_EQ(bbt::find_invalid_utf8("\xE0\x80\x80"), 0u);          // overlong 3-byte
  EXPECT_EQ(bbt::find_invalid_utf8("\xF0\x8F\xBF\xBF"), 0u);      // overlong 4-byte
  EXPECT_EQ(bbt::find_invalid_utf8("a\xED\xA0\x80"), 1u);         // surrogate U+D800
  EXPECT_EQ(bbt::find_invalid_utf8("ok\xED\xBF\xBF"), 2u);        // surrogate U+DFFF
  EXPECT_EQ(bbt::find_invalid_utf8("\xF4\x90\x80\x80"), 0u);      // above U+10FFFF
  EXPECT_EQ(bbt::find_invalid_utf8("x\xFF"), 1u);                 // never a lead byte
  EXPECT_EQ(bbt::find_invalid_utf8("x\x80"), 1u);                 // lone continuation byte
  EXPECT_EQ(bbt::find_invalid_utf8("\xC3\xA9\xE2\x82\x41"), 2u);  // bad third byte
}

TEST(Utf8, DecodesEachLength) {
  const std::string text = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF";
  std::vector<char32_t> got;
  std::vector<std::size_t> ends;
  for (std::size_t i = 0; i < text.size();) {
    got.push_back(bbt::next_code_point(text, i));
    ends.push_back(i);
  }
  EXPECT_EQ(got, (std::vector<char32_t>{U'a', 0xE9, 0x20AC, 0x1F600, 0x10FFFF}));
  EXPECT_EQ(ends, (std::vector<std::size_t>{1, 3, 6, 10, 14}));
}

TEST(Utf8, WhiteSpaceTables) {
  for (char32_t c :
       {0x09, 0x0A, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000}) {
    EXPECT_TRUE(bbt::is_white_space(c)) << std::hex << static_cast<unsigned>(c);
    EXPECT_TRUE(bbt::is_python_space(c)) << std::hex << static_cast<unsigned>(c);
  }
  // Not White_Space: U+180E (since Unicode 6.3), zero-width space and joiner, BOM, separators.
  for (char32_t c : {0x08, 0x0E, 0x1C, 0x1F, 0x21, 0x84, 0x86, 0x180E, 0x200B, 0x200D, 0x2030, 0xFEFF}) {
    EXPECT_FALSE(bbt::is_white_space(c)) << std::hex << static_cast<unsigned>(c);
  }
  // Python's str.isspace() adds the information separators U+001C..U+001F, and nothing else.
  for (char32_t c : {0x1C, 0x1D, 0x1E, 0x1F})
    EXPECT_TRUE(bbt::is_python_space(c)) << std::hex << static_cast<unsigned>(c);
  for (char32_t c : {0x1B, 0x180E, 0x200B, 0xFEFF})
    EXPECT_FALSE(bbt::is_python_space(c)) << std::hex << static_cast<unsigned>(c);
  EXPECT_EQ(bbt::white_space_class(),
            "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}-\\x{2029}\\x{202F}"
            "\\x{205F}\\x{3000}");
}

TEST(Utf8, SkipsRunsOfCodePoints) {
  const std::string text = "\xE3\x80\x80 x\xC2\xA0y \xC2\x85";  // U+3000, ' ', x, U+00A0, y, ' ', U+0085
  EXPECT_EQ(bbt::skip_forward_while(text, 0, bbt::is_white_space), 4u);
  EXPECT_EQ(bbt::skip_forward_while(text, 4, bbt::is_white_space), 4u);
  EXPECT_EQ(bbt::skip_forward_while(text, 5, bbt::is_white_space), 7u);
  EXPECT_EQ(bbt::skip_backward_while(text, 0, text.size(), bbt::is_white_space), 8u);
  EXPECT_EQ(bbt::skip_backward_while(text, 0, 7, bbt::is_white_space), 5u);
  EXPECT_EQ(bbt::skip_backward_while(text, 9, text.size(), bbt::is_white_space), 9u);  // not below the floor
  EXPECT_EQ(bbt::skip_backward_while(text, 0, 4, bbt::is_white_space), 0u);
}

// ---------------------------------------------------------------- files and JSON

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const bbt::Error& e) {
    return e.what();
  }
  return "(no error)";
}

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "bbt_common_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  std::filesystem::path dir_;
};

}  // namespace

TEST_F(FilesTest, ReadsBytesUnchanged) {
  const std::string bytes("a\r\nb\0c\xFF", 7);
  EXPECT_EQ(bbt::read_file(write("f.bin", bytes)), bytes);
  EXPECT_EQ(bbt::read_file(write("empty", "")), "");
  EXPECT_EQ(bbt::read_file(write("limit", "1234"), 4), "1234");  // exactly the limit is fine
}

TEST_F(FilesTest, ErrorsNameTheFileAndTheReason) {
  const std::string missing = (dir_ / "missing.txt").string();
  EXPECT_EQ(error_of([&] { bbt::read_file(missing); }),
            "cannot read '" + missing + "': No such file or directory");
  EXPECT_EQ(error_of([&] { bbt::read_file(dir_); }), "cannot read '" + dir_.string() + "': is a directory");
  const std::string big = write("big", "12345");
  EXPECT_EQ(error_of([&] { bbt::read_file(big, 4); }),
            "cannot read '" + big + "': larger than 4 bytes, the most bbt reads into memory");
}

TEST_F(FilesTest, EndlessDevicesAndHugeFilesAreRefused) {
  // /dev/zero never ends: a device is refused before anything is read.
  EXPECT_EQ(error_of([&] { bbt::read_file("/dev/zero", 1 << 20); }),
            "cannot read '/dev/zero': is a device, not a file");
  // A sparse file one byte over the default limit fails before anything is read.
  const std::string huge = write("huge", "");
  std::filesystem::resize_file(huge, bbt::kMaxReadFileBytes + 1);
  EXPECT_EQ(error_of([&] { bbt::read_file(huge); }),
            "cannot read '" + huge + "': larger than 1 GiB, the most bbt reads into memory");
}

TEST_F(FilesTest, JsonFiles) {
  const nlohmann::json j = bbt::read_json_file(write("ok.json", R"({"a": [1, 2], "b": "x"})"));
  EXPECT_EQ(j.at("a").at(1), 2);
  EXPECT_EQ(j.at("b"), "x");
  const std::string bad = write("bad.json", "{\"a\": 1,\n");
  const std::string msg = error_of([&] { bbt::read_json_file(bad); });
  EXPECT_EQ(msg.rfind(bad + ": invalid JSON: ", 0), 0u) << msg;
  EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;  // nlohmann's position survives
  const std::string missing = (dir_ / "none.json").string();
  EXPECT_EQ(error_of([&] { bbt::read_json_file(missing); }),
            "cannot read '" + missing + "': No such file or directory");
}

// keep_freed_memory: a 64 MiB block comes from the heap (glibc would map it alone: mallinfo2's
// hblks counts such blocks), so a second one after freeing it reuses the same pages.
TEST(Memory, FreedBlocksStayForReuse) {
#ifdef __GLIBC__
  ASSERT_TRUE(bbt::keep_freed_memory());
  const std::size_t mapped_before = mallinfo2().hblks;
  std::vector<char>* big = new std::vector<char>(std::size_t{64} << 20, 1);
  EXPECT_EQ(mallinfo2().hblks, mapped_before) << "a 64 MiB block was mapped on its own";
  const char* first = big->data();
  delete big;
  big = new std::vector<char>(std::size_t{64} << 20, 2);
  EXPECT_EQ(big->data(), first);
  delete big;
#else
  GTEST_SKIP() << "not glibc";
#endif
}
