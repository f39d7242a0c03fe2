// `oko info -m DIR` run as a user runs it: the true numbers of each shared model, exit 2
// with a message naming the file for a broken folder, exit 1 for a usage error.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "loaders/safetensors.h"
#include "loaders/safetensors_writer.h"
#include "tests/test_util.h"
#include "tests/model_folder.h"

namespace oko {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

struct ModelFacts {
  const char* model;
  const char* architecture;
  const char* dtypes;    // bytes of the header's data_offsets spans, per dtype
  const char* heads;
  const char* kv_cache;  // 2 (K and V) * layers * kv_heads * head_dim * 1024 * 4 (or 2) bytes
  const char* chat_template;
};

const ModelFacts kModels[] = {
    {"stories260k", "architecture LlamaForCausalLM (llama)\n",
     "dtypes       F32 1015.75 KiB\n",  // 260032 * 4 = 1040128 B
     "heads        8 query, 4 key/value (GQA group 2), head_dim 8\n",
     "kv cache     1.25 MiB per 1k tokens (f32), 640.00 KiB (f16)\n",  // 2*5*4*8*1024*4
     "chat template no\n"},
    {"tiny-qwen3", "architecture Qwen3ForCausalLM (qwen3)\n",
     "dtypes       BF16 19.02 MiB\n",  // 9970496 * 2 = 19940992 B
     "heads        4 query, 2 key/value (GQA group 2), head_dim 32\n",
     "kv cache     2.00 MiB per 1k tokens (f32), 1.00 MiB (f16)\n",  // 2*4*2*32*1024*4
     "chat template yes\n"},
    {"tiny-llama", "architecture LlamaForCausalLM (llama)\n",
     "dtypes       F32 37.59 MiB\n",  // 9853376 * 4 = 39413504 B
     "heads        4 query, 2 key/value (GQA group 2), head_dim 16\n",
     "kv cache     768.00 KiB per 1k tokens (f32), 384.00 KiB (f16)\n",  // 2*3*2*16*1024*4
     "chat template yes\n"},
};

TEST(InfoCliTest, SharedModelsShowTheirTrueNumbers) {
  for (const ModelFacts& m : kModels) {
    SCOPED_TRACE(m.model);
    const std::string dir = test::SharedPath(std::string("models/") + m.model);
    const auto header = test::SafetensorsHeader(dir + "/model.safetensors");
    const int64_t params = test::HeaderParameterCount(header);
    const auto r = test::RunOko("info -m " + dir);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_THAT(r.out, StartsWith("model        " + dir + "\n" + m.architecture));
    EXPECT_THAT(r.out, HasSubstr(fmt::format("\nparameters   {} ({:.3f} M)\n", params, params / 1e6)));
    EXPECT_THAT(r.out, HasSubstr(fmt::format("\ntensors      {} in 1 file(s), ", header.size() - 1)));
    EXPECT_THAT(r.out, HasSubstr(m.dtypes));
    EXPECT_THAT(r.out, HasSubstr(m.heads));
    EXPECT_THAT(r.out, HasSubstr(m.kv_cache));
    EXPECT_THAT(r.out, HasSubstr("\nembeddings   tied (lm_head = embed_tokens)\n"));
    EXPECT_THAT(r.out, HasSubstr("\ntokenizer    tokenizer.json\n"));
    EXPECT_THAT(r.out, HasSubstr(m.chat_template));
  }
}

TEST(InfoCliTest, ParameterCountsAreTheKnownOnes) {
  // Independent of oko: HF's model.num_parameters() of the tied models (embeddings once).
  EXPECT_EQ(test::HeaderParameterCount(
                test::SafetensorsHeader(test::SharedPath("models/stories260k/model.safetensors"))),
            260032);
  const auto r = test::RunOko("info -m " + test::SharedPath("models/tiny-qwen3"));
  EXPECT_THAT(r.out, HasSubstr("\nparameters   9970496 (9.970 M)\n"));
  EXPECT_THAT(r.out, HasSubstr("\nbiases       q/k/v no, o no; q/k norm yes\n"));
  EXPECT_THAT(r.out, HasSubstr("\neos ids      [151645, 151643]\n"));
}

TEST(InfoCliTest, ShardedCopyShowsTheSameModel) {
  // stories260k split as save_pretrained(max_shard_size=...) would: two shards and an index.
  const std::string shared = test::SharedPath("models/stories260k");
  const std::string dir = test::TempDir("info_sharded") + "/model";
  test::CopyFolder(shared, dir);
  fs::remove(dir + "/model.safetensors");
  auto file = SafetensorsFile::Open(shared + "/model.safetensors");
  ASSERT_TRUE(file.ok()) << file.status().message();
  std::vector<TensorToWrite> shards[2];
  nlohmann::json weight_map;
  for (const TensorView& t : (*file)->tensors()) {
    const bool late = t.name.starts_with("model.layers.3.") || t.name.starts_with("model.layers.4.");
    const int shard = late ? 1 : 0;
    shards[shard].push_back(TensorFromBytes(t.name, t.dtype, t.shape, t.data));
    weight_map[t.name] = fmt::format("model-0000{}-of-00002.safetensors", shard + 1);
  }
  ASSERT_FALSE(shards[1].empty());
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(WriteSafetensors(fmt::format("{}/model-0000{}-of-00002.safetensors", dir, i + 1),
                                 shards[i], {{"format", "pt"}})
                    .ok());
  test::WriteBytes(dir + "/model.safetensors.index.json",
                   nlohmann::json{{"metadata", {{"total_size", 1040128}}},
                                  {"weight_map", weight_map}}
                       .dump(2));
  const auto r = test::RunOko("info -m " + dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\nparameters   260032 (0.260 M)\n"));
  EXPECT_THAT(r.out, HasSubstr("\ntensors      47 in 2 file(s), 1015.75 KiB\n"));

  fs::remove(dir + "/model-00002-of-00002.safetensors");
  const auto broken = test::RunOko("info -m " + dir);
  EXPECT_EQ(broken.exit_code, 2);
  EXPECT_EQ(broken.err, "oko info: error: " + dir +
                            "/model.safetensors.index.json: shard "
                            "'model-00002-of-00002.safetensors' named in the weight_map is missing\n");
}

// A writable copy of stories260k, to break.
std::string CopyOfStories(const std::string& name) {
  const std::string dir = test::TempDir(name) + "/model";
  test::CopyFolder(test::SharedPath("models/stories260k"), dir);
  return dir;
}

TEST(InfoCliTest, TruncatedSafetensorsIsBadInputNamingTheFile) {
  const std::string dir = CopyOfStories("info_truncated");
  fs::resize_file(dir + "/model.safetensors", 4);
  const auto r = test::RunOko("info -m " + dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "oko info: error: " + dir +
                       "/model.safetensors: file is 4 bytes, too short for a safetensors header\n");
}

TEST(InfoCliTest, CutDataRegionNamesTheTensor) {
  const std::string dir = CopyOfStories("info_cut");
  const std::string path = dir + "/model.safetensors";
  const auto header = test::SafetensorsHeader(path);
  fs::resize_file(path, fs::file_size(path) - 1);
  // The tensor whose bytes end last now runs past the end.
  std::string last;
  uint64_t end = 0;
  for (const auto& [name, e] : header.items())
    if (name != "__metadata__" && e["data_offsets"][1].get<uint64_t>() > end) {
      end = e["data_offsets"][1].get<uint64_t>();
      last = name;
    }
  const auto r = test::RunOko("info -m " + dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(path + ": tensor '" + last + "': data_offsets ["));
  EXPECT_THAT(r.err, HasSubstr(fmt::format(", {}] past the end of the data region ({} bytes)", end,
                                           end - 1)));
}

TEST(InfoCliTest, UnknownDtypeNamesFileAndTensor) {
  const std::string dir = CopyOfStories("info_dtype");
  const std::string path = dir + "/model.safetensors";
  std::string bytes = test::ReadBytes(path);
  const size_t key = bytes.find("\"model.norm.weight\"");
  ASSERT_NE(key, std::string::npos);
  const size_t dtype = bytes.find("\"F32\"", key);
  ASSERT_NE(dtype, std::string::npos);
  bytes.replace(dtype, 5, "\"F31\"");
  test::WriteBytes(path, bytes);
  const auto r = test::RunOko("info -m " + dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "oko info: error: " + path + ": tensor 'model.norm.weight': unknown dtype 'F31'\n");
}

TEST(InfoCliTest, ConfigThatDoesNotMatchTheTensorsNamesThem) {
  const std::string dir = CopyOfStories("info_mismatch");
  std::string config = test::ReadBytes(dir + "/config.json");
  const size_t at = config.find("\"intermediate_size\": 172");
  ASSERT_NE(at, std::string::npos);
  config.replace(at, 24, "\"intermediate_size\": 170");
  test::WriteBytes(dir + "/config.json", config);
  const auto r = test::RunOko("info -m " + dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, StartsWith("oko info: error: " + dir +
                                ": model tensors do not match config.json (llama 5 layers):\n"));
  EXPECT_THAT(r.err, HasSubstr("  wrong shape or dtype (15):\n    " + dir +
                               "/model.safetensors: tensor 'model.layers.0.mlp.gate_proj.weight' "
                               "has shape [172, 64], expected [170, 64]\n"));
}

TEST(InfoCliTest, MissingFilesAreBadInput) {
  const std::string dir = CopyOfStories("info_missing");
  fs::remove(dir + "/model.safetensors");
  auto r = test::RunOko("info -m " + dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "oko info: error: " + dir + ": no *.safetensors file in the folder\n");
  fs::remove(dir + "/config.json");
  r = test::RunOko("info -m " + dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(dir + "/config.json: missing"));
}

TEST(InfoCliTest, SymlinkLoopsAreBadInputNotACrash) {
  const std::string dir = CopyOfStories("info_loop");
  fs::remove(dir + "/model.safetensors");
  fs::create_symlink("model.safetensors", dir + "/model.safetensors");
  auto r = test::RunOko("info -m " + dir);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "oko info: error: " + dir +
                       "/model.safetensors: cannot open: Too many levels of symbolic links\n");
  fs::remove(dir + "/config.json");
  fs::create_symlink("config.json", dir + "/config.json");
  r = test::RunOko("info -m " + dir);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "oko info: error: " + dir +
                       "/config.json: cannot open: Too many levels of symbolic links\n");
}

TEST(InfoCliTest, BrokenConfigNamesTheFileAndField) {
  const std::string dir = CopyOfStories("info_config");
  std::string config = test::ReadBytes(dir + "/config.json");
  const size_t at = config.find("\"rms_norm_eps\": 1e-05");
  ASSERT_NE(at, std::string::npos);
  config.replace(at, 21, "\"rms_norm_eps\": \"x\"");
  test::WriteBytes(dir + "/config.json", config);
  const auto r = test::RunOko("info -m " + dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "oko info: error: " + dir + "/config.json: 'rms_norm_eps' must be a number, "
                   "got \"x\"\n");
}

TEST(InfoCliTest, UsageErrorsExitWithOne) {
  const std::string dir = test::SharedPath("models/stories260k");
  const std::vector<std::string> usage_errors = {
      "info", "info -m", "info -m " + dir + " --bogus",
      "no-such-command", ""};
  for (const std::string& args : usage_errors) {
    const auto r = test::RunOko(args);
    EXPECT_EQ(r.exit_code, 1) << "oko " << args << "\n" << r.err;
    EXPECT_EQ(r.out, "") << args;
    EXPECT_NE(r.err, "") << args;
  }
  // A missing model folder is bad input, as every other problem with the folder.
  const auto missing = test::RunOko("info -m /no/such/folder");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err, "oko info: error: -m /no/such/folder: no such folder\n");
  const auto r = test::RunOko("info --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("--model"));
}

}  // namespace
}  // namespace oko
