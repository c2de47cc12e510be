#pragma once
// UTF-8 validation, code-point decoding and the Unicode white-space tables, written once for the
// tokenizer (which must agree with Hugging Face byte for byte) and the data readers.
#include <cstddef>
#include <string>
#include <string_view>

namespace bbt {

// Byte offset of the first byte that is not well-formed UTF-8 (overlong forms, UTF-16 surrogates,
// truncated sequences and code points above U+10FFFF are rejected, as in PCRE2 and every strict
// decoder), or std::string_view::npos when all of `text` is valid.
std::size_t find_invalid_utf8(std::string_view text);

// Decodes the code point that starts at text[i] and moves i past it. `text` must be valid UTF-8
// (checked once with find_invalid_utf8, not again here: the tokenizer decodes in its inner loops).
char32_t next_code_point(std::string_view text, std::size_t& i);

// Unicode's White_Space property: what GPT-2's pre-tokeniser matches as \s (Python `regex` and
// Oniguruma agree; PCRE2's own \s under UCP does not, see white_space_class).
bool is_white_space(char32_t c);

// Python's str.isspace(): White_Space plus the separators U+001C..U+001F (what str.strip() removes).
bool is_python_space(char32_t c);

// The White_Space code points as the body of a PCRE2 character class ("\t-\r\x{20}\x{85}..."), so
// that the tokenizer's pattern and is_white_space read the same table.
const std::string& white_space_class();

// In valid UTF-8: the end of the run of code points from `begin` for which `pred` holds.
std::size_t skip_forward_while(std::string_view text, std::size_t begin, bool (*pred)(char32_t));

// In valid UTF-8: the start of the run of code points that ends at `end`, reaching back no further
// than `floor`, for which `pred` holds.
std::size_t skip_backward_while(std::string_view text, std::size_t floor, std::size_t end,
                                bool (*pred)(char32_t));

}  // namespace bbt
