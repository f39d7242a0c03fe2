// TraceRecorder and the trace file: what is written and read back matches the golden
// attention of independent references, filters keep exactly what was asked, a wrapped KV
// ring reports the keys actually attended, f16 output, atomic writes, and the reader
// refuses malformed files with clear messages.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/npy.h"
#include "engine/context.h"
#include "engine/trace_recorder.h"
#include "loaders/safetensors_writer.h"
#include "loaders/trace_file.h"
#include "tests/test_util.h"

namespace oko {
namespace {

namespace fs = std::filesystem;

std::unique_ptr<Context> LoadModel(const std::string& name, EngineOptions o = {}) {
  if (o.threads == 0) o.threads = 2;
  if (o.ctx == 4096) o.ctx = 512;
  auto m = LoadContext(test::SharedPath("models/" + name), o);
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(m).value() : nullptr;
}

std::vector<TraceToken> Tokens(const std::vector<int32_t>& ids) {
  std::vector<TraceToken> t;
  for (int32_t id : ids) t.push_back({id, fmt::format("t{}", id), -1, ""});
  return t;
}

// Runs `ids` through `model` with a recorder and reads the written trace back.
TraceData RecordAndRead(Context& model, const std::vector<int32_t>& ids, TraceFilter f,
                        DType dtype = DType::kF32, const std::string& name = "t") {
  const ModelConfig& c = model.config();
  TraceRecorder rec(c.num_layers, c.num_heads, model.kv_cache().sink(), f);
  model.set_trace(&rec);
  model.Forward(ids, Logits::kLast, nullptr);
  model.set_trace(nullptr);
  const std::string path = test::TempDir("trace_" + name) + "/t.safetensors";
  const Status s = rec.Write(path, {"m", Tokens(ids), dtype, "{}", {}});
  EXPECT_TRUE(s.ok()) << s.message();
  auto t = ReadTrace(path);
  EXPECT_TRUE(t.ok()) << t.status().message();
  return t.ok() ? std::move(t).value() : TraceData{};
}

std::vector<int32_t> GoldenIds(const std::string& dir) {
  auto a = ReadNpy(dir + "/input_ids.npy");
  EXPECT_TRUE(a.ok());
  const auto v = a->AsInts();
  return {v.begin(), v.end()};
}

void CheckGolden(const std::string& model_name, const std::string& dir, double tol) {
  SCOPED_TRACE(dir);
  auto model = LoadModel(model_name);
  ASSERT_NE(model, nullptr);
  const auto ids = GoldenIds(dir);
  const TraceData t = RecordAndRead(*model, ids, {});
  const int64_t L = model->config().num_layers, H = model->config().num_heads, T = ids.size();
  ASSERT_EQ(t.layers.size(), size_t(L));
  ASSERT_EQ(t.H(), H);
  ASSERT_EQ(t.Q(), T);
  ASSERT_EQ(t.K(), T);
  auto ref = ReadNpy(dir + "/attn_probs.npy");
  ASSERT_TRUE(ref.ok());
  const auto golden = ref->AsFloats();  // [L, H, T, T]
  ASSERT_EQ(golden.size(), size_t(L * H * T * T));
  for (int64_t l = 0; l < L; ++l)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t q = 0; q < T; ++q)
        for (int64_t k = 0; k < T; ++k)
          ASSERT_NEAR(t.Row(l, h, q)[k], golden[((l * H + h) * T + q) * T + k], tol)
              << "layer " << l << " head " << h << " query " << q << " key " << k;
}

TEST(TraceGolden, TinyQwen3) {
  for (const char* p : {"hello", "paragraph", "russian", "chat"})
    CheckGolden("tiny-qwen3", test::SharedPath(std::string("golden/tiny-qwen3/") + p), 1e-4);
}
TEST(TraceGolden, TinyLlama) {
  for (const char* p : {"hello", "paragraph", "russian", "chat"})
    CheckGolden("tiny-llama", test::SharedPath(std::string("golden/tiny-llama/") + p), 1e-4);
}
TEST(TraceGolden, Stories260k) {
  for (const char* p : {"empty", "once", "lily_tom", "cat"})
    CheckGolden("stories260k", test::SharedPath(std::string("golden/stories260k/ref_torch/") + p), 1e-5);
}

std::vector<int32_t> StoryIds(int n) {
  std::vector<int32_t> ids{1};
  for (int i = 1; i < n; ++i) ids.push_back(260 + (i * 37) % 240);
  return ids;
}

TEST(TraceRecorder, FiltersKeepExactlyWhatWasAsked) {
  auto model = LoadModel("stories260k");
  const auto ids = StoryIds(16);
  const TraceData full = RecordAndRead(*model, ids, {}, DType::kF32, "full");
  model->Reset();
  TraceFilter f;
  f.layers = {3, 1};
  f.heads = {2, 0, 2};
  f.query_begin = 5;
  f.query_end = 10;
  const TraceData part = RecordAndRead(*model, ids, f, DType::kF32, "part");
  EXPECT_EQ(part.layers, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(part.heads, (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(part.query_positions, (std::vector<int64_t>{5, 6, 7, 8, 9}));
  ASSERT_EQ(part.K(), 10);  // keys 0..9: all the recorded queries saw
  for (size_t l = 0; l < 2; ++l)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t q = 0; q < 5; ++q)
        for (int64_t k = 0; k < 10; ++k)
          ASSERT_EQ(part.Row(l, h, q)[k], full.Row(part.layers[l], part.heads[h], q + 5)[k]);
}

TEST(TraceRecorder, ThreadCountDoesNotChangeTheTrace) {
  const auto ids = StoryIds(40);
  EngineOptions one, four;
  one.threads = 1;
  four.threads = 4;
  auto a = LoadModel("stories260k", one);
  auto b = LoadModel("stories260k", four);
  const TraceData ta = RecordAndRead(*a, ids, {}, DType::kF32, "one");
  const TraceData tb = RecordAndRead(*b, ids, {}, DType::kF32, "four");
  EXPECT_EQ(ta.attn, tb.attn);
}

// ctx 16 with 2 sinks over 40 positions: the ring wraps twice. Query q attends the sinks
// 0, 1 and the window q-13..q; the trace names exactly those and equals a sliding-window
// run over a cache that never wrapped.
TEST(TraceRecorder, RingWrapReportsTheKeysAttended) {
  const auto ids = StoryIds(40);
  EngineOptions ring;
  ring.ctx = 16;
  ring.sink = 2;
  auto model = LoadModel("stories260k", ring);
  ASSERT_NE(model, nullptr);
  const TraceData t = RecordAndRead(*model, ids, {}, DType::kF32, "ring");
  ASSERT_EQ(t.K(), 40);
  EXPECT_EQ(t.sink_count, 2);
  for (int64_t k = 0; k < 40; ++k) EXPECT_EQ(t.key_is_sink[k], k < 2 ? 1 : 0) << k;
  auto file = SafetensorsFile::Open(t.path);
  ASSERT_TRUE(file.ok());
  const auto attended = nlohmann::json::parse((*file)->metadata().at("attended"));
  for (int64_t q = 0; q < 40; ++q) {
    const int64_t first = std::max<int64_t>(2, q - 13);
    // Contiguous positions form one span: sinks and window merge until the ring wraps.
    nlohmann::json want = nlohmann::json::array();
    if (q < 2 || first == 2) {
      want.push_back({0, q});
    } else {
      want.push_back({0, 1});
      want.push_back({first, q});
    }
    EXPECT_EQ(attended[q], want) << "query " << q;
    for (int64_t h = 0; h < t.H(); ++h) {
      double sum = 0;
      for (int64_t k = 0; k < 40; ++k) {
        const float p = t.Row(4, h, q)[k];
        const bool seen = k <= q && (k < 2 || k >= first);
        if (!seen) {
          ASSERT_EQ(p, 0.0f) << "query " << q << " key " << k;
        }
        sum += p;
      }
      ASSERT_NEAR(sum, 1.0, 1e-5);
    }
  }
  EngineOptions window;
  window.ctx = 64;
  window.window = 16;
  window.sink = 2;
  auto flat = LoadModel("stories260k", window);
  const TraceData w = RecordAndRead(*flat, ids, {}, DType::kF32, "window");
  for (size_t l = 0; l < t.attn.size(); ++l)
    for (size_t i = 0; i < t.attn[l].size(); ++i)
      ASSERT_NEAR(t.attn[l][i], w.attn[l][i], 1e-5) << "layer " << l << " index " << i;
}

TEST(TraceRecorder, RerunPositionsReplaceTheirRows) {
  auto model = LoadModel("stories260k");
  const auto ids = StoryIds(12);
  const TraceData once = RecordAndRead(*model, ids, {}, DType::kF32, "once");
  model->Reset();
  TraceRecorder rec(5, 8, 0, {});
  model->set_trace(&rec);
  model->Forward(ids, Logits::kNone, nullptr);
  ASSERT_TRUE(model->Rewind(6));
  model->Forward(std::span<const int32_t>(ids).subspan(6), Logits::kNone, nullptr);
  model->set_trace(nullptr);
  const std::string path = test::TempDir("rerun") + "/t.safetensors";
  ASSERT_TRUE(rec.Write(path, {"m", Tokens(ids), DType::kF32, "{}", {}}).ok());
  auto again = ReadTrace(path);
  ASSERT_TRUE(again.ok());
  for (size_t l = 0; l < once.attn.size(); ++l)
    for (size_t i = 0; i < once.attn[l].size(); ++i)
      ASSERT_NEAR(again->attn[l][i], once.attn[l][i], 1e-6);
}

TEST(TraceRecorder, F16Output) {
  auto model = LoadModel("tiny-qwen3");
  const auto ids = GoldenIds(test::SharedPath("golden/tiny-qwen3/paragraph"));
  const TraceData f32 = RecordAndRead(*model, ids, {}, DType::kF32, "f32");
  model->Reset();
  const TraceData f16 = RecordAndRead(*model, ids, {}, DType::kF16, "f16");
  EXPECT_EQ(f16.dtype, "f16");
  auto file = SafetensorsFile::Open(f16.path);
  ASSERT_TRUE(file.ok());
  for (const auto& v : (*file)->tensors()) EXPECT_EQ(v.dtype, DType::kF16) << v.name;
  EXPECT_LT(fs::file_size(f16.path), fs::file_size(f32.path) * 0.6);
  for (size_t l = 0; l < f32.attn.size(); ++l)
    for (size_t i = 0; i < f32.attn[l].size(); ++i)
      ASSERT_NEAR(f16.attn[l][i], f32.attn[l][i], 5e-4);
}

// A chat's recorder keeps f16: the same rows as f32 within f16 rounding, in half the
// memory (the key lists are kept once per query, not per layer), written as f16.
TEST(TraceRecorder, F16StorageHalvesTheMemory) {
  auto model = LoadModel("tiny-qwen3");
  const auto ids = GoldenIds(test::SharedPath("golden/tiny-qwen3/paragraph"));
  const ModelConfig& c = model->config();
  TraceFilter half;
  half.store_f16 = true;
  TraceRecorder f32(c.num_layers, c.num_heads, 0, {}), f16(c.num_layers, c.num_heads, 0, half);
  for (TraceRecorder* rec : {&f32, &f16}) {
    model->Reset();
    model->set_trace(rec);
    model->Forward(ids, Logits::kNone, nullptr);
    model->set_trace(nullptr);
  }
  const uint64_t T = ids.size(), probs = c.num_layers * c.num_heads * T * (T + 1) / 2;
  EXPECT_GE(f32.HeldBytes(), probs * 4);
  EXPECT_LE(f32.HeldBytes(), probs * 4 + T * (T + 1) / 2 * 8 + c.num_layers * T * 64);
  EXPECT_EQ(f32.HeldBytes() - f16.HeldBytes(), probs * 2);  // the rest (key lists, rows) alike
  const TraceData a = f32.Snapshot({"m", Tokens(ids), DType::kF32, "{}", {}}, 0, T);
  const TraceData b = f16.Snapshot({"m", Tokens(ids), DType::kF16, "{}", {}}, 0, T);
  ASSERT_EQ(a.attn.size(), b.attn.size());
  for (size_t l = 0; l < a.attn.size(); ++l)
    for (size_t i = 0; i < a.attn[l].size(); ++i) ASSERT_NEAR(a.attn[l][i], b.attn[l][i], 5e-4);
}

TEST(TraceRecorder, LogitLensLastLayerIsTheModelsPrediction) {
  auto model = LoadModel("stories260k");
  const auto ids = StoryIds(10);
  TraceFilter f;
  f.residuals = true;
  TraceRecorder rec(5, 8, 0, f);
  model->set_trace(&rec);
  std::vector<float> logits;
  model->Forward(ids, Logits::kAll, &logits);
  model->set_trace(nullptr);
  rec.ComputeLogitLens(*model, 3);
  const std::string path = test::TempDir("lens") + "/t.safetensors";
  TraceWriteOptions w{"m", Tokens(ids), DType::kF32, "{}", {{"lens_tokens", "{}"}}};
  ASSERT_TRUE(rec.Write(path, w).ok());
  auto t = ReadTrace(path);
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->lens_layers, (std::vector<int64_t>{-1, 0, 1, 2, 3, 4}));
  ASSERT_EQ(t->lens_k, 3);
  for (int64_t q = 0; q < 10; ++q) {
    const float* row = logits.data() + q * 512;
    const int32_t argmax = std::max_element(row, row + 512) - row;
    const size_t last = (5 * 10 + q) * 3;
    EXPECT_EQ(t->lens_ids[last], argmax) << "position " << q;
    EXPECT_GE(t->lens_probs[last], t->lens_probs[last + 1]);
    EXPECT_GT(t->lens_probs[last], 0.0f);
  }
}

// Chat traces name the turn and role of every position (and plain ones do not).
TEST(TraceFile, ChatTurnsAndRoles) {
  auto model = LoadModel("stories260k");
  const auto ids = StoryIds(6);
  TraceRecorder rec(5, 8, 0, {});
  model->set_trace(&rec);
  model->Forward(ids, Logits::kNone, nullptr);
  model->set_trace(nullptr);
  std::vector<TraceToken> tokens = Tokens(ids);
  for (size_t i = 0; i < tokens.size(); ++i) {
    tokens[i].turn = i < 3 ? 0 : 1;
    tokens[i].role = i < 3 ? "user" : "assistant";
  }
  const std::string dir = test::TempDir("chat");
  ASSERT_TRUE(rec.Write(dir + "/chat.safetensors", {"m", tokens, DType::kF32, "{}", {}}).ok());
  auto chat = ReadTrace(dir + "/chat.safetensors");
  ASSERT_TRUE(chat.ok()) << chat.status().message();
  EXPECT_EQ(chat->token_turns, (std::vector<int64_t>{0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(chat->token_roles[2], "user");
  EXPECT_EQ(chat->token_roles[3], "assistant");
  ASSERT_TRUE(rec.Write(dir + "/plain.safetensors", {"m", Tokens(ids), DType::kF32, "{}", {}}).ok());
  auto plain = ReadTrace(dir + "/plain.safetensors");
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->token_turns.empty());
}

TEST(TraceFile, WriteIsAtomic) {
  auto model = LoadModel("stories260k");
  const auto ids = StoryIds(8);
  TraceRecorder rec(5, 8, 0, {});
  model->set_trace(&rec);
  model->Forward(ids, Logits::kNone, nullptr);
  model->set_trace(nullptr);
  const std::string dir = test::TempDir("atomic");
  const Status missing = rec.Write(dir + "/no/such/dir/t.safetensors", {"m", Tokens(ids), DType::kF32, "{}", {}});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("no/such/dir"), std::string::npos) << missing.message();
  const std::string path = dir + "/t.safetensors";
  WriteFileAtomically(path, "old contents").ok();
  ASSERT_TRUE(rec.Write(path, {"m", Tokens(ids), DType::kF32, "{}", {}}).ok());
  EXPECT_TRUE(ReadTrace(path).ok());
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1) << "a temporary file was left behind";
  // Too few tokens to name every key: refused before anything is written.
  const Status short_tokens = rec.Write(dir + "/u.safetensors", {"m", Tokens({1, 2}), DType::kF32, "{}", {}});
  EXPECT_FALSE(short_tokens.ok());
  EXPECT_FALSE(fs::exists(dir + "/u.safetensors"));
}

// A valid two-token trace's metadata with one field replaced.
std::map<std::string, std::string> Meta() {
  return {{"format", "oko-trace-1"}, {"tokens", "[\"a\",\"b\"]"}, {"token_ids", "[1,2]"},
          {"layers", "[0]"},          {"heads", "[0]"},            {"query_positions", "[0,1]"},
          {"key_positions", "[0,1]"}, {"key_is_sink", "[0,0]"}};
}

std::string ReadError(std::map<std::string, std::string> meta, std::vector<int64_t> shape,
                      const std::string& tensor = "attn.0") {
  static const float kData[16] = {1, 0, 0.5f, 0.5f};
  const std::string path = test::TempDir("bad") + "/bad.safetensors";
  EXPECT_TRUE(WriteSafetensors(path, {TensorFromBytes(tensor, DType::kF32, shape, kData)}, meta).ok());
  auto t = ReadTrace(path);
  return t.ok() ? "" : t.status().message();
}

TEST(TraceFile, ReaderRefusesMalformedFiles) {
  EXPECT_EQ(ReadError(Meta(), {1, 2, 2}), "");
  EXPECT_NE(ReadError(Meta(), {1, 2, 3}).find("tensor 'attn.0' has shape [1, 2, 3], expected [1, 2, 2]"),
            std::string::npos);
  auto m = Meta();
  m.erase("format");
  EXPECT_NE(ReadError(m, {1, 2, 2}).find("not an oko trace"), std::string::npos);
  m = Meta();
  m["key_positions"] = "[0,2]";
  EXPECT_NE(ReadError(m, {1, 2, 2}).find("'key_positions' has position 2 outside the 2 tokens"),
            std::string::npos);
  m = Meta();
  m["token_ids"] = "[1]";
  EXPECT_NE(ReadError(m, {1, 2, 2}).find("2 tokens but 1 token_ids"), std::string::npos);
  m = Meta();
  m["token_turns"] = "[0]";
  m["token_roles"] = "[\"user\",\"user\"]";
  EXPECT_NE(ReadError(m, {1, 2, 2}).find("2 tokens but 1 token_turns and 2 token_roles"), std::string::npos);
  m = Meta();
  m["tokens"] = "[\"a\",";
  EXPECT_NE(ReadError(m, {1, 2, 2}).find("'tokens' is not valid JSON"), std::string::npos);
  EXPECT_NE(ReadError(Meta(), {1, 2, 2}, "attn.1").find("layer 0 but there is no tensor 'attn.0'"),
            std::string::npos);
  const std::string msg = ReadError(Meta(), {1, 2, 3});
  EXPECT_NE(msg.find("bad.safetensors: "), std::string::npos) << msg;
}

}  // namespace
}  // namespace oko
