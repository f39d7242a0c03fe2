// Malformed inputs for every parser oko has, and every class of bad command line, run
// through the real `oko` binary as a user would meet them: each case copies a good model
// folder (stories260k, 1 MB), breaks one thing (or nothing), runs one command, and expects
// its exit status (2 for bad input by default; 1 for a bad flag value, 3 for an output
// that cannot be written) with one error line that names the file or flag and what is
// wrong. Every limit of common/limits.h (and the template engine's) has a case; so has
// every policy of docs/CLI.md. tests/robustness/flag_sweep_test.cc adds the sweep of
// absurd values over every flag.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/model_folder.h"
#include "tests/test_util.h"

namespace oko {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;
using ::testing::HasSubstr;

// ---- editing helpers (they work on raw files, without oko's loaders) ----

ojson ReadJson(const std::string& path) { return ojson::parse(test::ReadBytes(path)); }
void WriteJson(const std::string& path, const ojson& j) { test::WriteBytes(path, j.dump(2)); }
void EditJson(const std::string& path, const std::function<void(ojson&)>& edit) {
  ojson j = ReadJson(path);
  edit(j);
  WriteJson(path, j);
}

// A safetensors file as its header text and data region.
struct Safetensors {
  std::string header, data;
};
Safetensors ReadSafetensors(const std::string& path) {
  const std::string bytes = test::ReadBytes(path);
  uint64_t len = 0;
  std::memcpy(&len, bytes.data(), 8);
  return {bytes.substr(8, len), bytes.substr(8 + len)};
}
void WriteSafetensors(const std::string& path, const std::string& header, const std::string& data) {
  std::string bytes(8, '\0');
  const uint64_t len = header.size();
  std::memcpy(bytes.data(), &len, 8);
  test::WriteBytes(path, bytes + header + data);
}
// Rewrites the JSON header of `path`, keeping the data region.
void EditHeader(const std::string& path, const std::function<void(ojson&)>& edit) {
  Safetensors st = ReadSafetensors(path);
  ojson h = ojson::parse(st.header);
  edit(h);
  WriteSafetensors(path, h.dump(), st.data);
}

std::string Q(const std::string& s) { return "'" + s + "'"; }

// ---- the cases ----

struct Case {
  const char* name;
  // Breaks the copy of the model folder `dir`; `trace` is a good trace file to break.
  std::function<void(const std::string& dir, const std::string& trace)> corrupt;
  // The command line; "$M" is the model folder, "$D/x" a file in it, "$T" the trace.
  std::string args;
  std::string message;  // expected in stderr ("$M" replaced too)
  // Also expected in stderr when `message` does not name the file (or flag) itself.
  std::string where = "";
  int exit_code = 2;
  // Where stdout goes, as a shell redirection (">/dev/full"); empty: captured.
  std::string stdout_to = "";
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::string Expand(std::string s, const std::string& dir, const std::string& trace) {
  for (auto [key, value] : {std::pair<std::string, std::string>{"$M", dir}, {"$T", trace}}) {
    for (size_t p = s.find(key); p != std::string::npos; p = s.find(key, p + value.size()))
      s.replace(p, key.size(), value);
  }
  return s;
}

const char kInfo[] = "info -m '$M'";
const char kTokenize[] = "tokenize -m '$M' --text 'Once upon a time'";
const char kTemplate[] = "template -m '$M' --messages '$M/messages.json'";
const char kDiff[] = "trace --diff '$M/bad.safetensors' '$T'";

std::string Config(const std::string& d) { return d + "/config.json"; }
std::string Weights(const std::string& d) { return d + "/model.safetensors"; }
std::string Tok(const std::string& d) { return d + "/tokenizer.json"; }
std::string TokConfig(const std::string& d) { return d + "/tokenizer_config.json"; }

// A chat template of our own (stories260k has none) and the messages to render with it.
void SetTemplate(const std::string& d, const std::string& tmpl) {
  EditJson(TokConfig(d), [&](ojson& j) { j["chat_template"] = tmpl; });
  test::WriteBytes(d + "/messages.json", R"([{"role": "user", "content": "hi"}])");
}

// The model split into one shard named by an index, as large models ship.
void Shard(const std::string& d, const std::function<void(ojson&)>& edit_index) {
  fs::rename(Weights(d), d + "/model-00001-of-00001.safetensors");
  ojson map = ojson::object();
  const ojson header = test::SafetensorsHeader(d + "/model-00001-of-00001.safetensors");
  for (const auto& [name, e] : header.items())
    if (name != "__metadata__") map[name] = "model-00001-of-00001.safetensors";
  ojson index = {{"metadata", {{"total_size", 0}}}, {"weight_map", map}};
  edit_index(index);
  WriteJson(d + "/model.safetensors.index.json", index);
}

// A copy of the good trace with its header edited, as $M/bad.safetensors.
void BadTrace(const std::string& d, const std::string& trace, const std::function<void(ojson&)>& edit) {
  fs::copy_file(trace, d + "/bad.safetensors");
  EditHeader(d + "/bad.safetensors", edit);
}

std::string QwenTokenizer() { return Q(test::SharedPath("models/qwen3-tokenizer")); }

// The safetensors entry of `name` written a second time at the head of the header.
void NameTwice(const std::string& path, const std::string& name) {
  Safetensors st = ReadSafetensors(path);
  const ojson h = ojson::parse(st.header);
  st.header = "{\"" + name + "\": " + h[name].dump() + ", " + st.header.substr(1);
  WriteSafetensors(path, st.header, st.data);
}

std::string Ids(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += (i ? "," : "") + std::to_string(3 + i % 500);
  return s;
}

const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {
      // ---- config.json ----
      {"ConfigNotJson", [](auto d, auto) { test::WriteBytes(Config(d), "{\"model_type\": "); },
       kInfo, "config.json: not valid JSON: "},
      {"ConfigInvalidUtf8", [](auto d, auto) {
         test::WriteBytes(Config(d), "{\"model_type\": \"lla\xff\xfema\"}"); },
       kInfo, "config.json: not valid JSON: "},
      {"ConfigNotObject", [](auto d, auto) { test::WriteBytes(Config(d), "[1, 2]"); },
       kInfo, "config.json: not a JSON object"},
      {"ConfigMissingField", [](auto d, auto) { EditJson(Config(d), [](ojson& j) { j.erase("hidden_size"); }); },
       kInfo, "config.json: missing 'hidden_size'"},
      {"ConfigFieldWrongType", [](auto d, auto) { EditJson(Config(d), [](ojson& j) { j["num_hidden_layers"] = "5"; }); },
       kInfo, "config.json: 'num_hidden_layers' must be an integer, got \"5\""},
      {"ConfigNegativeDim", [](auto d, auto) { EditJson(Config(d), [](ojson& j) { j["intermediate_size"] = -3; }); },
       kInfo, "config.json: 'intermediate_size' must be >= 1, got -3"},
      {"ConfigUnknownModelType", [](auto d, auto) { EditJson(Config(d), [](ojson& j) { j["model_type"] = "gpt2"; }); },
       kInfo, "config.json: model_type 'gpt2' is not supported"},
      {"ConfigHeadsNotMultiple", [](auto d, auto) { EditJson(Config(d), [](ojson& j) { j["num_key_value_heads"] = 3; }); },
       kInfo, "config.json: num_attention_heads 8 is not a multiple of num_key_value_heads 3"},
      {"ConfigHeadDimOdd", [](auto d, auto) { EditJson(Config(d), [](ojson& j) { j["head_dim"] = 7; }); },
       kInfo, "config.json: head_dim 7 must be even"},
      {"ConfigLayersOverLimit", [](auto d, auto) { EditJson(Config(d), [](ojson& j) { j["num_hidden_layers"] = 100000; }); },
       kInfo, "config.json: 'num_hidden_layers' is 100000, over oko's limit of 1024"},
      {"ConfigVocabOverLimit", [](auto d, auto) { EditJson(Config(d), [](ojson& j) { j["vocab_size"] = int64_t{1} << 40; }); },
       kInfo, "config.json: 'vocab_size' is 1099511627776, over oko's limit of 16777216"},
      {"ConfigHiddenOverLimit", [](auto d, auto) { EditJson(Config(d), [](ojson& j) { j["hidden_size"] = int64_t{1} << 31; }); },
       kInfo, "config.json: 'hidden_size' is 2147483648, over oko's limit of 131072"},
      {"ConfigRopeScalingUnknown", [](auto d, auto) {
         EditJson(Config(d), [](ojson& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; }); },
       kInfo, "config.json: rope_scaling type 'yarn' is not implemented"},
      {"ConfigActivationUnknown", [](auto d, auto) { EditJson(Config(d), [](ojson& j) { j["hidden_act"] = "gelu"; }); },
       kInfo, "config.json: hidden_act 'gelu' is not implemented"},
      {"ConfigMistralBadWindow", [](auto d, auto) {
         EditJson(Config(d), [](ojson& j) { j["model_type"] = "mistral"; j["sliding_window"] = 0; }); },
       kInfo, "config.json: 'sliding_window' must be >= 1, got 0"},
      {"ConfigQwen2SlidingLayers", [](auto d, auto) {
         EditJson(Config(d), [](ojson& j) {
           j["model_type"] = "qwen2";
           j["use_sliding_window"] = true;
           j["sliding_window"] = 4;
           j["max_window_layers"] = 2;
         }); },
       kInfo, "config.json: 'use_sliding_window': true with max_window_layers 2 < num_hidden_layers 5"},
      {"ConfigOverSizeLimit", [](auto d, auto) { test::WriteBytes(Config(d), "{}" + std::string((17 << 20) - 2, ' ')); },
       kInfo, "config.json: the file is 17825792 bytes, over the limit of 16777216 bytes"},
      {"GenerationConfigWrongType", [](auto d, auto) {
         EditJson(d + "/generation_config.json", [](ojson& j) { j["temperature"] = "hot"; }); },
       kInfo, "generation_config.json: 'temperature' must be a number, got \"hot\""},
      {"ConfigDisagreesWithTensors", [](auto d, auto) { EditJson(Config(d), [](ojson& j) { j["intermediate_size"] = 128; }); },
       kInfo, "model.safetensors: tensor 'model.layers.0.mlp.gate_proj.weight' has shape [172, 64], expected [128, 64]"},

      // ---- model.safetensors ----
      {"SafetensorsTooShort", [](auto d, auto) { test::WriteBytes(Weights(d), "abc"); },
       kInfo, "model.safetensors: file is 3 bytes, too short for a safetensors header"},
      {"SafetensorsHeaderOverLimit", [](auto d, auto) {
         std::string b = test::ReadBytes(Weights(d));
         const uint64_t len = uint64_t{1} << 40;
         std::memcpy(b.data(), &len, 8);
         test::WriteBytes(Weights(d), b); },
       kInfo, "model.safetensors: header length 1099511627776 exceeds the 104857600 byte limit"},
      {"SafetensorsHeaderPastEnd", [](auto d, auto) {
         std::string b = test::ReadBytes(Weights(d));
         const uint64_t len = b.size();
         std::memcpy(b.data(), &len, 8);
         test::WriteBytes(Weights(d), b); },
       kInfo, "header length 1044992 runs past the end of the file (1044992 bytes)", "model.safetensors"},
      {"SafetensorsHeaderNotJson", [](auto d, auto) {
         WriteSafetensors(Weights(d), "{\"a\": {\"dtype\": ", ReadSafetensors(Weights(d)).data); },
       kInfo, "model.safetensors: header is not valid JSON: "},
      {"SafetensorsHeaderInvalidUtf8", [](auto d, auto) {
         Safetensors st = ReadSafetensors(Weights(d));
         st.header.replace(st.header.find("model.norm.weight"), 5, "m\xc3(el");
         WriteSafetensors(Weights(d), st.header, st.data); },
       kInfo, "model.safetensors: header is not valid JSON: "},
      {"SafetensorsUnknownDtype", [](auto d, auto) {
         EditHeader(Weights(d), [](ojson& h) { h["model.norm.weight"]["dtype"] = "Q4_K"; }); },
       kInfo, "model.safetensors: tensor 'model.norm.weight': unknown dtype 'Q4_K'"},
      {"SafetensorsOffsetsPastEnd", [](auto d, auto) {
         EditHeader(Weights(d), [](ojson& h) {
           auto& o = h["model.norm.weight"]["data_offsets"];
           o[0] = o[0].get<uint64_t>() + (1 << 24);
           o[1] = o[1].get<uint64_t>() + (1 << 24);
         }); },
       kInfo, "model.safetensors: tensor 'model.norm.weight': data_offsets"},
      {"SafetensorsShapeDisagreesWithOffsets", [](auto d, auto) {
         EditHeader(Weights(d), [](ojson& h) { h["model.norm.weight"]["shape"] = {65}; }); },
       kInfo, "model.safetensors: tensor 'model.norm.weight': shape [65] of F32 needs 260 bytes but data_offsets span 256"},
      {"SafetensorsOverlap", [](auto d, auto) {
         EditHeader(Weights(d), [](ojson& h) {
           h["model.norm.weight"]["data_offsets"] = {131200, 131456};  // input_layernorm: [131072, 131328)
         }); },
       kInfo, "tensors 'model.layers.0.input_layernorm.weight' and 'model.norm.weight' overlap", "model.safetensors"},
      {"SafetensorsTensorsShareBytes", [](auto d, auto) {
         EditHeader(Weights(d), [](ojson& h) {
           h["model.norm.weight"]["data_offsets"] = {131072, 131328};  // exactly input_layernorm's bytes
         }); },
       kInfo, "overlap", "model.safetensors: tensors '"},
      {"SafetensorsGapBetweenTensors", [](auto d, auto) {
         EditHeader(Weights(d), [](ojson& h) {
           // Drop a tensor the loader would not miss first: its bytes then belong to none.
           h.erase("model.layers.0.input_layernorm.weight");
         }); },
       kInfo, "model.safetensors: bytes [131072, 131328) of the data region belong to no tensor"},
      {"SafetensorsBytesAfterTheLastTensor", [](auto d, auto) {
         Safetensors st = ReadSafetensors(Weights(d));
         WriteSafetensors(Weights(d), st.header, st.data + std::string(64, '\0')); },
       kInfo, "model.safetensors: bytes [1040128, 1040192) of the data region belong to no tensor (after the last)"},
      {"SafetensorsTensorNamedTwice", [](auto d, auto) { NameTwice(Weights(d), "model.norm.weight"); },
       kInfo, "model.safetensors: the header names tensor 'model.norm.weight' twice"},
      {"SafetensorsNegativeDim", [](auto d, auto) {
         EditHeader(Weights(d), [](ojson& h) { h["model.norm.weight"]["shape"] = {-64}; }); },
       kInfo, "model.safetensors: tensor 'model.norm.weight': shape [-64] has an entry that is not a non-negative integer"},
      {"SafetensorsRankOverLimit", [](auto d, auto) {
         EditHeader(Weights(d), [](ojson& h) { h["model.norm.weight"]["shape"] = {1, 1, 1, 1, 1, 1, 1, 1, 64}; }); },
       kInfo, "model.safetensors: tensor 'model.norm.weight': shape has 9 dimensions, over the limit of 8"},
      {"SafetensorsTooManyTensors", [](auto d, auto) {
         EditHeader(Weights(d), [](ojson& h) {
           // Appended to the object's vector of pairs: h[name] looks each name up in
           // order first, 70000^2 / 2 comparisons (minutes in the sanitizer build).
           auto& entries = h.get_ref<ojson::object_t&>();
           const ojson empty = {{"dtype", "F32"}, {"shape", {0}}, {"data_offsets", {0, 0}}};
           for (int i = 0; i < 70000; ++i) entries.emplace_back(fmt::format("extra.{}", i), empty);
         }); },
       kInfo, "model.safetensors: the header lists 70047 tensors, over the limit of 65536 per file"},
      {"SafetensorsNameOverLimit", [](auto d, auto) {
         EditHeader(Weights(d), [](ojson& h) {
           h[std::string(5000, 'x')] = {{"dtype", "F32"}, {"shape", {0}}, {"data_offsets", {0, 0}}};
         }); },
       kInfo, "model.safetensors: a tensor name is 5000 bytes long, over the limit of 1024 bytes"},
      {"SafetensorsMetadataNotString", [](auto d, auto) {
         EditHeader(Weights(d), [](ojson& h) { h["__metadata__"] = {{"format", 3}}; }); },
       kInfo, "model.safetensors: __metadata__ value 'format' is not a string"},
      {"SafetensorsIntegerWeights", [](auto d, auto) {
         EditHeader(Weights(d), [](ojson& h) { h["model.norm.weight"]["dtype"] = "I32"; }); },
       kInfo, "model.safetensors: tensor 'model.norm.weight' has dtype I32, expected F32, BF16 or F16"},

      // ---- model.safetensors.index.json (sharded models) ----
      {"IndexNotJson", [](auto d, auto) {
         Shard(d, [](ojson&) {});
         test::WriteBytes(d + "/model.safetensors.index.json", "{\"weight_map\": {"); },
       kInfo, "model.safetensors.index.json: not valid JSON: "},
      {"IndexWithoutWeightMap", [](auto d, auto) { Shard(d, [](ojson& j) { j.erase("weight_map"); }); },
       kInfo, "model.safetensors.index.json: missing 'weight_map' object"},
      {"IndexShardOutsideFolder", [](auto d, auto) {
         Shard(d, [](ojson& j) { j["weight_map"]["model.norm.weight"] = "../../etc/passwd"; }); },
       kInfo, "model.safetensors.index.json: weight_map['model.norm.weight'] names '../../etc/passwd', not a file in the folder"},
      {"IndexShardMissing", [](auto d, auto) {
         Shard(d, [](ojson& j) { j["weight_map"]["model.norm.weight"] = "model-00002-of-00002.safetensors"; }); },
       kInfo, "model.safetensors.index.json: shard 'model-00002-of-00002.safetensors' named in the weight_map is missing"},
      {"IndexTensorNotInShard", [](auto d, auto) {
         Shard(d, [](ojson& j) { j["weight_map"]["model.layers.9.mlp.up_proj.weight"] = "model-00001-of-00001.safetensors"; }); },
       kInfo, "model.safetensors.index.json: tensor 'model.layers.9.mlp.up_proj.weight' is not in shard 'model-00001-of-00001.safetensors'"},

      // ---- tokenizer.json ----
      {"TokenizerNotJson", [](auto d, auto) { test::WriteBytes(Tok(d), "{\"model\": {\"type\": \"BPE\""); },
       kTokenize, "tokenizer.json: not valid JSON"},
      {"TokenizerInvalidUtf8", [](auto d, auto) {
         std::string t = test::ReadBytes(Tok(d));
         t.replace(t.find("\"<0x00>\""), 8, "\"<0x\xff\xfe>\"");
         test::WriteBytes(Tok(d), t); },
       kTokenize, "tokenizer.json: not valid JSON: "},
      {"TokenizerNoModel", [](auto d, auto) { EditJson(Tok(d), [](ojson& j) { j.erase("model"); }); },
       kTokenize, "tokenizer.json: missing section 'model'"},
      {"TokenizerUnigram", [](auto d, auto) { EditJson(Tok(d), [](ojson& j) { j["model"]["type"] = "Unigram"; }); },
       kTokenize, "tokenizer.json: model.type 'Unigram' is not supported by oko (only BPE)"},
      {"TokenizerNegativeId", [](auto d, auto) { EditJson(Tok(d), [](ojson& j) { j["model"]["vocab"]["<0x00>"] = -3; }); },
       kTokenize, "tokenizer.json: model.vocab: the id of '<0x00>' must be a non-negative integer"},
      {"TokenizerIdOverLimit", [](auto d, auto) { EditJson(Tok(d), [](ojson& j) { j["model"]["vocab"]["<0x00>"] = 2000000000; }); },
       kTokenize, "tokenizer.json: model.vocab: the id of '<0x00>' is 2000000000, over the limit of 16777216 tokens"},
      {"TokenizerTokenOverLimit", [](auto d, auto) {
         EditJson(Tok(d), [](ojson& j) { j["model"]["vocab"][std::string(70000, 'a')] = 600; }); },
       kTokenize, "tokenizer.json: model.vocab: token 'aaaaaaaaaaaaaaaa...' is 70000 bytes long, over the limit of 65536 bytes"},
      {"TokenizerBadMerge", [](auto d, auto) { EditJson(Tok(d), [](ojson& j) { j["model"]["merges"][1] = "h e x"; }); },
       kTokenize, "tokenizer.json: model.merges[1]: 'h e x' must be two tokens separated by one space"},
      {"TokenizerAddedTokenMalformed", [](auto d, auto) { EditJson(Tok(d), [](ojson& j) { j["added_tokens"][0].erase("content"); }); },
       kTokenize, "tokenizer.json: added_tokens[0]: expected {\"id\": N, \"content\": \"...\", ...}"},
      {"TokenizerAddedTokenIdOverLimit", [](auto d, auto) { EditJson(Tok(d), [](ojson& j) { j["added_tokens"][2]["id"] = 2000000000; }); },
       kTokenize, "tokenizer.json: added_tokens[2]: id 2000000000 is over the limit of 16777216 tokens"},
      {"TokenizerUnknownNormalizer", [](auto d, auto) {
         EditJson(Tok(d), [](ojson& j) { j["normalizer"] = {{"type", "Precompiled"}}; }); },
       kTokenize, "tokenizer.json: normalizer: normalizer type 'Precompiled' is not supported by oko"},
      {"TokenizerBadRegex", [](auto d, auto) {
         EditJson(Tok(d), [](ojson& j) {
           j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}, {"invert", false}};
         }); },
       kTokenize, "tokenizer.json: pre_tokenizer.pattern"},
      {"InfoChecksATruncatedTokenizer", [](auto d, auto) {
         const std::string t = test::ReadBytes(Tok(d));
         test::WriteBytes(Tok(d), t.substr(0, t.size() / 2)); },
       kInfo, "tokenizer.json: not valid JSON"},
      {"TokenizerConfigNotJson", [](auto d, auto) { test::WriteBytes(TokConfig(d), "{\"bos_token\": <s>}"); },
       kTokenize, "tokenizer_config.json: not valid JSON: "},
      {"TokenizerConfigUnknownEos", [](auto d, auto) { EditJson(TokConfig(d), [](ojson& j) { j["eos_token"] = "<|end|>"; }); },
       kTokenize, "tokenizer_config.json: 'eos_token' \"<|end|>\" is not a token of tokenizer.json"},

      // ---- prompts ----
      {"PromptInvalidUtf8", [](auto, auto) {}, "tokenize -m '$M' --text \"$(printf 'Once \\377 upon')\"",
       "--text: the text is not valid UTF-8: byte 0xFF at offset 5"},
      {"RunPromptInvalidUtf8", [](auto, auto) {}, "run -m '$M' -t 1 -n 1 -p \"$(printf '\\303(')\"",
       "-p: the text is not valid UTF-8: byte 0xC3 at offset 0"},
      {"ChatSystemPromptInvalidUtf8", [](auto, auto) {}, "chat -m '$M' -t 1 -n 1 --system \"$(printf 'Be \\342\\202')\"",
       "--system: the system prompt is not valid UTF-8: byte 0xE2 at offset 3"},
      {"PromptLongerThanContext", [](auto, auto) {}, "run -m '$M' -t 1 -n 1 -c 16 --ids " + Ids(20),
       "the prompt has 20 tokens, more than the context of 16 positions (raise -c/--ctx)", "oko run: error"},
      {"PromptLongerThanModelPositions", [](auto, auto) {}, "logits -m '$M' -t 1 --out '$M/l.npy' --ids " + Ids(513),
       "the prompt has 513 tokens, more than the 512 positions the model allows (max_position_embeddings in config.json)",
       "oko logits: error"},
      {"PromptIdOutsideVocab", [](auto, auto) {}, "run -m '$M' -t 1 -n 1 --ids 1,512",
       "--ids: token id 512 is outside the vocabulary [0, 512)"},

      // ---- chat template (tokenizer_config.json chat_template, chat_template.jinja) ----
      {"TemplateSyntaxError", [](auto d, auto) { SetTemplate(d, "{% for m in messages %}{{ m.content }}"); },
       kTemplate, "tokenizer_config.json chat_template:"},
      {"TemplateUnknownTag", [](auto d, auto) { SetTemplate(d, "{% frobnicate %}"); },
       kTemplate, "tokenizer_config.json chat_template:1:"},
      {"TemplateNotString", [](auto d, auto) {
         SetTemplate(d, "");
         EditJson(TokConfig(d), [](ojson& j) { j["chat_template"] = 42; }); },
       kTemplate, "tokenizer_config.json: 'chat_template' must be a string or a list of {name, template}"},
      {"TemplateParseDepthOverLimit", [](auto d, auto) {
         SetTemplate(d, "{{ " + std::string(300, '(') + "1" + std::string(300, ')') + " }}"); },
       kTemplate, "nesting deeper than 200 levels", "tokenizer_config.json chat_template:1:"},
      {"TemplateRecursionOverLimit", [](auto d, auto) {
         SetTemplate(d, "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"); },
       kTemplate, "macro calls nested deeper than 32", "tokenizer_config.json chat_template:"},
      {"TemplateLoopsOverLimit", [](auto d, auto) {
         SetTemplate(d, "{% for i in range(2000) %}{% for j in range(2000) %}{% endfor %}{% endfor %}"); },
       kTemplate, "more than 1048576 loop iterations in one render", "tokenizer_config.json chat_template:"},
      {"TemplateRangeOverLimit", [](auto d, auto) { SetTemplate(d, "{{ range(100000000) | length }}"); },
       kTemplate, "range() of more than 4194304 items", "tokenizer_config.json chat_template:"},
      {"TemplateStringOverLimit", [](auto d, auto) { SetTemplate(d, "{{ 'x' * 100000000 }}"); },
       kTemplate, "a string would exceed 16 MiB", "tokenizer_config.json chat_template:"},
      {"TemplateOutputOverLimit", [](auto d, auto) {
         SetTemplate(d, "{% set s = 'x' * 1000000 %}{% for i in range(20) %}{{ s }}{% endfor %}"); },
       kTemplate, "output exceeds the limit of 16777216 bytes", "tokenizer_config.json chat_template:"},
      {"TemplateFileOverLimit", [](auto d, auto) {
         SetTemplate(d, "unused");
         test::WriteBytes(d + "/chat_template.jinja", std::string((1 << 20) + 1, 'x')); },
       kTemplate, "chat_template.jinja: the file is 1048577 bytes, over the limit of 1048576 bytes"},
      {"TemplateFileInvalidUtf8", [](auto d, auto) {
         SetTemplate(d, "unused");
         test::WriteBytes(d + "/chat_template.jinja", "{{ messages[0].content }} caf\xe9"); },
       kTemplate, "chat_template.jinja: not valid UTF-8: byte 0xE9 at offset 29"},
      {"TemplateRaisesException", [](auto d, auto) { SetTemplate(d, "{{ raise_exception('only user turns') }}"); },
       kTemplate, "only user turns", "tokenizer_config.json chat_template:"},
      {"MessagesNotJson", [](auto d, auto) {
         SetTemplate(d, "{{ messages[0].content }}");
         test::WriteBytes(d + "/messages.json", "[{\"role\": \"user\""); },
       kTemplate, "messages.json: not valid JSON: "},
      {"MessagesInvalidUtf8", [](auto d, auto) {
         SetTemplate(d, "{{ messages[0].content }}");
         test::WriteBytes(d + "/messages.json", "[{\"role\": \"user\", \"content\": \"\xe2\x28\xa1\"}]"); },
       kTemplate, "messages.json: not valid JSON: "},
      {"MessagesNotAList", [](auto d, auto) {
         SetTemplate(d, "{{ messages[0].content }}");
         test::WriteBytes(d + "/messages.json", R"({"messages": "hi"})"); },
       kTemplate, "messages.json: 'messages' must be a list of messages"},

      // ---- attention traces (oko trace --diff reads them) ----
      {"TraceNotSafetensors", [](auto d, auto) { test::WriteBytes(d + "/bad.safetensors", "not a trace"); },
       kDiff, "bad.safetensors: header length"},
      {"TraceNotAnOkoTrace", [](auto d, auto t) { BadTrace(d, t, [](ojson& h) { h["__metadata__"]["format"] = "pt"; }); },
       kDiff, "bad.safetensors: metadata 'format' is not 'oko-trace-1' (not an oko trace)"},
      {"TraceTokensNotJson", [](auto d, auto t) { BadTrace(d, t, [](ojson& h) { h["__metadata__"]["tokens"] = "[\"a\","; }); },
       kDiff, "bad.safetensors: metadata 'tokens' is not valid JSON"},
      {"TraceTokenIdsMismatch", [](auto d, auto t) { BadTrace(d, t, [](ojson& h) { h["__metadata__"]["token_ids"] = "[1]"; }); },
       kDiff, "bad.safetensors: metadata has 4 tokens but 1 token_ids"},
      {"TracePositionOutOfRange", [](auto d, auto t) {
         BadTrace(d, t, [](ojson& h) { h["__metadata__"]["query_positions"] = "[0, 1, 2, 99]"; }); },
       kDiff, "bad.safetensors: metadata 'query_positions' has position 99 outside the 4 tokens"},
      {"TraceLayerWithoutTensor", [](auto d, auto t) {
         BadTrace(d, t, [](ojson& h) { h["__metadata__"]["layers"] = "[0, 1, 2, 3, 4, 7]"; }); },
       kDiff, "bad.safetensors: metadata 'layers' names layer 7 but there is no tensor 'attn.7'"},
      {"TraceTensorShapeWrong", [](auto d, auto t) {
         BadTrace(d, t, [](ojson& h) { h["__metadata__"]["heads"] = "[0, 1]"; }); },
       kDiff, "bad.safetensors: tensor 'attn.0' has shape [8, 4, 4], expected [2, 4, 4]"},

      // ---- the command line: every flag checked before any work (docs/CLI.md) ----
      {"FlagNegativeCount", [](auto, auto) {}, "run -m '$M' -p hi -n -1", "oko run: error: -n must be at least 0 (got -1)",
       "", 1},
      {"FlagNotAnInteger", [](auto, auto) {}, "run -m '$M' -p hi -n abc", "-n: 'abc' is not an integer", "", 1},
      {"FlagIntegerTooLarge", [](auto, auto) {}, "run -m '$M' -p hi -n 99999999999",
       "-n 99999999999 is too large (max 2147483647)", "", 1},
      {"FlagBelowMinimum", [](auto, auto) {}, "run -m '$M' -p hi -c 0", "-c must be at least 2 (got 0)", "", 1},
      {"FlagNaN", [](auto, auto) {}, "run -m '$M' -p hi --temp nan", "--temp must be a finite number (got nan)", "", 1},
      {"FlagInfinity", [](auto, auto) {}, "chat -m '$M' --repeat-penalty inf", "--repeat-penalty must be a finite number",
       "", 1},
      {"FlagHexFloat", [](auto, auto) {}, "run -m '$M' -p hi --temp 0x10", "--temp: '0x10' is not a number", "", 1},
      {"FlagOutOfRealRange", [](auto, auto) {}, "run -m '$M' -p hi --top-p 2", "--top-p must be in (0, 1], got 2", "", 1},
      {"FlagZeroPenalty", [](auto, auto) {}, "run -m '$M' -p hi --repeat-penalty 0",
       "--repeat-penalty must be in (0, 100], got 0", "", 1},
      {"FlagSeedNegative", [](auto, auto) {}, "run -m '$M' -p hi --seed -1", "--seed must be at least 0 (got -1)", "", 1},
      {"FlagSeedTooLarge", [](auto, auto) {}, "run -m '$M' -p hi --seed 18446744073709551616",
       "--seed 18446744073709551616 is too large", "", 1},
      {"FlagSinkNotBelowCtx", [](auto, auto) {}, "run -m '$M' -p hi -c 16 --sink 16",
       "--sink must be less than -c (16), got 16", "", 1},
      {"FlagNeedsChat", [](auto, auto) {}, "run -m '$M' -p hi --system 'Be nice'", "--system requires --chat", "", 1},
      {"ThreadsCapped", [](auto, auto) {}, "run -m '$M' -p hi -t 20000", "-t 20000 is too large (max ", "", 1},
      {"UnknownSubcommand", [](auto, auto) {}, "frobnicate", "oko: error: unknown subcommand 'frobnicate'", "", 1},
      {"MissingModelFolder", [](auto, auto) {}, "run -m '$M/nope' -p hi", "-m $M/nope: no such folder", "oko run: error"},
      {"MissingInputFile", [](auto, auto) {}, "template -m '$M' --messages '$M/nope.json'",
       "--messages $M/nope.json: no such file"},
      {"IdsEmpty", [](auto, auto) {}, "run -m '$M' --ids ''", "--ids is empty"},
      {"IdsNotANumber", [](auto, auto) {}, "detokenize -m '$M' --ids '[1, x]'", "--ids: 'x' is not a token id"},
      // ---- resources: sized before they are taken ----
      {"KvCacheLargerThanMemory", [](auto, auto) {}, "run -m '$M' -p hi -c 99999999999",
       "the KV cache of 99999999999 positions would need 128000000326400 bytes (116.4 TiB)", "-c 99999999999"},
      {"BenchKvCacheLargerThanMemory", [](auto, auto) {}, "bench -m '$M' -p 0 -n 1 -d 2147483647",
       "positions would need", "oko bench: error"},
      {"BenchLongerThanCtx", [](auto, auto) {}, "bench -m '$M' -p 32 -n 8 -c 16",
       "-p 32 + -d 0 + -n 8 needs a context of 41 positions, more than -c 16"},
      {"TracePromptLongerThanCtx", [](auto, auto) {}, "trace -m '$M' -c 16 --show --ids " + Ids(20),
       "the prompt has 20 tokens, more than the context of 16 positions"},
      {"TraceLargerThanMemory", [](auto, auto) {}, "trace -m '$M' --ids 1,2 -n 2147483647 --max-bytes 18446744073709551615 --show",
       "more than this machine's", "the trace would hold 18446744073709551615 bytes"},
      {"TraceOverMaxBytes", [](auto, auto) {}, "trace -m '$M' --ids 1,2 -n 100 --max-bytes 1000 --show",
       "the trace would hold 1664640 bytes (1.6 MiB), over --max-bytes 1000"},
      {"TraceQueriesPastTheSequence", [](auto, auto) {}, "trace -m '$M' --ids 1,2,3 --queries 30 --out '$M/t.st'",
       "--queries 30: the sequence has 3 positions (0-2)"},
      {"TraceLayerNotRecorded", [](auto, auto) {}, "trace -m '$M' --ids 1,2,3 --layers 0 --layer 3 --show",
       "--layer 3: not recorded"},
      {"TraceViewOfNotATrace", [](auto, auto) {}, "trace --view '$M/config.json' --show",
       "config.json is not a safetensors trace"},
      // ---- outputs: a failed write is exit 3, stdout included; nothing owned is overwritten ----
      {"StdoutFull", [](auto, auto) {}, "tokenize -m '$M' --text hi", "oko tokenize: error: cannot write to stdout",
       "", 3, ">/dev/full"},
      {"StdoutClosed", [](auto, auto) {}, "detokenize -m '$M' --ids 400,401", "oko detokenize: error: cannot write to stdout", "", 3,
       ">&-"},
      {"TraceOutUnwritable", [](auto, auto) {}, "trace -m '$M' --ids 1,2 --out /proc/oko/t.safetensors",
       "--out /proc/oko/t.safetensors: cannot write", "", 3},
      {"MakeModelKeepsAFullFolder", [](auto, auto) {}, "make-model --preset tiny-qwen3 --out '$M'",
       "the folder is not empty; make-model would overwrite its files (--force to do it)"},
      {"MakeModelTokenizerDoesNotFitConfig", [](auto, auto) {},
       "make-model --config '$M/config.json' --tokenizer " + QwenTokenizer() + " --out '$M/new'",
       "tokens, more than vocab_size 512 of the config"},
      {"ChatTokenizerLargerThanModel", [](auto d, auto) {
         for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
           test::WriteBytes(d + "/" + f, test::ReadBytes(test::SharedPath("models/qwen3-tokenizer/") + f)); },
       "chat -m '$M' -n 2", "tokenizer.json has 151669 tokens, more than vocab_size 512 of config.json"},
      {"RunPromptIdsPastTheModel", [](auto d, auto) {
         for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
           test::WriteBytes(d + "/" + f, test::ReadBytes(test::SharedPath("models/qwen3-tokenizer/") + f)); },
       "run -m '$M' -p hello -n 2", "-p: token id 14990 is outside the vocabulary [0, 512)"},
      {"ChatScriptedErrorIsTheExitStatus", [](auto d, auto) { test::WriteBytes(d + "/in.txt", "/reset now\nhi\n"); },
       "chat -m '$M' -n 2", "/reset takes no argument (got 'now')", "", 2, "<'$M/in.txt' >/dev/null"},
  };
  return cases;
}

class RobustnessTest : public ::testing::TestWithParam<Case> {
 protected:
  // One good model folder and one good trace for every case of this process.
  static void SetUpTestSuite() {
    base_ = new std::string(test::TempDir("base") + "/model");
    test::CopyFolder(test::SharedPath("models/stories260k"), *base_);
    trace_ = new std::string(test::TempDir("trace") + "/good.safetensors");
    const auto r = test::RunOko("trace -m " + Q(*base_) + " -t 1 --ids 1,403,407,261 --out " + Q(*trace_));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static std::string* base_;
  static std::string* trace_;
};
std::string* RobustnessTest::base_ = nullptr;
std::string* RobustnessTest::trace_ = nullptr;

TEST_P(RobustnessTest, ExitsWithItsStatusAndAMessageNamingTheProblem) {
  const Case& c = GetParam();
  const std::string dir = test::TempDir(c.name) + "/model";
  test::CopyFolder(*base_, dir);
  c.corrupt(dir, *trace_);
  const std::string args = Expand(c.args, dir, *trace_);
  const auto r = c.stdout_to.empty() ? test::RunOko(args) : test::RunOkoStdoutTo(args, Expand(c.stdout_to, dir, *trace_));
  EXPECT_EQ(r.exit_code, c.exit_code) << "oko " << args << "\nstderr: " << r.err;
  EXPECT_THAT(r.err, HasSubstr(Expand(c.message, dir, *trace_))) << "oko " << args;
  EXPECT_THAT(r.err, HasSubstr(c.where)) << "oko " << args;
  EXPECT_THAT(r.err, ::testing::StartsWith("oko")) << "one error line, from main";
  EXPECT_LT(r.err.size(), 4096u) << "a message, not a dump";
}

INSTANTIATE_TEST_SUITE_P(Malformed, RobustnessTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(RobustnessTableTest, HasAtLeast40Cases) { EXPECT_GE(Cases().size(), 40u); }

}  // namespace
}  // namespace oko
