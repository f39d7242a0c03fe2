#include "loaders/tokenizer.h"

#include <simdjson.h>

#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/mapped_file.h"
#include "loaders/gguf_tokenizer.h"
#include "loaders/json_util.h"
#include "loaders/utf8.h"

namespace oko {
namespace {

namespace fs = std::filesystem;
namespace od = simdjson::ondemand;
using json = nlohmann::json;

}  // namespace

// A git symlink checked out on a system without symlink support (or copied by a tool
// that does not follow links) becomes a small text file whose whole content is the link
// target, e.g. "../tiny-qwen3/tokenizer.json". Follow such a file when it names an
// existing file; a real tokenizer.json is a JSON object and never looks like a path.
Result<std::string> ResolveTokenizerPath(const std::string& dir) {
  fs::path path = fs::path(dir) / "tokenizer.json";
  for (int hops = 0; hops < 4; ++hops) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
      return Errorf("{}: no tokenizer.json in this folder", dir);
    const auto size = fs::file_size(path, ec);
    if (ec || size > 1024) return path.string();
    OKO_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path.string()));
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    if (text.empty() || text[0] == '{' || text.find('\n') != std::string::npos) return path.string();
    const fs::path target = path.parent_path() / text;
    if (!fs::is_regular_file(target, ec)) return path.string();  // JSON errors will say why
    path = target;
  }
  return Errorf("{}: tokenizer.json link chain is too long", dir);
}

namespace {

std::string SimdjsonMessage(simdjson::error_code e) { return simdjson::error_message(e); }

// The raw JSON text of a value (object, array or scalar), for the small sections that
// are parsed with nlohmann::json.
simdjson::error_code RawJson(od::value v, std::string_view* out) {
  od::json_type type;
  if (auto e = v.type().get(type)) return e;
  if (type == od::json_type::object) {
    od::object o;
    if (auto e = v.get_object().get(o)) return e;
    return o.raw_json().get(*out);
  }
  if (type == od::json_type::array) {
    od::array a;
    if (auto e = v.get_array().get(a)) return e;
    return a.raw_json().get(*out);
  }
  *out = v.raw_json_token();
  return simdjson::SUCCESS;
}

// The "model" section as read: vocab, merges and options.
struct ModelSection {
  std::string type;
  StringArena arena;  // vocab strings
  TokenIndex vocab;
  // Views into the JSON parser's string buffer: valid while the parser lives.
  std::vector<std::pair<std::string_view, std::string_view>> merges;
  BpeOptions options;
  std::optional<std::string> unk_token;
  bool has_vocab = false, has_merges = false;
};

Status ParseVocab(od::value v, ModelSection* m) {
  od::object obj;
  if (v.get_object().get(obj)) return Errorf("model.vocab: expected an object of token -> id");
  size_t count = 0;
  if (auto e = obj.count_fields().get(count)) return Errorf("model.vocab: {}", SimdjsonMessage(e));
  if (count > static_cast<size_t>(kMaxVocabSize))
    return Errorf("model.vocab: {} tokens, over the limit of {}", count, kMaxVocabSize);
  m->vocab.Reserve(count);
  // Inserted in batches, prefetching each slot first (see TokenIndex::Prefetch).
  constexpr size_t kBatch = 16;
  std::string_view keys[kBatch];
  int32_t ids[kBatch];
  uint64_t hashes[kBatch];
  size_t n = 0;
  const auto flush = [&] {
    for (size_t i = 0; i < n; ++i) m->vocab.Insert(keys[i], ids[i], hashes[i]);
    n = 0;
  };
  for (auto field : obj) {
    std::string_view key;
    int64_t id;
    if (auto e = field.unescaped_key().get(key)) return Errorf("model.vocab: {}", SimdjsonMessage(e));
    if (key.size() > kMaxTokenBytes)
      return Errorf("model.vocab: token '{}...' is {} bytes long, over the limit of {} bytes",
                    key.substr(0, 16), key.size(), kMaxTokenBytes);
    if (field.value().get_int64().get(id) || id < 0)
      return Errorf("model.vocab: the id of '{}' must be a non-negative integer", key);
    if (id >= kMaxVocabSize)
      return Errorf("model.vocab: the id of '{}' is {}, over the limit of {} tokens", key, id,
                    kMaxVocabSize);
    keys[n] = m->arena.Store(key);
    ids[n] = static_cast<int32_t>(id);
    hashes[n] = HashBytes(keys[n]);
    m->vocab.Prefetch(hashes[n]);
    if (++n == kBatch) flush();
  }
  flush();
  m->has_vocab = true;
  return {};
}

Status ParseMerges(od::value v, ModelSection* m) {
  od::array arr;
  if (v.get_array().get(arr)) return Errorf("model.merges: expected an array");
  size_t i = 0;
  for (auto item : arr) {
    od::json_type type;
    if (auto e = item.type().get(type)) return Errorf("model.merges[{}]: {}", i, SimdjsonMessage(e));
    if (type == od::json_type::string) {  // "left right"
      std::string_view s;
      if (item.get_string().get(s)) return Errorf("model.merges[{}]: bad string", i);
      const size_t space = s.find(' ');
      if (space == std::string_view::npos || s.find(' ', space + 1) != std::string_view::npos)
        return Errorf("model.merges[{}]: '{}' must be two tokens separated by one space", i, s);
      m->merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else {  // ["left", "right"]
      od::array pair;
      std::string_view parts[2];
      size_t n = 0;
      if (item.get_array().get(pair)) return Errorf("model.merges[{}]: expected a string or a pair", i);
      for (auto part : pair) {
        if (n == 2 || part.get_string().get(parts[n]))
          return Errorf("model.merges[{}]: expected a pair of two strings", i);
        ++n;
      }
      if (n != 2) return Errorf("model.merges[{}]: expected a pair of two strings", i);
      m->merges.emplace_back(parts[0], parts[1]);
    }
    ++i;
  }
  m->has_merges = true;
  return {};
}

// Options that change results and that oko does not implement must not pass silently.
// Whether v is null. simdjson's is_null() gives a result that throws when converted to
// bool on a malformed value; that counts as not null here, so the typed read that
// follows reports the error.
bool IsNull(od::value& v) {
  bool null = false;
  return !v.is_null().get(null) && null;
}

Status CheckUnsupportedString(od::value v, std::string_view key) {
  if (IsNull(v)) return {};
  std::string_view s;
  if (v.get_string().get(s)) return Errorf("model.{}: expected a string or null", key);
  if (!s.empty()) return Errorf("model.{} '{}' is not supported by oko", key, s);
  return {};
}

Status ParseModel(od::value v, ModelSection* m) {
  od::object obj;
  if (v.get_object().get(obj)) return Errorf("model: expected an object");
  for (auto field : obj) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return Errorf("model: {}", SimdjsonMessage(e));
    od::value value;  // by get(): simdjson's implicit conversion throws on an error
    if (auto e = field.value().get(value)) return Errorf("model.{}: {}", key, SimdjsonMessage(e));
    if (key == "type") {
      std::string_view t;
      if (value.get_string().get(t)) return Errorf("model.type: expected a string");
      m->type = t;
    } else if (key == "vocab") {
      OKO_RETURN_IF_ERROR(ParseVocab(value, m));
    } else if (key == "merges") {
      OKO_RETURN_IF_ERROR(ParseMerges(value, m));
    } else if (key == "byte_fallback" || key == "ignore_merges" || key == "fuse_unk") {
      bool b = false;
      if (!IsNull(value) && value.get_bool().get(b))
        return Errorf("model.{}: expected true or false", key);
      (key == "byte_fallback" ? m->options.byte_fallback
       : key == "ignore_merges" ? m->options.ignore_merges
                                : m->options.fuse_unk) = b;
    } else if (key == "unk_token") {
      std::string_view s;
      if (!IsNull(value)) {
        if (value.get_string().get(s)) return Errorf("model.unk_token: expected a string or null");
        m->unk_token = std::string(s);
      }
    } else if (key == "dropout") {
      double d = 0;
      if (!IsNull(value) && (value.get_double().get(d) || d != 0))
        return Errorf("model.dropout (BPE dropout) is not supported by oko");
    } else if (key == "continuing_subword_prefix" || key == "end_of_word_suffix") {
      OKO_RETURN_IF_ERROR(CheckUnsupportedString(value, key));
    }
  }
  // Files from early tokenizers versions have no "type"; HF then recognises BPE by its
  // fields.
  if (m->type != "BPE" && !(m->type.empty() && m->has_merges))
    return Errorf("model.type '{}' is not supported by oko (only BPE)", m->type);
  if (!m->has_vocab) return Errorf("model: missing 'vocab'");
  if (!m->has_merges) return Errorf("model: missing 'merges'");
  return {};
}

Result<std::unique_ptr<BpeModel>> BuildModel(ModelSection m) {
  if (m.unk_token) {
    const int32_t unk = m.vocab.Find(*m.unk_token);
    if (unk < 0) return Errorf("model.unk_token '{}' is not in the vocab", *m.unk_token);
    m.options.unk_id = unk;
  }
  auto model = BpeModel::Create(std::move(m.arena), std::move(m.vocab), m.merges, m.options);
  if (!model.ok()) return model.status().WithContext("model");
  return model;
}

// The sections of tokenizer.json that oko reads.
struct FileSections {
  std::unique_ptr<BpeModel> model;
  json added_tokens = json::array();
  json normalizer, pre_tokenizer, post_processor, decoder;  // null when absent
};

Status ParseFile(std::string_view text, FileSections* s) {
  simdjson::padded_string padded(text);
  od::parser parser;
  od::document doc;
  if (auto e = parser.iterate(padded).get(doc)) return Errorf("not valid JSON: {}", SimdjsonMessage(e));
  od::object root;
  if (auto e = doc.get_object().get(root)) {
    if (e == simdjson::INCORRECT_TYPE) return Errorf("expected a JSON object");
    return Errorf("not valid JSON: {}", SimdjsonMessage(e));
  }
  for (auto field : root) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return Errorf("not valid JSON: {}", SimdjsonMessage(e));
    if (key == "model") {
      ModelSection m;
      od::value value;  // by get(): simdjson's implicit conversion throws on an error
      if (auto e = field.value().get(value)) return Errorf("model: {}", SimdjsonMessage(e));
      OKO_RETURN_IF_ERROR(ParseModel(value, &m));
      // Built here, while the parser that holds the merge strings is alive.
      OKO_ASSIGN_OR_RETURN(s->model, BuildModel(std::move(m)));
      continue;
    }
    json* section = key == "added_tokens"     ? &s->added_tokens
                    : key == "normalizer"     ? &s->normalizer
                    : key == "pre_tokenizer"  ? &s->pre_tokenizer
                    : key == "post_processor" ? &s->post_processor
                    : key == "decoder"        ? &s->decoder
                                              : nullptr;
    // "truncation" and "padding" are skipped on purpose: transformers turns them off
    // unless a call asks for them (encode(text) neither truncates nor pads).
    if (section == nullptr) continue;
    std::string_view raw;
    od::value value;
    if (auto e = field.value().get(value)) return Errorf("{}: {}", key, SimdjsonMessage(e));
    if (auto e = RawJson(value, &raw)) return Errorf("{}: {}", key, SimdjsonMessage(e));
    *section = json::parse(raw, nullptr, /*allow_exceptions=*/false);
    if (section->is_discarded()) return Errorf("{}: not valid JSON", key);
  }
  if (!s->model) return Errorf("missing section 'model'");
  return {};
}

Result<std::vector<AddedToken>> ParseAddedTokens(const json& j) {
  if (!j.is_array()) return Errorf("added_tokens: expected an array");
  std::vector<AddedToken> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const json& t = j[i];
    const std::string where = fmt::format("added_tokens[{}]", i);
    if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() ||
        t["id"].get<int64_t>() < 0 || t["id"].get<int64_t>() > INT32_MAX || !t.contains("content") ||
        !t["content"].is_string()) {
      return Errorf("{}: expected {{\"id\": N, \"content\": \"...\", ...}}, got {}", where, t.dump());
    }
    if (t["id"].get<int64_t>() >= kMaxVocabSize)
      return Errorf("{}: id {} is over the limit of {} tokens", where, t["id"].get<int64_t>(),
                    kMaxVocabSize);
    if (t["content"].get_ref<const std::string&>().size() > kMaxTokenBytes)
      return Errorf("{}: 'content' is {} bytes long, over the limit of {} bytes", where,
                    t["content"].get_ref<const std::string&>().size(), kMaxTokenBytes);
    AddedToken a;
    a.id = static_cast<int32_t>(t["id"].get<int64_t>());
    a.content = t["content"].get<std::string>();
    const auto flag = [&](const char* key, bool* out_flag) -> Status {
      auto it = t.find(key);
      if (it == t.end() || it->is_null()) return {};
      if (!it->is_boolean()) return Errorf("{}: '{}' must be true or false", where, key);
      *out_flag = it->get<bool>();
      return {};
    };
    OKO_RETURN_IF_ERROR(flag("special", &a.special));
    OKO_RETURN_IF_ERROR(flag("lstrip", &a.lstrip));
    OKO_RETURN_IF_ERROR(flag("rstrip", &a.rstrip));
    OKO_RETURN_IF_ERROR(flag("single_word", &a.single_word));
    OKO_RETURN_IF_ERROR(flag("normalized", &a.normalized));
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& model_dir) {
  if (IsGgufPath(model_dir)) {
    OKO_ASSIGN_OR_RETURN(auto gguf, GgufFile::Open(model_dir));
    OKO_ASSIGN_OR_RETURN(TokenizerJsonTexts texts, GgufTokenizerJson(*gguf));
    return FromJson(texts.tokenizer_json, texts.config_json, model_dir + " (its tokenizer as tokenizer.json)");
  }
  OKO_ASSIGN_OR_RETURN(std::string path, ResolveTokenizerPath(model_dir));
  OKO_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  if (file->size() > kMaxTokenizerJsonBytes)
    return Errorf("{}: the file is {} bytes, over the limit of {} bytes for this file", path,
                  file->size(), kMaxTokenizerJsonBytes);
  const std::string config_path = (fs::path(model_dir) / "tokenizer_config.json").string();
  std::string config;
  if (std::error_code ec; fs::exists(config_path, ec)) {
    OKO_ASSIGN_OR_RETURN(config, ReadFileToString(config_path, kMaxTokenizerConfigBytes));
  }
  auto tok = FromJson(std::string_view(reinterpret_cast<const char*>(file->data()), file->size()),
                      "", path);
  if (!tok.ok()) return tok.status();
  OKO_RETURN_IF_ERROR((*tok)->ParseConfig(config, config_path));
  return tok;
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view tokenizer_json,
                                                       std::string_view config_json,
                                                       const std::string& path) {
  FileSections s;
  OKO_RETURN_IF_ERROR(ParseFile(tokenizer_json, &s).WithContext(path));
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  auto added = ParseAddedTokens(s.added_tokens);
  if (!added.ok()) return added.status().WithContext(path);

  int32_t size = 0;
  s.model->vocab().ForEach([&](std::string_view, int32_t id) { size = std::max(size, id + 1); });
  for (const AddedToken& a : *added) size = std::max(size, a.id + 1);
  t->tokens_.resize(size);
  t->special_.resize(size);
  s.model->vocab().ForEach([&](std::string_view token, int32_t id) { t->tokens_[id] = token; });
  for (const AddedToken& a : *added) {
    const std::string_view content = t->added_text_.Store(a.content);
    t->tokens_[a.id] = content;
    t->special_[a.id] = a.special;
    t->added_ids_.Insert(content, a.id);
    (a.normalized ? t->normalized_added_ : t->raw_added_).Add(a);
  }
  t->model_ = std::move(s.model);

  const auto section = [&](auto parse, const json& j, const char* name, auto* out) -> Status {
    auto r = parse(j, name);
    if (!r.ok()) return r.status().WithContext(path);
    *out = std::move(r).value();
    return {};
  };
  OKO_RETURN_IF_ERROR(section(ParseNormalizer, s.normalizer, "normalizer", &t->normalizer_));
  OKO_RETURN_IF_ERROR(section(ParsePreTokenizer, s.pre_tokenizer, "pre_tokenizer", &t->pre_tokenizer_));
  OKO_RETURN_IF_ERROR(section(ParsePostProcessor, s.post_processor, "post_processor", &t->post_processor_));
  if (t->post_processor_) {  // the ids it adds (those of an empty sequence) must be tokens
    std::vector<int32_t> added_ids;
    t->post_processor_->Process(&added_ids);
    for (int32_t id : added_ids)
      if (id < 0 || id >= t->vocab_size())
        return Errorf("{}: post_processor: token id {} is not in the vocabulary ({} ids)", path, id,
                      t->vocab_size());
  }
  OKO_RETURN_IF_ERROR(section(ParseDecoder, s.decoder, "decoder", &t->decoder_));
  if (!config_json.empty()) OKO_RETURN_IF_ERROR(t->ParseConfig(config_json, "tokenizer_config.json"));
  return t;
}

Status Tokenizer::ParseConfig(std::string_view config_json, const std::string& path) {
  if (config_json.empty()) return {};
  OKO_ASSIGN_OR_RETURN(const json j, ParseJsonText(config_json, path));
  if (!j.is_object()) return Errorf("{}: not a JSON object", path);
  // bos_token/eos_token: a string, an AddedToken object {"content": ...}, or null.
  const auto token = [&](const char* key, std::optional<int32_t>* out) -> Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return {};
    const json* content = &*it;
    if (it->is_object() && it->contains("content")) content = &(*it)["content"];
    if (!content->is_string()) return Errorf("{}: '{}' must be a string or null", path, key);
    *out = TokenId(content->get<std::string>());
    if (!*out) return Errorf("{}: '{}' {} is not a token of tokenizer.json", path, key, content->dump());
    return {};
  };
  OKO_RETURN_IF_ERROR(token("bos_token", &bos_id_));
  OKO_RETURN_IF_ERROR(token("eos_token", &eos_id_));
  if (auto it = j.find("add_bos_token"); it != j.end() && !it->is_null()) {
    if (!it->is_boolean()) return Errorf("{}: 'add_bos_token' must be true or false", path);
    add_bos_token_ = it->get<bool>();
  }
  return {};
}

Result<std::vector<int32_t>> Tokenizer::Encode(std::string_view text, bool add_special_tokens) const {
  if (const size_t bad = utf8::FirstInvalidByte(text); bad != std::string_view::npos) {
    return Errorf("the text is not valid UTF-8: byte 0x{:02X} at offset {}",
                  static_cast<unsigned char>(text[bad]), bad);
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<TextSegment> segments;
  raw_added_.Split(text, &segments);
  for (const TextSegment& seg : segments) {
    if (seg.token_id >= 0) {
      ids.push_back(seg.token_id);
    } else {
      OKO_RETURN_IF_ERROR(
          EncodePlain(text.substr(seg.begin, seg.end - seg.begin), seg.begin == 0, &ids));
    }
  }
  if (add_special_tokens && post_processor_) post_processor_->Process(&ids);
  return ids;
}

Status Tokenizer::EncodePlain(std::string_view text, bool at_input_start,
                              std::vector<int32_t>* ids) const {
  std::string normalized(text);
  if (normalizer_) OKO_RETURN_IF_ERROR(normalizer_->Apply(&normalized));
  std::vector<TextSegment> segments;
  normalized_added_.Split(normalized, &segments);
  BpeScratch scratch;
  for (const TextSegment& seg : segments) {
    if (seg.token_id >= 0) {
      ids->push_back(seg.token_id);
      continue;
    }
    PreTokens p;
    p.text = seg.begin == 0 && seg.end == normalized.size()
                 ? std::move(normalized)
                 : normalized.substr(seg.begin, seg.end - seg.begin);
    p.pieces.emplace_back(0, static_cast<uint32_t>(p.text.size()));
    p.at_input_start = at_input_start && seg.begin == 0;
    if (pre_tokenizer_) OKO_RETURN_IF_ERROR(pre_tokenizer_->Apply(&p));
    for (size_t i = 0; i < p.pieces.size(); ++i) {
      OKO_RETURN_IF_ERROR(model_->Tokenize(p.Piece(i), p.byte_level, &scratch, ids));
    }
  }
  return {};
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special) const {
  return Decode(ids, skip_special, InvalidUtf8::kReplace);
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special, InvalidUtf8 invalid) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size() || tokens_[id].empty()) continue;
    if (skip_special && special_[id]) continue;
    tokens.emplace_back(tokens_[id]);
  }
  std::string out;
  if (decoder_) {
    decoder_->DecodeChain(&tokens, invalid);
    for (const std::string& t : tokens) out += t;
  } else {  // HF joins undecoded tokens with spaces
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
  }
  return out;
}

std::string Tokenizer::PieceAfter(int32_t before, int32_t id, InvalidUtf8 invalid) const {
  const int32_t pair[2] = {before, id};
  const std::string both = Decode(pair, false, invalid), first = Decode(std::span(pair, 1), false, invalid);
  if (both.starts_with(first)) return both.substr(first.size());
  return Decode(std::span(pair + 1, 1), false, invalid);
}

std::vector<std::string> Tokenizer::DecodePieces(std::span<const int32_t> ids) const {
  std::vector<std::string> pieces;
  pieces.reserve(ids.size());
  for (size_t k = 0; k < ids.size(); ++k)
    pieces.push_back(PieceAfter(k ? ids[k - 1] : ids[k], ids[k], InvalidUtf8::kReplace));
  return pieces;
}

std::string Tokenizer::DecodePiece(int32_t id) const { return PieceAfter(id, id, InvalidUtf8::kReplace); }

std::string Tokenizer::PieceBytes(int32_t id) const { return PieceAfter(id, id, InvalidUtf8::kKeep); }

std::string_view Tokenizer::TokenText(int32_t id) const {
  return id >= 0 && id < vocab_size() ? tokens_[id] : std::string_view();
}

std::optional<int32_t> Tokenizer::TokenId(std::string_view token) const {
  if (const int32_t id = added_ids_.Find(token); id >= 0) return id;
  if (const int32_t id = model_->vocab().Find(token); id >= 0) return id;
  return std::nullopt;
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size() && special_[id];
}

namespace {
// "<0xHH>": a byte token of HF's ByteFallback decoder (byte_fallback.rs, which checks only
// this shape). A run of them that is not valid UTF-8 as a whole becomes one U+FFFD per
// byte, so bytes already valid on their own (<0x41> = "A") can still turn into U+FFFD
// when the next byte token arrives.
bool IsByteFallbackToken(std::string_view t) {
  return t.size() == 6 && t.starts_with("<0x") && t.back() == '>';
}
}  // namespace

std::string StreamingDetokenizer::Push(int32_t id) {
  ids_.push_back(id);
  // Hold back while the last token Decode keeps is a byte token: its run may continue.
  for (size_t i = ids_.size(); i-- > read_;) {
    const int32_t k = ids_[i];
    const std::string_view text = tokenizer_.TokenText(k);  // "" for ids Decode skips
    if (text.empty() || (skip_special_ && tokenizer_.IsSpecial(k))) continue;
    if (IsByteFallbackToken(text)) return {};
    break;
  }
  const std::string prefix = tokenizer_.Decode(std::span(ids_).first(read_), skip_special_);
  std::string text = tokenizer_.Decode(ids_, skip_special_);
  // U+FFFD at the end: the last token stopped inside a character; wait for the rest.
  if (text.size() <= prefix.size() || text.ends_with("\xEF\xBF\xBD")) return {};
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(read_));
  read_ = ids_.size();
  return text.substr(prefix.size());
}

std::string StreamingDetokenizer::Flush() {
  const std::string prefix = tokenizer_.Decode(std::span(ids_).first(read_), skip_special_);
  std::string text = tokenizer_.Decode(ids_, skip_special_);
  ids_.clear();
  read_ = 0;
  return text.size() > prefix.size() ? text.substr(prefix.size()) : std::string();
}

}  // namespace oko
