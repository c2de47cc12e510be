#pragma once
// Byte-level BPE tokenizer of GPT-2 / RoBERTa, id-exact with Hugging Face's (and GPT-2's) encoder.
// Loads vocab.json + merges.txt (or encoder.json + vocab.bpe), or a fast tokenizer's tokenizer.json.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bbt::text {

// Text -> ids and back. Immutable after load(); encode() is safe to call from several threads
// (its word cache is locked). Copies share the loaded tables.
//
// Encoding: the text is first split on special/added tokens (<s> </s> <pad> <unk> <mask>, or the
// tokenizer.json's added_tokens), which map to their own ids; <mask> absorbs the white space to its
// left (Hugging Face's lstrip=True). Each remaining piece is pre-tokenised with GPT-2's regex, where
// \s means Unicode White_Space as in Hugging Face's tokenizers and Python (JavaScript's \s differs
// only on U+0085, U+FEFF), mapped byte-wise to GPT-2's printable alphabet and merged by rank.
// No <s> / </s> are added. The input must be valid UTF-8: otherwise bbt::Error names the byte offset.
class Tokenizer {
 public:
  // Reads DIR/tokenizer.json if present, else DIR/vocab.json + DIR/merges.txt, else GPT-2's
  // DIR/encoder.json + DIR/vocab.bpe. Throws bbt::Error naming the file (and line) on any defect.
  static Tokenizer load(const std::string& dir);

  std::vector<std::int64_t> encode(std::string_view text) const;
  // Concatenated bytes of the tokens (special tokens as their text). Ids outside the vocabulary
  // throw. The result may be invalid UTF-8 when the ids cut a character in two.
  std::string decode(const std::vector<std::int64_t>& ids) const;

  // The id of this exact vocabulary entry (in the file's alphabet, e.g. "Ġgreat"); throws if absent.
  std::int64_t token_to_id(std::string_view token) const;
  std::optional<std::int64_t> find(std::string_view token) const;
  // The vocabulary entry of an id as written in the file; throws if out of range.
  const std::string& id_to_token(std::int64_t id) const;

  // Ids of RoBERTa's special tokens; throw bbt::Error when the vocabulary lacks that token.
  std::int64_t bos_id() const;   // <s>
  std::int64_t eos_id() const;   // </s>
  std::int64_t pad_id() const;   // <pad>
  std::int64_t unk_id() const;   // <unk>
  std::int64_t mask_id() const;  // <mask>
  // One more than the largest id (vocabulary and added tokens).
  std::int64_t vocab_size() const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Writes DIR/vocab.json + DIR/merges.txt in RoBERTa's layout from GPT-2's encoder.json + vocab.bpe:
// <s>=0, <pad>=1, </s>=2, <unk>=3, GPT-2 token i -> i+4 (all 50,257, <|endoftext|> kept at 50260),
// then fairseq's madeupword0000..0002 and <mask> last, so a GPT-2 vocabulary gives RoBERTa's size
// 50,265 and <mask>=50264. merges.txt is vocab.bpe under the "#version: 0.2" header. Creates out_dir.
void write_roberta_vocab_from_gpt2(const std::string& gpt2_dir, const std::string& out_dir);

}  // namespace bbt::text
