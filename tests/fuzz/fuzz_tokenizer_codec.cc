// libFuzzer target: Tokenizer::Encode on arbitrary bytes and Tokenizer::Decode /
// StreamingDetokenizer on arbitrary id sequences, with the real tokenizers of
// $OKO_SHARED/models: Qwen3 (byte-level BPE, NFC) and stories260k (SentencePiece BPE
// with byte fallback), loaded once.
// Input: byte 0 picks the case (bit 0: tokenizer, bit 1: encode or decode, bit 2:
// add_special_tokens / skip_special); the rest is the text, or little-endian i32 ids.
// Checked: invalid UTF-8 is an error naming the offset; ids are in the vocabulary;
// Decode yields valid UTF-8; streaming equals one Decode; PieceBytes is DecodePiece where
// that holds whole characters; and for Qwen3, text with no added-token syntax ('<')
// decodes back to its NFC form, and its tokens' PieceBytes join to it.
#include <utf8proc.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "loaders/tokenizer.h"
#include "loaders/utf8.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using oko::Tokenizer;

std::unique_ptr<Tokenizer> LoadOrDie(const std::string& dir) {
  auto t = Tokenizer::Load(dir);
  if (!t.ok()) {
    std::fprintf(stderr, "fuzz_tokenizer_codec: %s (set OKO_SHARED)\n", t.status().message().c_str());
    std::exit(1);
  }
  return std::move(t).value();
}

const Tokenizer& Get(int which) {
  static const std::string shared = [] {
    const char* env = std::getenv("OKO_SHARED");
    return std::string(env != nullptr && *env != '\0' ? env : OKO_DEFAULT_SHARED_DIR);
  }();
  static const auto qwen3 = LoadOrDie(shared + "/models/qwen3-tokenizer");
  static const auto stories = LoadOrDie(shared + "/models/stories260k");
  return which == 0 ? *qwen3 : *stories;
}

// NFC as utf8proc_NFC, but by length: the text may contain NUL bytes.
std::string Nfc(std::string_view s) {
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                          static_cast<utf8proc_ssize_t>(s.size()), &out,
                                          static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) oko::fuzz::Fail("utf8proc_map failed on valid UTF-8");
  std::string r(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
  return r;
}

void CheckDecode(const Tokenizer& t, const std::vector<int32_t>& ids, bool skip_special) {
  const std::string text = t.Decode(ids, skip_special);
  if (oko::utf8::FirstInvalidByte(text) != std::string_view::npos)
    oko::fuzz::Fail("Decode returned invalid UTF-8");
  oko::StreamingDetokenizer stream(t, skip_special);
  std::string streamed;
  for (int32_t id : ids) streamed += stream.Push(id);
  streamed += stream.Flush();
  if (streamed != text) oko::fuzz::Fail("streaming decode differs from Decode:\n[" + oko::fuzz::Escape(streamed) + "]\n[" +
                    oko::fuzz::Escape(text) + "]");
  for (int32_t id : ids) {
    const std::string piece = t.DecodePiece(id), bytes = t.PieceBytes(id);
    if (piece.find("\xEF\xBF\xBD") == std::string::npos && bytes != piece)
      oko::fuzz::Fail("PieceBytes [" + oko::fuzz::Escape(bytes) + "] differs from a whole piece [" +
                      oko::fuzz::Escape(piece) + "]");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  Get(0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace oko;
  if (size == 0) return 0;
  const int which = data[0] & 1;
  const bool decode = (data[0] & 2) != 0;
  const bool flag = (data[0] & 4) != 0;
  const Tokenizer& t = Get(which);
  const std::string_view rest = fuzz::AsText(data + 1, size - 1);
  if (decode) {
    std::vector<int32_t> ids(rest.size() / 4);
    if (!ids.empty()) std::memcpy(ids.data(), rest.data(), ids.size() * 4);
    // Mostly ids in range (raw i32 would almost never be), some raw.
    for (int32_t& id : ids)
      if ((id & 0x40000000) == 0) id = static_cast<int32_t>(static_cast<uint32_t>(id) % (t.vocab_size() + 8));
    CheckDecode(t, ids, flag);
    return 0;
  }
  auto ids = t.Encode(rest, /*add_special_tokens=*/flag);
  const size_t bad = utf8::FirstInvalidByte(rest);
  if (bad != std::string_view::npos) {
    if (ids.ok()) fuzz::Fail("Encode accepted invalid UTF-8");
    if (ids.status().message().find(std::to_string(bad)) == std::string::npos)
      fuzz::Fail("Encode error does not name offset " + std::to_string(bad) + ": " + ids.status().message());
    return 0;
  }
  if (!ids.ok()) fuzz::Fail("Encode failed on valid UTF-8: " + ids.status().message());
  for (int32_t id : *ids)
    if (id < 0 || id >= t.vocab_size()) fuzz::Fail("Encode returned an id outside the vocabulary");
  CheckDecode(t, *ids, false);
  if (which == 0 && !flag && rest.find('<') == std::string_view::npos) {
    const std::string back = t.Decode(*ids);
    const std::string want = Nfc(rest);
    if (back != want) fuzz::Fail("Qwen3 round trip: [" + fuzz::Escape(back) + "] != NFC(input) [" + fuzz::Escape(want) + "]");
    std::string joined;
    for (int32_t id : *ids) joined += t.PieceBytes(id);
    if (joined != want) fuzz::Fail("Qwen3 PieceBytes join to [" + fuzz::Escape(joined) + "], not the text");
  }
  return 0;
}
