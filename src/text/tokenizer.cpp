// Byte-level BPE (GPT-2 / RoBERTa): loading the vocabulary files, pre-tokenising with PCRE2,
// merging by rank, and the GPT-2 -> RoBERTa vocabulary conversion used by tests and the demo.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "bbt/text/tokenizer.hpp"

#include <pcre2.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>

#include "bbt/common/error.hpp"
#include "bbt/common/files.hpp"
#include "bbt/common/json.hpp"
#include "bbt/common/utf8.hpp"

namespace bbt::text {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

// GPT-2's pre-tokeniser. \s is spelled out as Unicode's White_Space property, which is what
// Hugging Face's tokenizers (Oniguruma) and GPT-2's Python `regex` match; PCRE2's own \s under
// UCP and JavaScript's \s differ from it on a few code points (U+0085, U+180E, U+FEFF).
std::string gpt2_pattern() {
  const std::string& ws = white_space_class();
  return "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" + ws + "\\p{L}\\p{N}]+|[" + ws + "]+(?![^" + ws +
         "])|[" + ws + "]+";
}

// GPT-2's bytes_to_unicode(): every byte gets a printable code point, so that a vocabulary of
// byte strings can be written as text. Printable Latin-1 bytes map to themselves.
struct ByteAlphabet {
  std::array<char32_t, 256> to_cp{};
  std::unordered_map<char32_t, unsigned char> to_byte;
  ByteAlphabet() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_cp[b] = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      to_byte[to_cp[b]] = static_cast<unsigned char>(b);
    }
  }
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet kAlphabet;
  return kAlphabet;
}

// The raw bytes a vocabulary entry stands for, or nullopt when the entry is not written in GPT-2's
// byte alphabet (then it can only be produced as an added token).
std::optional<std::string> token_bytes(const std::string& token) {
  if (find_invalid_utf8(token) != std::string_view::npos) return std::nullopt;
  const auto& alpha = byte_alphabet();
  std::string out;
  std::size_t i = 0;
  while (i < token.size()) {
    const auto it = alpha.to_byte.find(next_code_point(token, i));
    if (it == alpha.to_byte.end()) return std::nullopt;
    out += static_cast<char>(it->second);
  }
  return out;
}

struct PcreCodeFree {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct PcreMatchDataFree {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

constexpr std::int32_t kNoId = -1;
constexpr std::size_t kShortWord = 32;      // words up to this many bytes use the quadratic merge loop
constexpr std::size_t kCacheMaxWord = 256;  // longer words are not cached
constexpr std::size_t kCacheCapacity = 1 << 18;

}  // namespace

struct AddedToken {
  std::string content;
  std::int64_t id;
  bool lstrip;
  bool rstrip;
};

struct Merge {
  std::int32_t rank;
  std::int32_t merged;
};

struct Tokenizer::Impl {
  std::vector<std::string> id_to_token;  // as written in the file; "" for unused ids
  std::vector<std::string> id_to_bytes;  // what decode() emits
  std::vector<bool> id_used;
  std::unordered_map<std::string, std::int64_t> token_to_id;
  std::array<std::int32_t, 256> byte_id{};  // id of each single byte, kNoId when absent
  std::unordered_map<std::uint64_t, Merge> merges;
  std::vector<AddedToken> added;  // longest first, so the first match at a position is the longest
  std::array<bool, 256> added_first_byte{};
  bool add_prefix_space = false;
  std::string source;  // the file the vocabulary came from, for messages
  std::unique_ptr<pcre2_code, PcreCodeFree> regex;
  bool jit = false;

  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<std::int32_t>> cache;

  static std::uint64_t pair_key(std::int32_t a, std::int32_t b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }

  const Merge* find_merge(std::int32_t a, std::int32_t b) const {
    if (a < 0 || b < 0) return nullptr;
    const auto it = merges.find(pair_key(a, b));
    return it == merges.end() ? nullptr : &it->second;
  }

  void add_token(const std::string& token, std::int64_t id) {
    if (id < 0 || id > INT32_MAX)
      throw Error(source + ": token '" + token + "' has a bad id " + std::to_string(id));
    if (static_cast<std::size_t>(id) >= id_to_token.size()) {
      id_to_token.resize(id + 1);
      id_to_bytes.resize(id + 1);
      id_used.resize(id + 1, false);
    }
    id_to_token[id] = token;
    id_used[id] = true;
    token_to_id[token] = id;
    if (auto bytes = token_bytes(token)) {
      id_to_bytes[id] = *bytes;
      if (bytes->size() == 1)
        byte_id[static_cast<unsigned char>((*bytes)[0])] = static_cast<std::int32_t>(id);
    } else {
      id_to_bytes[id] = token;
    }
  }

  // A merge "a b": both parts and their concatenation must be in the vocabulary. Later duplicates
  // win, as in GPT-2's dict(zip(merges, range(len(merges)))).
  void add_merge(const std::string& a, const std::string& b, std::int32_t rank, const std::string& where) {
    const auto ia = token_to_id.find(a), ib = token_to_id.find(b), iab = token_to_id.find(a + b);
    if (ia == token_to_id.end()) throw Error(where + ": merge token '" + a + "' is not in the vocabulary");
    if (ib == token_to_id.end()) throw Error(where + ": merge token '" + b + "' is not in the vocabulary");
    if (iab == token_to_id.end())
      throw Error(where + ": merged token '" + a + b + "' is not in the vocabulary");
    merges[pair_key(static_cast<std::int32_t>(ia->second), static_cast<std::int32_t>(ib->second))] =
        Merge{rank, static_cast<std::int32_t>(iab->second)};
  }

  void add_special(const std::string& content, std::int64_t id, bool lstrip, bool rstrip) {
    if (content.empty()) throw Error(source + ": empty added token (id " + std::to_string(id) + ")");
    if (find_invalid_utf8(content) != std::string_view::npos) {
      throw Error(source + ": added token id " + std::to_string(id) + " is not valid UTF-8");
    }
    added.push_back(AddedToken{content, id, lstrip, rstrip});
  }

  void finish() {
    std::stable_sort(added.begin(), added.end(), [](const AddedToken& x, const AddedToken& y) {
      return x.content.size() > y.content.size();
    });
    for (const auto& t : added) added_first_byte[static_cast<unsigned char>(t.content[0])] = true;
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    const std::string pattern = gpt2_pattern();
    regex.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr));
    if (!regex) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(error_code, msg, sizeof msg);
      throw Error(std::string("PCRE2 cannot compile GPT-2's pattern: ") + reinterpret_cast<const char*>(msg));
    }
    jit = pcre2_jit_compile(regex.get(), PCRE2_JIT_COMPLETE) == 0;
  }

  std::optional<std::int64_t> find(std::string_view token) const {
    const auto it = token_to_id.find(std::string(token));
    if (it == token_to_id.end()) return std::nullopt;
    return it->second;
  }

  std::int64_t special(const char* name) const {
    const auto id = find(name);
    if (!id) throw Error("the tokenizer from " + source + " has no " + name + " token");
    return *id;
  }

  // Initial symbols of a pre-token: one per byte.
  void byte_symbols(std::string_view word, std::vector<std::int32_t>& out) const {
    out.clear();
    for (const char ch : word) {
      const std::int32_t id = byte_id[static_cast<unsigned char>(ch)];
      if (id == kNoId) {
        const auto unk = find("<unk>");
        if (!unk) {
          throw Error("the vocabulary of " + source + " has no entry for byte " +
                      std::to_string(static_cast<unsigned char>(ch)) + " and no <unk>");
        }
        out.push_back(static_cast<std::int32_t>(-2 - *unk));  // never merges; mapped back below
      } else {
        out.push_back(id);
      }
    }
  }

  // GPT-2's bpe(): repeatedly merge every occurrence (left to right, non-overlapping) of the
  // lowest-ranked adjacent pair. Quadratic, which is fastest for the short words of real text.
  void bpe_short(std::vector<std::int32_t>& sym) const {
    while (sym.size() > 1) {
      const Merge* best = nullptr;
      std::int32_t first = 0, second = 0;
      for (std::size_t i = 0; i + 1 < sym.size(); ++i) {
        const Merge* m = find_merge(sym[i], sym[i + 1]);
        if (m && (!best || m->rank < best->rank)) {
          best = m;
          first = sym[i];
          second = sym[i + 1];
        }
      }
      if (!best) break;
      std::size_t out = 0;
      for (std::size_t i = 0; i < sym.size();) {
        if (i + 1 < sym.size() && sym[i] == first && sym[i + 1] == second) {
          sym[out++] = best->merged;
          i += 2;
        } else {
          sym[out++] = sym[i++];
        }
      }
      sym.resize(out);
    }
  }

  // The same merges in O(n log n) for long words: a heap of candidate pairs, processed one rank at
  // a time, and pairs made by a round's merges enter the heap only after the round, exactly as in
  // the quadratic loop (so even an ill-ordered merges file gives the same ids).
  void bpe_long(std::vector<std::int32_t>& sym) const {
    const std::size_t n = sym.size();
    std::vector<std::int32_t> prev(n), next(n);
    for (std::size_t i = 0; i < n; ++i) {
      prev[i] = static_cast<std::int32_t>(i) - 1;
      next[i] = i + 1 < n ? static_cast<std::int32_t>(i + 1) : -1;
    }
    std::vector<bool> alive(n, true);
    struct Cand {
      std::int32_t rank, pos, left, right;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
    auto candidate = [&](std::int32_t pos, std::vector<Cand>& into) {
      if (pos < 0 || next[pos] < 0) return;
      if (const Merge* m = find_merge(sym[pos], sym[next[pos]]))
        into.push_back({m->rank, pos, sym[pos], sym[next[pos]]});
    };
    std::vector<Cand> fresh;
    for (std::size_t i = 0; i + 1 < n; ++i) candidate(static_cast<std::int32_t>(i), fresh);
    for (const auto& c : fresh) heap.push(c);
    auto valid = [&](const Cand& c) {
      return alive[c.pos] && sym[c.pos] == c.left && next[c.pos] >= 0 && sym[next[c.pos]] == c.right;
    };
    while (!heap.empty()) {
      if (!valid(heap.top())) {
        heap.pop();
        continue;
      }
      const std::int32_t rank = heap.top().rank;
      fresh.clear();
      while (!heap.empty() && heap.top().rank == rank) {
        const Cand c = heap.top();
        heap.pop();
        if (!valid(c)) continue;
        const std::int32_t r = next[c.pos];
        sym[c.pos] = find_merge(c.left, c.right)->merged;
        alive[r] = false;
        next[c.pos] = next[r];
        if (next[r] >= 0) prev[next[r]] = c.pos;
        candidate(prev[c.pos], fresh);
        candidate(c.pos, fresh);
      }
      for (const auto& c : fresh) heap.push(c);
    }
    std::size_t out = 0;
    for (std::int32_t i = 0; i >= 0; i = next[i]) sym[out++] = sym[i];
    sym.resize(out);
  }

  void encode_word(std::string_view word, std::vector<std::int64_t>& ids,
                   std::vector<std::int32_t>& sym) const {
    const bool cacheable = word.size() <= kCacheMaxWord;
    std::string key;
    if (cacheable) {
      key.assign(word);
      std::lock_guard<std::mutex> lock(cache_mutex);
      const auto it = cache.find(key);
      if (it != cache.end()) {
        ids.insert(ids.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    byte_symbols(word, sym);
    if (sym.size() <= kShortWord) {
      bpe_short(sym);
    } else {
      bpe_long(sym);
    }
    for (auto& s : sym) {
      if (s < 0) s = -2 - s;  // an <unk> stand-in
    }
    ids.insert(ids.end(), sym.begin(), sym.end());
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_mutex);
      if (cache.size() >= kCacheCapacity) cache.clear();
      cache.emplace(std::move(key), sym);
    }
  }

  // Regex pre-tokenisation and BPE of a text without added tokens.
  void encode_plain(std::string_view text, std::vector<std::int64_t>& ids) const {
    if (text.empty()) return;
    std::string prefixed;
    if (add_prefix_space && text.front() != ' ') {
      prefixed = " " + std::string(text);
      text = prefixed;
    }
    std::unique_ptr<pcre2_match_data, PcreMatchDataFree> md(
        pcre2_match_data_create_from_pattern(regex.get(), nullptr));
    if (!md) throw std::bad_alloc();
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    std::vector<std::int32_t> sym;
    PCRE2_SIZE start = 0;
    while (start < text.size()) {
      const int rc =
          jit ? pcre2_jit_match(regex.get(), subject, text.size(), start, 0, md.get(), nullptr)
              : pcre2_match(regex.get(), subject, text.size(), start, PCRE2_NO_UTF_CHECK, md.get(), nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        throw Error(std::string("pre-tokenising failed: ") + reinterpret_cast<const char*>(msg));
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
      if (ov[1] <= ov[0]) break;  // cannot happen: no alternative matches the empty string
      encode_word(text.substr(ov[0], ov[1] - ov[0]), ids, sym);
      start = ov[1];
    }
  }

  // The added token matching at text[i], longest first, or nullptr.
  const AddedToken* added_at(std::string_view text, std::size_t i) const {
    if (!added_first_byte[static_cast<unsigned char>(text[i])]) return nullptr;
    for (const auto& t : added) {
      if (text.compare(i, t.content.size(), t.content) == 0) return &t;
    }
    return nullptr;
  }
};

Tokenizer Tokenizer::load(const std::string& dir) {
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw Error("tokenizer directory " + dir + " does not exist");
  auto impl = std::make_shared<Impl>();
  impl->byte_id.fill(kNoId);

  const fs::path tj = root / "tokenizer.json";
  if (fs::exists(tj)) {
    impl->source = tj.string();
    const Json j = read_json_file(tj);
    const std::string& where = impl->source;
    try {
      const Json& model = j.at("model");
      if (model.contains("type") && model["type"] != "BPE") {
        throw Error(where + ": model.type is " + model["type"].dump() + ", only BPE is supported");
      }
      for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
        if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty()) {
          throw Error(where + ": model." + key + " is not supported by a byte-level BPE");
        }
      }
      if (!model.at("vocab").is_object()) throw Error(where + ": model.vocab is not an object");
      impl->token_to_id.reserve(model["vocab"].size());
      for (const auto& [token, id] : model["vocab"].items()) {
        if (!id.is_number_integer()) throw Error(where + ": model.vocab['" + token + "'] is not an integer");
        impl->add_token(token, id.get<std::int64_t>());
      }
      const Json& merges = model.at("merges");
      if (!merges.is_array()) throw Error(where + ": model.merges is not an array");
      for (std::size_t i = 0; i < merges.size(); ++i) {
        const std::string at = where + ": model.merges[" + std::to_string(i) + "]";
        const Json& m = merges[i];
        std::string a, b;
        if (m.is_string()) {
          const std::string s = m.get<std::string>();
          const auto sp = s.find(' ');
          if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() ||
              s.find(' ', sp + 1) != std::string::npos) {
            throw Error(at + ": expected \"A B\", got \"" + s + "\"");
          }
          a = s.substr(0, sp);
          b = s.substr(sp + 1);
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
          a = m[0].get<std::string>();
          b = m[1].get<std::string>();
        } else {
          throw Error(at + ": expected \"A B\" or [\"A\", \"B\"], got " + m.dump());
        }
        impl->add_merge(a, b, static_cast<std::int32_t>(i), at);
      }
      if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
        for (const auto& t : j["added_tokens"]) {
          const std::string content = t.at("content").get<std::string>();
          const auto id = t.at("id").get<std::int64_t>();
          impl->add_token(content, id);
          impl->add_special(content, id, t.value("lstrip", false), t.value("rstrip", false));
        }
      }
      // ByteLevel's add_prefix_space, alone or inside a Sequence.
      if (j.contains("pre_tokenizer") && j["pre_tokenizer"].is_object()) {
        const Json& pt = j["pre_tokenizer"];
        auto visit = [&](const Json& p) {
          if (p.value("type", "") == "ByteLevel") impl->add_prefix_space = p.value("add_prefix_space", false);
        };
        visit(pt);
        if (pt.contains("pretokenizers")) {
          for (const auto& p : pt["pretokenizers"]) visit(p);
        }
      }
    } catch (const Json::exception& e) {
      throw Error(where + ": " + e.what());
    }
  } else {
    fs::path vocab = root / "vocab.json", merges = root / "merges.txt";
    if (!fs::exists(vocab) && !fs::exists(merges) && fs::exists(root / "encoder.json")) {
      vocab = root / "encoder.json";  // GPT-2's own file names
      merges = root / "vocab.bpe";
    }
    impl->source = vocab.string();
    const Json j = read_json_file(vocab);
    if (!j.is_object()) throw Error(vocab.string() + ": expected a JSON object of token -> id");
    for (const auto& [token, id] : j.items()) {
      if (!id.is_number_integer())
        throw Error(vocab.string() + ": the id of '" + token + "' is not an integer");
      impl->add_token(token, id.get<std::int64_t>());
    }
    const std::string text = read_file(merges);
    std::size_t pos = 0, line_no = 0;
    std::int32_t rank = 0;
    while (pos < text.size()) {
      std::size_t eol = text.find('\n', pos);
      if (eol == std::string::npos) eol = text.size();
      std::string line = text.substr(pos, eol - pos);
      pos = eol + 1;
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
      const std::string at = merges.string() + ":" + std::to_string(line_no);
      const auto sp = line.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() ||
          line.find(' ', sp + 1) != std::string::npos) {
        throw Error(at + ": expected two tokens separated by one space, got \"" + line + "\"");
      }
      impl->add_merge(line.substr(0, sp), line.substr(sp + 1), rank++, at);
    }
    // RoBERTa's special tokens (Hugging Face's RobertaTokenizer defaults), where the vocabulary has them.
    for (const char* name : {"<s>", "</s>", "<pad>", "<unk>", "<mask>"}) {
      if (const auto id = impl->find(name))
        impl->add_special(name, *id, std::string(name) == "<mask>", false);
    }
  }
  if (impl->id_to_token.empty()) throw Error(impl->source + ": empty vocabulary");
  impl->finish();
  return Tokenizer(std::move(impl));
}

std::vector<std::int64_t> Tokenizer::encode(std::string_view text) const {
  const Impl& im = *impl_;
  if (const auto bad = find_invalid_utf8(text); bad != std::string_view::npos) {
    throw Error("cannot tokenize invalid UTF-8 (byte " + std::to_string(bad) + " of the text)");
  }
  std::vector<std::int64_t> ids;
  ids.reserve(text.size() / 3 + 1);
  std::size_t segment = 0;  // start of the text not yet encoded
  for (std::size_t i = 0; i < text.size();) {
    const AddedToken* t = im.added_at(text, i);
    if (!t) {
      ++i;
      continue;
    }
    const std::size_t before_end = t->lstrip ? skip_backward_while(text, segment, i, is_white_space) : i;
    im.encode_plain(text.substr(segment, before_end - segment), ids);
    ids.push_back(t->id);
    i += t->content.size();
    if (t->rstrip) i = skip_forward_while(text, i, is_white_space);
    segment = i;
  }
  im.encode_plain(text.substr(segment), ids);
  return ids;
}

std::string Tokenizer::decode(const std::vector<std::int64_t>& ids) const {
  std::string out;
  for (const auto id : ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= impl_->id_used.size() || !impl_->id_used[id]) {
      throw Error("cannot decode token id " + std::to_string(id) + ": not in the vocabulary of " +
                  impl_->source);
    }
    out += impl_->id_to_bytes[id];
  }
  return out;
}

std::int64_t Tokenizer::token_to_id(std::string_view token) const {
  const auto id = impl_->find(token);
  if (!id) throw Error("token '" + std::string(token) + "' is not in the vocabulary of " + impl_->source);
  return *id;
}

std::optional<std::int64_t> Tokenizer::find(std::string_view token) const { return impl_->find(token); }

const std::string& Tokenizer::id_to_token(std::int64_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= impl_->id_used.size() || !impl_->id_used[id]) {
    throw Error("token id " + std::to_string(id) + " is not in the vocabulary of " + impl_->source);
  }
  return impl_->id_to_token[id];
}

std::int64_t Tokenizer::bos_id() const { return impl_->special("<s>"); }
std::int64_t Tokenizer::eos_id() const { return impl_->special("</s>"); }
std::int64_t Tokenizer::pad_id() const { return impl_->special("<pad>"); }
std::int64_t Tokenizer::unk_id() const { return impl_->special("<unk>"); }
std::int64_t Tokenizer::mask_id() const { return impl_->special("<mask>"); }
std::int64_t Tokenizer::vocab_size() const { return static_cast<std::int64_t>(impl_->id_to_token.size()); }

void write_roberta_vocab_from_gpt2(const std::string& gpt2_dir, const std::string& out_dir) {
  const fs::path enc_path = fs::path(gpt2_dir) / "encoder.json", bpe_path = fs::path(gpt2_dir) / "vocab.bpe";
  const Json enc = read_json_file(enc_path);
  if (!enc.is_object()) throw Error(enc_path.string() + ": expected a JSON object of token -> id");
  std::vector<std::string> by_id(enc.size());
  std::vector<bool> seen(enc.size(), false);
  for (const auto& [token, id] : enc.items()) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0 ||
        id.get<std::int64_t>() >= static_cast<std::int64_t>(by_id.size()) || seen[id.get<std::size_t>()]) {
      throw Error(enc_path.string() + ": the id of '" + token + "' is not one of 0.." +
                  std::to_string(by_id.size() - 1) + " used once");
    }
    by_id[id.get<std::size_t>()] = token;
    seen[id.get<std::size_t>()] = true;
  }
  const std::string bpe = read_file(bpe_path);
  if (bpe.rfind("#version", 0) != 0)
    throw Error(bpe_path.string() + ":1: expected a \"#version\" header line");

  // Written by hand in id order (as Hugging Face writes it); ordered_json's linear look-ups would
  // make 50k insertions quadratic.
  std::string vocab = "{";
  std::int64_t next = 0;
  auto entry = [&](const std::string& token) {
    if (next > 0) vocab += ',';
    vocab += Json(token).dump() + ':' + std::to_string(next++);
  };
  const std::vector<std::string> specials = {"<s>", "<pad>", "</s>", "<unk>"};
  for (const auto& s : specials) entry(s);
  for (const auto& token : by_id) {
    if (std::find(specials.begin(), specials.end(), token) != specials.end() || token == "<mask>" ||
        token.rfind("madeupword", 0) == 0) {
      throw Error(enc_path.string() + ": token '" + token + "' clashes with a RoBERTa special token");
    }
    entry(token);
  }
  for (const char* s : {"madeupword0000", "madeupword0001", "madeupword0002", "<mask>"}) entry(s);
  vocab += '}';

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw Error("cannot create " + out_dir + ": " + ec.message());
  const fs::path vocab_out = fs::path(out_dir) / "vocab.json", merges_out = fs::path(out_dir) / "merges.txt";
  {
    std::ofstream out(vocab_out, std::ios::binary);
    out << vocab;
    if (!out) throw Error("cannot write " + vocab_out.string());
  }
  {
    std::ofstream out(merges_out, std::ios::binary);
    const std::size_t body = bpe.find('\n');
    out << "#version: 0.2\n";
    if (body != std::string::npos) out << bpe.substr(body + 1);
    if (!bpe.empty() && bpe.back() != '\n') out << '\n';
    if (!out) throw Error("cannot write " + merges_out.string());
  }
}

}  // namespace bbt::text
