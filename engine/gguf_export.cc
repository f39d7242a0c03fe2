#include "engine/gguf_export.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include "engine/quant_plan.h"
#include "engine/thread_pool.h"
#include "loaders/gguf_model.h"
#include "loaders/gguf_tokenizer.h"
#include "loaders/gguf_writer.h"
#include "loaders/model_dir.h"

namespace oko {
namespace {

// The type of every matrix: a --quant plan, or one plain type.
struct ExportPlan {
  std::optional<QuantPlan> quant;
  QuantType plain = QuantType::kF32;
  std::string spec;
};

std::string Lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

std::optional<QuantType> PlainType(const std::string& spec) {
  const std::optional<QuantType> t = QuantTypeFromName(spec);
  if (t && !IsBlockQuant(*t)) return t;
  return std::nullopt;
}

Result<ExportPlan> MakeExportPlan(const std::string& type, const ModelConfig& c) {
  ExportPlan p;
  p.spec = Lower(type);
  if (const auto plain = PlainType(p.spec)) {
    p.plain = *plain;
    return p;
  }
  OKO_RETURN_IF_ERROR(CheckGgufExportType(type));
  OKO_ASSIGN_OR_RETURN(p.quant, ParseQuantPlan(p.spec, static_cast<int>(c.num_layers), c.tie_word_embeddings));
  return p;
}

// The matrix type of a Hugging Face tensor of shape [rows, cols].
TensorQuant MatrixType(const ExportPlan& p, const std::string& hf_name, const std::vector<int64_t>& shape) {
  if (p.quant) return *PlanTensor(*p.quant, hf_name, shape);
  return {p.plain, p.plain};
}

// llama_ftype, as llama-quantize records the mix in general.file_type (informational:
// llama.cpp reads the types from the tensors). q4_k / q5_k are closest to its _S mixes.
uint32_t FileType(const std::string& spec) {
  static const std::map<std::string, uint32_t> kFileTypes = {
      {"f32", 0},  {"f16", 1},  {"q4_0", 2},  {"q4_1", 3},   {"q8_0", 7},    {"q5_0", 8},   {"q5_1", 9},
      {"q4_k", 14}, {"q4_k_m", 15}, {"q5_k", 16}, {"q5_k_m", 17}, {"q6_k", 18}, {"bf16", 32}};
  return kFileTypes.at(spec);
}

// A source tensor (any format) and how it is written.
struct ExportTensor {
  std::string gguf_name;
  std::string hf_name;
  WeightView source;
  bool matrix = false;
  TensorQuant type{QuantType::kF32, QuantType::kF32};
  bool permute_llama_qk = false;  // Hugging Face row order in, llama.cpp's out
  std::shared_ptr<const void> storage{};  // of `source`, when it is not mapped
  // Set for a generated tensor: makes the source when it is written (`source` then has
  // only its rows and cols).
  std::function<Result<OwnedWeight>()> make_source{};
};

// Llama 3.1's RoPE scaling as llama.cpp's converter writes it (loaders/gguf_model.h).
ExportTensor RopeFreqsTensor(const ModelConfig& c) {
  auto factors = std::make_shared<const std::vector<float>>(Llama3RopeFreqFactors(c));
  ExportTensor x{kRopeFreqsTensor, kRopeFreqsTensor, {}, false};
  x.source = WeightView{QuantType::kF32, reinterpret_cast<const std::byte*>(factors->data()), 1, factors->size(),
                        factors->size() * sizeof(float)};
  x.storage = std::move(factors);
  return x;
}

Result<std::vector<ExportTensor>> FolderTensors(const ModelDir& m, const ExportPlan& plan) {
  std::vector<ExportTensor> out;
  for (const ExpectedTensor& e : ExpectedTensors(m.config)) {
    const TensorView* t = m.tensors.Find(e.name);
    if (t == nullptr) continue;  // optional and absent (checked by OpenModelDir)
    const auto gguf = GgufTensorName(e.name);
    const auto type = QuantTypeFromDType(t->dtype);
    if (!gguf || !type) return Errorf("{}: tensor '{}' ({}) has no GGUF counterpart", m.dir, e.name, DTypeName(t->dtype));
    ExportTensor x{*gguf, e.name, {}, t->shape.size() == 2};
    x.source = WeightView{*type, t->data, x.matrix ? static_cast<size_t>(t->shape[0]) : 1,
                          static_cast<size_t>(t->shape.back()), t->nbytes};
    if (x.matrix) x.type = MatrixType(plan, e.name, t->shape);
    x.permute_llama_qk = LlamaQkRowPermuted(m.config, e.name);
    out.push_back(std::move(x));
  }
  if (m.config.rope_scaling.type == "llama3") out.push_back(RopeFreqsTensor(m.config));
  return out;
}

// A GGUF file's tensors in file order; rows stay in the file's order (q/k included).
Result<std::vector<ExportTensor>> GgufSourceTensors(const ModelDir& m, const ExportPlan& plan, bool* requantized) {
  std::vector<ExportTensor> out;
  for (const GgufTensor& t : m.gguf->tensors()) {
    const auto hf = t.name == kRopeFreqsTensor ? std::optional<std::string>(t.name) : HfTensorName(t.name);
    const auto type = QuantTypeFromGgml(t.ggml_type);
    if (!hf || !type)
      return Errorf("{}: tensor '{}' ({}) cannot be converted", m.dir, t.name, GgmlTypeSizeOf(t.ggml_type)->name);
    ExportTensor x{t.name, *hf, {}, t.ne.size() == 2};
    x.source = WeightView{*type, t.data, x.matrix ? static_cast<size_t>(t.ne[1]) : 1, static_cast<size_t>(t.ne[0]),
                          t.nbytes};
    if (x.matrix) {
      x.type = MatrixType(plan, *hf, t.shape());
      *requantized |= IsBlockQuant(*type);
    }
    out.push_back(std::move(x));
  }
  return out;
}

GgufMetadata MetadataOfGguf(const GgufFile& f) {
  GgufMetadata md;
  for (const auto& [key, value] : f.metadata())
    if (key != "general.alignment" && key != "general.file_type" && key != "general.quantization_version")
      md.emplace_back(key, value);
  return md;
}

// The architecture's keys, the name, and the tokenizer of `tokenizer_dir` (none if "").
Result<GgufMetadata> MetadataOf(const ModelConfig& c, const std::string& name, const std::string& tokenizer_dir,
                                bool has_chat_template) {
  OKO_ASSIGN_OR_RETURN(GgufMetadata md, GgufArchMetadata(c));
  md.emplace_back("general.name", GgufString(name));
  md.emplace_back("general.type", GgufString("model"));
  if (tokenizer_dir.empty()) return md;
  OKO_ASSIGN_OR_RETURN(GgufMetadata tok, GgufTokenizerMetadata(tokenizer_dir, c, has_chat_template));
  md.insert(md.end(), tok.begin(), tok.end());
  return md;
}

Result<GgufMetadata> MetadataOfFolder(const ModelDir& m) {
  std::string name = std::filesystem::path(m.dir).lexically_normal().filename().string();
  if (name.empty()) name = std::filesystem::path(m.dir).lexically_normal().parent_path().filename().string();
  return MetadataOf(m.config, name, m.has_tokenizer ? m.dir : "", m.has_chat_template);
}

// The expected tensors of a generated model, made when written.
Result<std::vector<ExportTensor>> GeneratedTensors(const GeneratedModel& m, const ExportPlan& plan) {
  std::vector<ExportTensor> out;
  for (const ExpectedTensor& e : ExpectedTensors(m.config)) {
    if (e.optional) continue;
    const auto gguf = GgufTensorName(e.name);
    if (!gguf) return Errorf("tensor '{}' has no GGUF counterpart", e.name);
    ExportTensor x{*gguf, e.name, {}, e.shape.size() == 2};
    const size_t rows = x.matrix ? static_cast<size_t>(e.shape[0]) : 1, cols = static_cast<size_t>(e.shape.back());
    x.source = WeightView{QuantType::kF32, nullptr, rows, cols, rows * cols * sizeof(float)};
    if (x.matrix) x.type = MatrixType(plan, e.name, e.shape);
    x.permute_llama_qk = LlamaQkRowPermuted(m.config, e.name);
    x.make_source = [&m, e] { return m.make(e); };
    out.push_back(std::move(x));
  }
  if (m.config.rope_scaling.type == "llama3") out.push_back(RopeFreqsTensor(m.config));
  return out;
}

// Converts one tensor over the pool and writes its rows (in llama.cpp's order).
Status WriteTensor(const ExportTensor& x, const ModelConfig& c, ThreadPool& pool, AtomicFile& f) {
  const QuantType type = x.matrix ? x.type.type : QuantType::kF32;
  OwnedWeight made;
  if (x.make_source) {
    OKO_ASSIGN_OR_RETURN(made, x.make_source());
    if (made.view.rows != x.source.rows || made.view.cols != x.source.cols)
      return Errorf("generated tensor '{}': [{}, {}], expected [{}, {}]", x.hf_name, made.view.rows, made.view.cols,
                    x.source.rows, x.source.cols);
  }
  const WeightView& source = x.make_source ? made.view : x.source;
  OKO_ASSIGN_OR_RETURN(OwnedWeight w, ConvertWeight(source, type, x.hf_name, x.matrix ? &pool : nullptr));
  if (!x.permute_llama_qk) return f.Write(w.view.data, w.view.nbytes);
  const size_t rb = w.view.row_bytes(), hd = static_cast<size_t>(c.head_dim);
  for (size_t r = 0; r < w.view.rows; ++r) OKO_RETURN_IF_ERROR(f.Write(w.view.data + LlamaQkHfRow(r, hd) * rb, rb));
  return {};
}

}  // namespace

Status CheckGgufExportType(const std::string& type) {
  const std::string t = Lower(type);
  if (PlainType(t).has_value() || ParseQuantPlan(t, 1, false).ok()) return {};
  return Status::Error(fmt::format("--type {}: unknown type (expected one of q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, "
                                   "q5_k, q6_k, q4_k_m, q5_k_m, f32, f16, bf16)",
                                   type),
                       ExitCode::kUsage);
}

namespace {

// Writes `tensors` (converted as `plan` says) after `md` into o.out.
Status WriteExport(const std::vector<ExportTensor>& tensors, GgufMetadata md, const ExportPlan& plan,
                   const ModelConfig& config, const GgufExportOptions& o, GgufExportSummary* summary) {
  md.emplace_back("general.quantization_version", GgufUint32(2));
  md.emplace_back("general.file_type", GgufUint32(FileType(plan.spec)));

  ThreadPool pool(o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency()));
  std::vector<GgufTensorToWrite> to_write;
  size_t done = 0;
  for (const ExportTensor& x : tensors) {
    const QuantType type = x.matrix ? x.type.type : QuantType::kF32;
    if (x.matrix && x.type.fell_back()) summary->fallbacks.push_back(FallbackNote(x.hf_name, x.type, x.source.cols));
    ++summary->type_counts[std::string(QuantTypeName(type))];
    std::vector<uint64_t> ne = {x.source.cols};
    if (x.matrix) ne.push_back(x.source.rows);
    to_write.push_back({x.gguf_name, Info(type).ggml_type, std::move(ne), [&, x](AtomicFile& f) -> Status {
                          OKO_RETURN_IF_ERROR(WriteTensor(x, config, pool, f));
                          if (o.on_progress) o.on_progress(++done, tensors.size());
                          return {};
                        }});
  }
  OKO_RETURN_IF_ERROR(WriteGguf(o.out, md, to_write));
  summary->tensors = tensors.size();
  std::error_code ec;
  summary->bytes = std::filesystem::file_size(o.out, ec);
  return {};
}

}  // namespace

Result<GgufExportSummary> ExportGguf(const GgufExportOptions& o) {
  OKO_ASSIGN_OR_RETURN(ModelDir m, OpenModelDir(o.model));
  OKO_ASSIGN_OR_RETURN(ExportPlan plan, MakeExportPlan(o.type, m.config));
  GgufExportSummary summary;
  summary.without_tokenizer = !m.has_tokenizer;
  std::vector<ExportTensor> tensors;
  GgufMetadata md;
  if (m.gguf != nullptr) {
    OKO_ASSIGN_OR_RETURN(tensors, GgufSourceTensors(m, plan, &summary.requantized));
    md = MetadataOfGguf(*m.gguf);
  } else {
    OKO_ASSIGN_OR_RETURN(tensors, FolderTensors(m, plan));
    OKO_ASSIGN_OR_RETURN(md, MetadataOfFolder(m));
  }
  OKO_RETURN_IF_ERROR(WriteExport(tensors, std::move(md), plan, m.config, o, &summary));
  return summary;
}

Result<GgufExportSummary> ExportGeneratedGguf(const GeneratedModel& m, const GgufExportOptions& o) {
  OKO_ASSIGN_OR_RETURN(ExportPlan plan, MakeExportPlan(o.type, m.config));
  GgufExportSummary summary;
  summary.without_tokenizer = m.tokenizer_dir.empty();
  OKO_ASSIGN_OR_RETURN(std::vector<ExportTensor> tensors, GeneratedTensors(m, plan));
  OKO_ASSIGN_OR_RETURN(GgufMetadata md, MetadataOf(m.config, m.name, m.tokenizer_dir,
                                                   !m.tokenizer_dir.empty() && HasChatTemplate(m.tokenizer_dir)));
  OKO_RETURN_IF_ERROR(WriteExport(tensors, std::move(md), plan, m.config, o, &summary));
  return summary;
}

}  // namespace oko
