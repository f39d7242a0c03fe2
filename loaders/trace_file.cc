#include "loaders/trace_file.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/dtype.h"
#include "loaders/safetensors.h"

namespace oko {

namespace {

using Meta = std::map<std::string, std::string>;

Result<nlohmann::json> MetaJson(const Meta& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) return Errorf("metadata has no '{}' (not an oko trace?)", key);
  nlohmann::json j = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Errorf("metadata '{}' is not valid JSON", key);
  return j;
}

Result<std::vector<int64_t>> IntList(const Meta& m, const std::string& key) {
  OKO_ASSIGN_OR_RETURN(nlohmann::json j, MetaJson(m, key));
  if (!j.is_array()) return Errorf("metadata '{}' must be a JSON array of integers", key);
  std::vector<int64_t> v;
  for (const auto& e : j) {
    if (!e.is_number_integer()) return Errorf("metadata '{}' holds {}, not an integer", key, e.dump());
    v.push_back(e.get<int64_t>());
  }
  return v;
}

Status CheckPositions(const std::vector<int64_t>& v, size_t n, const std::string& key) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] < 0 || v[i] >= static_cast<int64_t>(n))
      return Errorf("metadata '{}' has position {} outside the {} tokens", key, v[i], n);
    if (i > 0 && v[i] <= v[i - 1]) return Errorf("metadata '{}' is not strictly ascending", key);
  }
  return Status();
}

Status ReadTokens(const Meta& m, TraceData* t) {
  OKO_ASSIGN_OR_RETURN(nlohmann::json texts, MetaJson(m, "tokens"));
  if (!texts.is_array()) return Errorf("metadata 'tokens' must be a JSON array of strings");
  for (const auto& e : texts) {
    if (!e.is_string()) return Errorf("metadata 'tokens' holds {}, not a string", e.dump());
    t->tokens.push_back(e.get<std::string>());
  }
  OKO_ASSIGN_OR_RETURN(t->token_ids, IntList(m, "token_ids"));
  if (t->token_ids.size() != t->tokens.size())
    return Errorf("metadata has {} tokens but {} token_ids", t->tokens.size(), t->token_ids.size());
  if (!m.contains("token_turns")) return Status();
  OKO_ASSIGN_OR_RETURN(t->token_turns, IntList(m, "token_turns"));
  OKO_ASSIGN_OR_RETURN(nlohmann::json roles, MetaJson(m, "token_roles"));
  if (!roles.is_array()) return Errorf("metadata 'token_roles' must be a JSON array of strings");
  for (const auto& e : roles) {
    if (!e.is_string()) return Errorf("metadata 'token_roles' holds {}, not a string", e.dump());
    t->token_roles.push_back(e.get<std::string>());
  }
  if (t->token_turns.size() != t->tokens.size() || t->token_roles.size() != t->tokens.size())
    return Errorf("metadata has {} tokens but {} token_turns and {} token_roles", t->tokens.size(),
                  t->token_turns.size(), t->token_roles.size());
  return Status();
}

Status ReadPositions(const Meta& m, TraceData* t) {
  OKO_ASSIGN_OR_RETURN(t->layers, IntList(m, "layers"));
  OKO_ASSIGN_OR_RETURN(t->heads, IntList(m, "heads"));
  OKO_ASSIGN_OR_RETURN(t->query_positions, IntList(m, "query_positions"));
  OKO_ASSIGN_OR_RETURN(t->key_positions, IntList(m, "key_positions"));
  OKO_ASSIGN_OR_RETURN(t->key_is_sink, IntList(m, "key_is_sink"));
  OKO_RETURN_IF_ERROR(CheckPositions(t->query_positions, t->tokens.size(), "query_positions"));
  OKO_RETURN_IF_ERROR(CheckPositions(t->key_positions, t->tokens.size(), "key_positions"));
  if (t->key_is_sink.size() != t->key_positions.size())
    return Errorf("metadata 'key_is_sink' has {} entries for {} key_positions",
                  t->key_is_sink.size(), t->key_positions.size());
  auto sink = m.find("sink_count");
  t->sink_count = sink == m.end() ? 0 : std::atoll(sink->second.c_str());
  return Status();
}

Result<std::vector<float>> Floats(const TensorView& v) {
  std::vector<float> out(v.numel());
  if (v.dtype == DType::kF32) {
    if (!out.empty()) std::memcpy(out.data(), v.data, out.size() * 4);
  } else if (v.dtype == DType::kF16) {
    // By memcpy: a tensor need not be aligned (the data region follows a header of any length).
    for (size_t i = 0; i < out.size(); ++i) {
      uint16_t h;
      std::memcpy(&h, v.data + 2 * i, 2);
      out[i] = F16ToF32(h);
    }
  } else {
    return Errorf("tensor '{}' has dtype {}, expected F32 or F16", v.name, DTypeName(v.dtype));
  }
  return out;
}

// The tensors and metadata of the trace file.
struct TraceFile {
  std::vector<TensorView> tensors;
  Meta metadata;
};

const TensorView* Find(const TraceFile& f, const std::string& name) {
  for (const auto& v : f.tensors)
    if (v.name == name) return &v;
  return nullptr;
}

Status ReadAttention(const TraceFile& f, TraceData* t) {
  const std::vector<int64_t> want{t->H(), t->Q(), t->K()};
  for (int64_t layer : t->layers) {
    const std::string name = "attn." + std::to_string(layer);
    const TensorView* v = Find(f, name);
    if (v == nullptr) return Errorf("metadata 'layers' names layer {} but there is no tensor '{}'", layer, name);
    if (v->shape != want)
      return Errorf("tensor '{}' has shape {}, expected {} (heads, query_positions, key_positions)",
                    name, ShapeString(v->shape), ShapeString(want));
    OKO_ASSIGN_OR_RETURN(std::vector<float> values, Floats(*v));
    t->attn.push_back(std::move(values));
  }
  for (const auto& v : f.tensors)
    if (v.name.starts_with("attn.") &&
        std::none_of(t->layers.begin(), t->layers.end(),
                     [&](int64_t l) { return v.name == "attn." + std::to_string(l); }))
      return Errorf("tensor '{}' is not in metadata 'layers'", v.name);
  return Status();
}

Status ReadLens(const TraceFile& f, const Meta& m, TraceData* t) {
  const TensorView* ids = Find(f, "lens.ids");
  const TensorView* probs = Find(f, "lens.probs");
  if (ids == nullptr && probs == nullptr) return Status();
  if (ids == nullptr || probs == nullptr) return Errorf("a logit lens needs both 'lens.ids' and 'lens.probs'");
  OKO_ASSIGN_OR_RETURN(t->lens_layers, IntList(m, "lens_layers"));
  auto k = m.find("lens_k");
  t->lens_k = k == m.end() ? 0 : std::atoll(k->second.c_str());
  const std::vector<int64_t> want{static_cast<int64_t>(t->lens_layers.size()), t->Q(), t->lens_k};
  for (const TensorView* v : {ids, probs})
    if (v->shape != want)
      return Errorf("tensor '{}' has shape {}, expected {} (lens_layers, query_positions, lens_k)",
                    v->name, ShapeString(v->shape), ShapeString(want));
  if (ids->dtype != DType::kI32 || probs->dtype != DType::kF32)
    return Errorf("'lens.ids' must be I32 and 'lens.probs' F32");
  // Copied bytewise: the tensors need not be aligned.
  t->lens_ids.resize(ids->numel());
  t->lens_probs.resize(probs->numel());
  if (ids->nbytes > 0) std::memcpy(t->lens_ids.data(), ids->data, ids->nbytes);
  if (probs->nbytes > 0) std::memcpy(t->lens_probs.data(), probs->data, probs->nbytes);
  OKO_ASSIGN_OR_RETURN(nlohmann::json names, MetaJson(m, "lens_tokens"));
  if (!names.is_object()) return Errorf("metadata 'lens_tokens' must be a JSON object");
  for (const auto& [id, text] : names.items())
    if (text.is_string()) t->lens_tokens[std::atoll(id.c_str())] = text.get<std::string>();
  return Status();
}

Status ReadAll(const TraceFile& f, TraceData* t) {
  const Meta& m = f.metadata;
  auto format = m.find("format");
  if (format == m.end() || format->second != "oko-trace-1")
    return Errorf("metadata 'format' is not 'oko-trace-1' (not an oko trace)");
  t->model = m.contains("model") ? m.at("model") : "";
  t->dtype = m.contains("dtype") ? m.at("dtype") : "";
  t->options = m.contains("options") ? m.at("options") : "{}";
  OKO_RETURN_IF_ERROR(ReadTokens(m, t));
  OKO_RETURN_IF_ERROR(ReadPositions(m, t));
  OKO_RETURN_IF_ERROR(ReadAttention(f, t));
  return ReadLens(f, m, t);
}

}  // namespace

Result<TraceData> ReadTraceFromMemory(const std::byte* data, size_t size, const std::string& path) {
  TraceFile file;
  OKO_ASSIGN_OR_RETURN(file.tensors,
                       SafetensorsFile::ParseHeader(data, size, path, &file.metadata));
  TraceData t;
  t.path = path;
  OKO_RETURN_IF_ERROR(ReadAll(file, &t).WithContext(path));
  return t;
}

Result<TraceData> ReadTrace(const std::string& path) {
  OKO_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  return ReadTraceFromMemory(file->data(), file->size(), path);
}

}  // namespace oko
