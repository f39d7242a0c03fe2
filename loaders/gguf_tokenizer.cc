#include "loaders/gguf_tokenizer.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "common/limits.h"
#include "common/mapped_file.h"
#include "loaders/chat_template.h"
#include "loaders/json_util.h"
#include "loaders/tokenizer.h"

namespace oko {
namespace {

using json = nlohmann::json;

// llama.cpp's llama_token_type.
enum TokenType : int64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// The split regexes of the pre-tokenizers llama.cpp names in tokenizer.ggml.pre, as the
// models' own tokenizer.json files spell them.
struct PreTokenizerRegex {
  std::string_view pre;
  std::string_view regex;
  bool nfc;  // the model's tokenizer.json normalizes to NFC
};
constexpr PreTokenizerRegex kPreTokenizers[] = {
    {"qwen2",
     R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     true},
    {"llama-bpe",
     R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     false},
};

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<int64_t> types;   // kNormal when the file has no token_type
  std::vector<double> scores;   // empty when the file has none
};

Result<Vocab> ReadVocab(const GgufFile& f) {
  Vocab v;
  OKO_ASSIGN_OR_RETURN(const auto* tokens, f.Array("tokenizer.ggml.tokens", GgufType::kString));
  if (tokens->empty() || tokens->size() > static_cast<size_t>(kMaxVocabSize))
    return Errorf("{}: 'tokenizer.ggml.tokens' has {} tokens (1 to {} allowed)", f.path(), tokens->size(),
                  kMaxVocabSize);
  for (const GgufValue& t : *tokens) v.tokens.push_back(t.str());
  v.types.assign(v.tokens.size(), kNormal);
  if (f.Find("tokenizer.ggml.token_type") != nullptr) {
    OKO_ASSIGN_OR_RETURN(const auto* types, f.Array("tokenizer.ggml.token_type", GgufType::kInt32));
    if (types->size() != v.tokens.size())
      return Errorf("{}: 'tokenizer.ggml.token_type' has {} entries for {} tokens", f.path(), types->size(),
                    v.tokens.size());
    for (size_t i = 0; i < types->size(); ++i) v.types[i] = std::get<int64_t>((*types)[i].value);
  }
  if (f.Find("tokenizer.ggml.scores") != nullptr) {
    OKO_ASSIGN_OR_RETURN(const auto* scores, f.Array("tokenizer.ggml.scores", GgufType::kFloat32));
    if (scores->size() != v.tokens.size())
      return Errorf("{}: 'tokenizer.ggml.scores' has {} entries for {} tokens", f.path(), scores->size(),
                    v.tokens.size());
    for (const GgufValue& s : *scores) v.scores.push_back(std::get<double>(s.value));
  }
  return v;
}

// A token id key (tokenizer.ggml.bos_token_id, ...) when present; must name a token.
Result<std::optional<int64_t>> TokenIdKey(const GgufFile& f, const std::string& key, const Vocab& v) {
  if (f.Find(key) == nullptr) return std::optional<int64_t>();
  OKO_ASSIGN_OR_RETURN(uint64_t id, f.Uint(key));
  if (id >= v.tokens.size())
    return Errorf("{}: '{}' is {}, past the {} tokens of tokenizer.ggml.tokens", f.path(), key, id, v.tokens.size());
  return std::optional<int64_t>(static_cast<int64_t>(id));
}

Result<bool> BoolKey(const GgufFile& f, const std::string& key, bool dflt) {
  if (f.Find(key) == nullptr) return dflt;
  return f.Bool(key);
}

bool IsAdded(int64_t type) { return type == kControl || type == kUnknown || type == kUserDefined; }

json AddedTokens(const Vocab& v) {
  json added = json::array();
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    if (!IsAdded(v.types[id])) continue;
    added.push_back({{"id", id}, {"content", v.tokens[id]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", v.types[id] != kUserDefined}});
  }
  return added;
}

// TemplateProcessing that adds BOS / EOS around a single sequence; null when neither.
json BosEosPostProcessor(const Vocab& v, std::optional<int64_t> bos, std::optional<int64_t> eos) {
  if (!bos && !eos) return nullptr;
  json single = json::array(), special = json::object();
  auto add = [&](int64_t id) {
    const std::string& t = v.tokens[id];
    single.push_back({{"SpecialToken", {{"id", t}, {"type_id", 0}}}});
    special[t] = {{"id", t}, {"ids", {id}}, {"tokens", {t}}};
  };
  if (bos) add(*bos);
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (eos) add(*eos);
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", single}, {"special_tokens", special}};
}

Result<json> ByteLevelBpe(const GgufFile& f, const Vocab& v) {
  OKO_ASSIGN_OR_RETURN(std::string pre, f.Find("tokenizer.ggml.pre") ? f.String("tokenizer.ggml.pre")
                                                                      : Result<std::string>(std::string("default")));
  const auto* regex = std::find_if(std::begin(kPreTokenizers), std::end(kPreTokenizers),
                                   [&](const PreTokenizerRegex& p) { return p.pre == pre; });
  if (regex == std::end(kPreTokenizers))
    return Errorf("{}: 'tokenizer.ggml.pre' is '{}', not supported with the gpt2 model (supported: qwen2, llama-bpe)",
                  f.path(), pre);
  OKO_ASSIGN_OR_RETURN(const auto* merges, f.Array("tokenizer.ggml.merges", GgufType::kString));
  json vocab = json::object(), merge_list = json::array();
  for (size_t id = 0; id < v.tokens.size(); ++id)
    if (!IsAdded(v.types[id])) vocab[v.tokens[id]] = id;
  for (const GgufValue& m : *merges) merge_list.push_back(m.str());
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false},
                           {"use_regex", false}};
  json j;
  j["normalizer"] = regex->nfc ? json{{"type", "NFC"}} : json(nullptr);
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers",
                         {{{"type", "Split"},
                           {"pattern", {{"Regex", regex->regex}}},
                           {"behavior", "Isolated"},
                           {"invert", false}},
                          byte_level}}};
  j["decoder"] = byte_level;
  j["model"] = {{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", std::move(merge_list)},
                {"byte_fallback", false}, {"fuse_unk", false}, {"ignore_merges", false}};
  return j;
}

// Every split of a NORMAL token into two tokens, ranked by the token's score (highest
// first; ties: lower id, then the earlier split).
json MergesFromScores(const Vocab& v) {
  std::unordered_map<std::string_view, size_t> ids;
  for (size_t id = 0; id < v.tokens.size(); ++id) ids.emplace(v.tokens[id], id);
  struct Merge {
    double score;
    size_t id, split;
  };
  std::vector<Merge> merges;
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    if (v.types[id] != kNormal) continue;
    const std::string_view t = v.tokens[id];
    for (size_t k = 1; k < t.size(); ++k) {
      if ((static_cast<unsigned char>(t[k]) & 0xC0) == 0x80) continue;  // inside a character
      auto l = ids.find(t.substr(0, k)), r = ids.find(t.substr(k));
      if (l != ids.end() && r != ids.end() && v.types[l->second] == kNormal && v.types[r->second] == kNormal)
        merges.push_back({v.scores[id], id, k});
    }
  }
  std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) { return a.score > b.score; });
  json out = json::array();
  for (const Merge& m : merges) {
    const std::string& t = v.tokens[m.id];
    out.push_back({t.substr(0, m.split), t.substr(m.split)});
  }
  return out;
}

Result<json> SentencePieceBpe(const GgufFile& f, const Vocab& v, std::optional<int64_t> unk) {
  if (v.scores.empty()) return Errorf("{}: 'tokenizer.ggml.scores' is missing (the llama tokenizer needs it)", f.path());
  OKO_ASSIGN_OR_RETURN(bool space_prefix, BoolKey(f, "tokenizer.ggml.add_space_prefix", true));
  json vocab = json::object();
  for (size_t id = 0; id < v.tokens.size(); ++id) vocab[v.tokens[id]] = id;
  const std::string space = "\u2581";
  json normalizers = json::array(), decoders = json::array();
  if (space_prefix) normalizers.push_back({{"type", "Prepend"}, {"prepend", space}});
  normalizers.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", space}});
  decoders.push_back({{"type", "Replace"}, {"pattern", {{"String", space}}}, {"content", " "}});
  decoders.push_back({{"type", "ByteFallback"}});
  decoders.push_back({{"type", "Fuse"}});
  if (space_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  json j;
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", normalizers}};
  j["pre_tokenizer"] = nullptr;
  j["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
  j["model"] = {{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", MergesFromScores(v)},
                {"byte_fallback", true}, {"fuse_unk", true}, {"ignore_merges", false}};
  if (unk) j["model"]["unk_token"] = v.tokens[*unk];
  return j;
}

}  // namespace

Result<TokenizerJsonTexts> GgufTokenizerJson(const GgufFile& f) {
  OKO_ASSIGN_OR_RETURN(std::string model, f.String("tokenizer.ggml.model"));
  OKO_ASSIGN_OR_RETURN(Vocab v, ReadVocab(f));
  OKO_ASSIGN_OR_RETURN(auto bos, TokenIdKey(f, "tokenizer.ggml.bos_token_id", v));
  OKO_ASSIGN_OR_RETURN(auto eos, TokenIdKey(f, "tokenizer.ggml.eos_token_id", v));
  OKO_ASSIGN_OR_RETURN(auto pad, TokenIdKey(f, "tokenizer.ggml.padding_token_id", v));
  OKO_ASSIGN_OR_RETURN(auto unk, TokenIdKey(f, "tokenizer.ggml.unknown_token_id", v));
  // llama.cpp's defaults when the keys are absent: BOS for SentencePiece, not for gpt2.
  OKO_ASSIGN_OR_RETURN(bool add_bos, BoolKey(f, "tokenizer.ggml.add_bos_token", model == "llama"));
  OKO_ASSIGN_OR_RETURN(bool add_eos, BoolKey(f, "tokenizer.ggml.add_eos_token", false));
  json j;
  if (model == "gpt2") {
    OKO_ASSIGN_OR_RETURN(j, ByteLevelBpe(f, v));
  } else if (model == "llama") {
    OKO_ASSIGN_OR_RETURN(j, SentencePieceBpe(f, v, unk));
  } else {
    return Errorf("{}: 'tokenizer.ggml.model' is '{}', not supported (supported: gpt2, llama)", f.path(), model);
  }
  if ((add_bos && !bos) || (add_eos && !eos))
    return Errorf("{}: 'tokenizer.ggml.add_{}_token' is true but there is no {}_token_id", f.path(),
                  add_bos && !bos ? "bos" : "eos", add_bos && !bos ? "bos" : "eos");
  j["version"] = "1.0";
  j["added_tokens"] = AddedTokens(v);
  j["post_processor"] = BosEosPostProcessor(v, add_bos ? bos : std::nullopt, add_eos ? eos : std::nullopt);
  json config = {{"add_bos_token", add_bos}};
  auto name = [&](const char* key, std::optional<int64_t> id) {
    if (id) config[key] = v.tokens[*id];
  };
  name("bos_token", bos);
  name("eos_token", eos);
  name("pad_token", pad);
  name("unk_token", unk);
  if (f.Find("tokenizer.chat_template") != nullptr) {
    OKO_ASSIGN_OR_RETURN(std::string tmpl, f.String("tokenizer.chat_template"));
    config["chat_template"] = std::move(tmpl);
  }
  // Invalid UTF-8 (a byte-level token cut in the middle) is replaced, not refused: token
  // strings are looked up, not shown.
  const auto text = [](const json& x) { return x.dump(-1, ' ', false, json::error_handler_t::replace); };
  return TokenizerJsonTexts{text(j), text(config)};
}

}  // namespace oko

namespace oko {
namespace {

struct HfTokenizer {
  std::string path;  // tokenizer.json, for messages
  json tokenizer;
  nlohmann::ordered_json config = nlohmann::ordered_json::object();  // tokenizer_config.json
};

struct GgufVocab {
  std::vector<std::string> tokens;
  std::vector<int64_t> types;
};

// llama.cpp's converter takes an added token spelled like a control token as one, whatever
// its "special" says (Qwen's <|fim_prefix|>).
bool LooksLikeControl(const std::string& t) { return t.size() >= 4 && t.starts_with("<|") && t.ends_with("|>"); }

bool IsByteToken(const std::string& t) {
  return t.size() == 6 && t.starts_with("<0x") && t.back() == '>' && std::isxdigit(static_cast<unsigned char>(t[3])) &&
         std::isxdigit(static_cast<unsigned char>(t[4]));
}

Result<GgufVocab> VocabOf(const HfTokenizer& t, int64_t vocab_size, bool sentencepiece) {
  const json& model = t.tokenizer["model"];
  if (!model.contains("vocab") || !model["vocab"].is_object())
    return Errorf("{}: model.vocab is missing or not an object", t.path);
  GgufVocab v;
  v.tokens.resize(vocab_size);
  v.types.assign(vocab_size, kUnused);
  auto place = [&](const std::string& text, const json& id, int64_t type) -> Status {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= vocab_size)
      return Errorf("{}: token '{}' has id {}, outside the model's vocabulary of {}", t.path, text, id.dump(),
                    vocab_size);
    v.tokens[id.get<int64_t>()] = text;
    v.types[id.get<int64_t>()] = type;
    return {};
  };
  const std::string unk = model.contains("unk_token") && model["unk_token"].is_string() ? model["unk_token"] : "";
  for (const auto& [text, id] : model["vocab"].items()) {
    const int64_t type = !unk.empty() && text == unk ? kUnknown : sentencepiece && IsByteToken(text) ? kByte : kNormal;
    OKO_RETURN_IF_ERROR(place(text, id, type));
  }
  if (t.tokenizer.contains("added_tokens") && t.tokenizer["added_tokens"].is_array())
    for (const json& a : t.tokenizer["added_tokens"]) {
      if (!a.contains("content") || !a["content"].is_string()) return Errorf("{}: an added token has no content", t.path);
      const std::string text = a["content"];
      const bool special = (a.contains("special") && a["special"].is_boolean() && a["special"].get<bool>()) ||
                           LooksLikeControl(text);
      OKO_RETURN_IF_ERROR(place(text, a.contains("id") ? a["id"] : json(),
                                text == unk ? kUnknown : special ? kControl : kUserDefined));
    }
  for (int64_t id = 0; id < vocab_size; ++id)
    if (v.types[id] == kUnused) v.tokens[id] = fmt::format("[PAD{}]", id);
  return v;
}

// "a b" per merge (tokenizer.json holds "a b" or ["a", "b"]).
Result<std::vector<std::string>> MergesOf(const HfTokenizer& t) {
  std::vector<std::string> out;
  const json& merges = t.tokenizer["model"].value("merges", json::array());
  for (const json& m : merges) {
    if (m.is_string()) out.push_back(m);
    else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
      out.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    else return Errorf("{}: model.merges holds {}, not a pair of tokens", t.path, m.dump());
  }
  return out;
}

// tokenizer.ggml.pre of a byte-level BPE: the llama.cpp name of its split regex.
Result<std::string> PreTokenizerName(const HfTokenizer& t) {
  const json& pre = t.tokenizer.value("pre_tokenizer", json());
  std::string regex;
  if (pre.is_object() && pre.value("type", "") == "Sequence")
    for (const json& p : pre.value("pretokenizers", json::array()))
      if (p.is_object() && p.value("type", "") == "Split" && p.contains("pattern") && p["pattern"].contains("Regex") &&
          p["pattern"]["Regex"].is_string())
        regex = p["pattern"]["Regex"];
  for (const PreTokenizerRegex& p : kPreTokenizers)
    if (p.regex == regex) return std::string(p.pre);
  return Errorf("{}: the pre-tokenizer's split regex is not one llama.cpp names (supported: Qwen2/Qwen3's qwen2, "
                "Llama 3's llama-bpe)",
                t.path);
}

// A SentencePiece model as Hugging Face converts it: BPE with byte fallback.
bool IsSentencePiece(const HfTokenizer& t) { return t.tokenizer["model"].value("byte_fallback", false); }

std::vector<GgufValue> Scores(const GgufVocab& v, const std::vector<std::string>& merges) {
  std::unordered_map<std::string, size_t> first_rank;
  for (size_t r = 0; r < merges.size(); ++r) {
    std::string joined = merges[r];
    joined.erase(joined.find(' '), 1);
    first_rank.emplace(std::move(joined), r);
  }
  std::vector<GgufValue> scores;
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    float score = 0;
    if (v.types[id] == kNormal) {
      auto it = first_rank.find(v.tokens[id]);
      score = -static_cast<float>(it != first_rank.end() ? it->second : merges.size() + id);
    }
    scores.push_back(GgufFloat32(score));
  }
  return scores;
}

// The id of tokenizer_config.json's `key` (a string or {"content": ...}); nullopt when it
// is absent or not a token.
std::optional<int64_t> ConfigTokenId(const HfTokenizer& t, const GgufVocab& v, const char* key) {
  const auto it = t.config.find(key);
  if (it == t.config.end()) return std::nullopt;
  std::string text;
  if (it->is_string()) text = *it;
  else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) text = (*it)["content"];
  else return std::nullopt;
  const auto found = std::find(v.tokens.begin(), v.tokens.end(), text);
  if (found == v.tokens.end()) return std::nullopt;
  return found - v.tokens.begin();
}

void AddSpecialIds(const HfTokenizer& t, const GgufVocab& v, const ModelConfig& c, GgufMetadata& md) {
  struct SpecialId {
    const char* gguf;        // tokenizer.ggml.<gguf>_token_id
    const char* config_key;  // in tokenizer_config.json
    std::optional<int64_t> from_config_json;
  };
  const SpecialId ids[] = {
      {"bos", "bos_token", c.bos_token_id},
      {"eos", "eos_token", c.eos_token_ids.empty() ? std::nullopt : std::optional<int64_t>(c.eos_token_ids[0])},
      {"unknown", "unk_token", std::nullopt},
      {"padding", "pad_token", std::nullopt}};
  for (const SpecialId& s : ids) {
    std::optional<int64_t> id = ConfigTokenId(t, v, s.config_key);
    if (!id) id = s.from_config_json;
    if (id && *id >= 0 && *id < static_cast<int64_t>(v.tokens.size()))
      md.emplace_back(fmt::format("tokenizer.ggml.{}_token_id", s.gguf), GgufUint32(static_cast<uint32_t>(*id)));
  }
  for (const char* key : {"add_bos_token", "add_eos_token"})
    if (t.config.contains(key) && t.config[key].is_boolean())
      md.emplace_back(fmt::format("tokenizer.ggml.{}", key), GgufBool(t.config[key].get<bool>()));
}

Result<HfTokenizer> ReadHfTokenizer(const std::string& dir) {
  HfTokenizer t;
  OKO_ASSIGN_OR_RETURN(t.path, ResolveTokenizerPath(dir));
  OKO_ASSIGN_OR_RETURN(std::string text, ReadFileToString(t.path, kMaxTokenizerJsonBytes));
  OKO_ASSIGN_OR_RETURN(t.tokenizer, ParseJsonText(text, t.path));
  if (!t.tokenizer.is_object() || !t.tokenizer.contains("model") || !t.tokenizer["model"].is_object() ||
      t.tokenizer["model"].value("type", "") != "BPE")
    return Errorf("{}: not a BPE tokenizer (the tokenizers GGUF holds are byte-level BPE and SentencePiece BPE)",
                  t.path);
  const std::string config = (std::filesystem::path(dir) / "tokenizer_config.json").string();
  if (PathExists(config)) {
    OKO_ASSIGN_OR_RETURN(std::string config_text, ReadFileToString(config, kMaxTokenizerConfigBytes));
    OKO_ASSIGN_OR_RETURN(t.config, ParseJsonText<nlohmann::ordered_json>(config_text, config));
    if (!t.config.is_object()) return Errorf("{}: not a JSON object", config);
  }
  return t;
}

std::vector<GgufValue> Strings(const std::vector<std::string>& v) {
  std::vector<GgufValue> out;
  out.reserve(v.size());
  for (const std::string& s : v) out.push_back(GgufString(s));
  return out;
}

Result<GgufMetadata> TokenizerMetadata(const HfTokenizer& t, const std::string& model_dir, const ModelConfig& c,
                                       bool has_chat_template) {
  const bool sentencepiece = IsSentencePiece(t);
  OKO_ASSIGN_OR_RETURN(GgufVocab v, VocabOf(t, c.vocab_size, sentencepiece));
  OKO_ASSIGN_OR_RETURN(std::vector<std::string> merges, MergesOf(t));
  GgufMetadata md;
  md.emplace_back("tokenizer.ggml.model", GgufString(sentencepiece ? "llama" : "gpt2"));
  if (sentencepiece) {
    md.emplace_back("tokenizer.ggml.pre", GgufString("default"));
  } else {
    OKO_ASSIGN_OR_RETURN(std::string pre, PreTokenizerName(t));
    md.emplace_back("tokenizer.ggml.pre", GgufString(pre));
  }
  md.emplace_back("tokenizer.ggml.tokens", GgufArray(GgufType::kString, Strings(v.tokens)));
  if (sentencepiece) md.emplace_back("tokenizer.ggml.scores", GgufArray(GgufType::kFloat32, Scores(v, merges)));
  std::vector<GgufValue> types;
  for (int64_t type : v.types) types.push_back(GgufInt32(static_cast<int32_t>(type)));
  md.emplace_back("tokenizer.ggml.token_type", GgufArray(GgufType::kInt32, std::move(types)));
  if (sentencepiece) {
    const json& normalizer = t.tokenizer.value("normalizer", json());
    const bool prepend = normalizer.dump().find(R"("type":"Prepend")") != std::string::npos;
    md.emplace_back("tokenizer.ggml.add_space_prefix", GgufBool(prepend));
  } else {
    md.emplace_back("tokenizer.ggml.merges", GgufArray(GgufType::kString, Strings(merges)));
  }
  AddSpecialIds(t, v, c, md);
  if (has_chat_template) {
    OKO_ASSIGN_OR_RETURN(ChatTemplateSource tmpl, ReadChatTemplateSource(model_dir));
    md.emplace_back("tokenizer.chat_template", GgufString(std::move(tmpl.source)));
  }
  return md;
}

}  // namespace

Result<GgufMetadata> GgufTokenizerMetadata(const std::string& model_dir, const ModelConfig& c,
                                           bool has_chat_template) {
  OKO_ASSIGN_OR_RETURN(HfTokenizer t, ReadHfTokenizer(model_dir));
  try {
    return TokenizerMetadata(t, model_dir, c, has_chat_template);
  } catch (const nlohmann::json::exception& e) {  // a field of an unexpected JSON type
    return Errorf("{}: {}", t.path, JsonErrorReason(e));
  }
}

}  // namespace oko
