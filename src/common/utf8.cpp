#include "bbt/common/utf8.hpp"

#include <cstdio>

namespace bbt {
namespace {

struct CodePointRange {
  char32_t first, last;
};

// Unicode's White_Space property (PropList.txt), the one table behind is_white_space,
// is_python_space and the tokenizer's \s.
constexpr CodePointRange kWhiteSpace[] = {
    {0x09, 0x0D},     {0x20, 0x20},     {0x85, 0x85},     {0xA0, 0xA0},     {0x1680, 0x1680},
    {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000},
};

std::string class_body() {
  std::string body;
  char buffer[32];
  for (const auto& r : kWhiteSpace) {
    if (r.first == r.last) {
      std::snprintf(buffer, sizeof buffer, "\\x{%X}", static_cast<unsigned>(r.first));
    } else {
      std::snprintf(buffer, sizeof buffer, "\\x{%X}-\\x{%X}", static_cast<unsigned>(r.first),
                    static_cast<unsigned>(r.last));
    }
    body += buffer;
  }
  return body;
}

}  // namespace

std::size_t find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {        // 0xC0 and 0xC1 could only start overlong forms
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + len > n) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (std::size_t k = 2; k < len; ++k)
      if ((s[i + k] & 0xC0) != 0x80) return i;
    i += len;
  }
  return std::string_view::npos;
}

char32_t next_code_point(std::string_view text, std::size_t& i) {
  const auto c = static_cast<unsigned char>(text[i]);
  const int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
  i += len;
  return cp;
}

bool is_white_space(char32_t c) {
  for (const auto& r : kWhiteSpace)
    if (c >= r.first && c <= r.last) return true;
  return false;
}

bool is_python_space(char32_t c) { return (c >= 0x1C && c <= 0x1F) || is_white_space(c); }

const std::string& white_space_class() {
  static const std::string kClass = class_body();
  return kClass;
}

std::size_t skip_forward_while(std::string_view text, std::size_t begin, bool (*pred)(char32_t)) {
  while (begin < text.size()) {
    std::size_t i = begin;
    if (!pred(next_code_point(text, i))) break;
    begin = i;
  }
  return begin;
}

std::size_t skip_backward_while(std::string_view text, std::size_t floor, std::size_t end,
                                bool (*pred)(char32_t)) {
  while (end > floor) {
    std::size_t start = end - 1;  // back over continuation bytes to the lead byte
    while (start > floor && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    std::size_t i = start;
    if (!pred(next_code_point(text, i))) break;
    end = start;
  }
  return end;
}

}  // namespace bbt
