// trace --drift: the drift a LoRA adapter causes, against the numbers of
// ../shared/golden/lora/cases.json ("drift" and "effect_vs_base": float32 PyTorch with and
// without the adapter), and the command's files and refusals.
#include "tools/lora_drift.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "loaders/safetensors.h"
#include "tests/test_util.h"

namespace oko {
namespace {

TEST(LoraDrift, MatchesTheGoldenDriftOfEveryCase) {
  const auto cases = test::ReadJson(test::SharedPath("golden/lora/cases.json"));
  size_t checked = 0;
  for (const auto& c : cases["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    EngineOptions o;
    o.threads = 2;
    o.ctx = 512;
    for (size_t i = 0; i + 1 < c["argv"].size(); i += 2) {
      auto spec = ParseLoraSpec(test::SharedPath(c["argv"][i + 1].get<std::string>()));
      ASSERT_TRUE(spec.ok());
      o.lora.push_back(spec.value());
    }
    auto ctx = LoadContext(test::SharedPath(c["model"].get<std::string>()), o);
    ASSERT_TRUE(ctx.ok()) << ctx.status().message();
    const std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
    TraceWriteOptions write;
    for (int32_t id : ids) write.tokens.push_back({id, "t", -1, ""});
    auto d = MeasureLoraDrift(*ctx.value(), ids, TraceFilter{}, write);
    ASSERT_TRUE(d.ok()) << d.status().message();
    const auto& effect = c["effect_vs_base"];
    EXPECT_NEAR(d.value().next_token_kl, effect["next_token_kl_last"].get<double>(), 1e-3);
    const auto residual = effect["residual_rel_l2_per_layer"].get<std::vector<double>>();
    ASSERT_EQ(d.value().residual_rel_l2.size(), residual.size());
    for (size_t l = 0; l < residual.size(); ++l)
      EXPECT_NEAR(d.value().residual_rel_l2[l], residual[l], 1e-4) << "after layer " << int(l) - 1;
    const auto& js = c["drift"]["attn_js_per_layer_head"];
    const auto& l1 = c["drift"]["attn_l1_per_layer_head"];
    ASSERT_EQ(d.value().attention.ranked.size(), js.size() * js[0].size());
    for (const HeadDrift& h : d.value().attention.ranked) {
      // oko reports bits, the golden nats.
      EXPECT_NEAR(h.jsd * std::log(2.0), js[h.layer][h.head].get<double>(), 1e-4) << h.layer << "." << h.head;
      EXPECT_NEAR(h.l1, l1[h.layer][h.head].get<double>(), 2e-3) << h.layer << "." << h.head;
    }
    EXPECT_EQ(ctx.value()->lora_scales()[0], static_cast<float>(o.lora[0].scale)) << "scales restored";
    ++checked;
  }
  EXPECT_EQ(checked, 8u);
}

TEST(LoraDrift, CommandWritesTheReportAndThePage) {
  const std::string dir = test::TempDir("lora_drift");
  const std::string model = test::SharedPath("models/stories260k");
  const std::string adapter = test::SharedPath("golden/lora/adapters/stories260k-r4-all");
  auto r = test::RunOko("trace -m " + model + " -p 'Lily and Tom went to the park' -n 4 --lora " + adapter +
                        " --drift " + dir + "/d.safetensors");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("next token: KL(base || adapted)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Jensen-Shannon divergence per head"), std::string::npos) << r.out;
  auto file = SafetensorsFile::Open(dir + "/d.safetensors");
  ASSERT_TRUE(file.ok()) << file.status().message();
  bool has_jsd = false;
  for (const TensorView& t : file.value()->tensors())
    if (t.name == "drift.jsd") has_jsd = t.shape == std::vector<int64_t>{5, 8};
  EXPECT_TRUE(has_jsd);
  r = test::RunOko("trace -m " + model + " -p 'Lily' --lora " + adapter + " --drift " + dir + "/d.html");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::file_size(dir + "/d.html") > 1000);
}

TEST(LoraDrift, CommandRefusesWhatCannotDrift) {
  const std::string model = test::SharedPath("models/stories260k");
  const std::string adapter = test::SharedPath("golden/lora/adapters/stories260k-r4-all");
  const std::string out = test::TempDir("lora_drift_refusals") + "/d.html";
  auto r = test::RunOko("trace -m " + model + " -p Lily --drift " + out);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--lora"), std::string::npos) << r.err;
  r = test::RunOko("trace -m " + model + " -p Lily --lora " + adapter + " --lora-merge --drift " + out);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  r = test::RunOko("trace -m " + model + " -p Lily --lora " + adapter + ":0 --drift " + out);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("scale is 0"), std::string::npos) << r.err;
  r = test::RunOko("trace -m " + model + " -p Lily --lora " + adapter + " --drift " + out + ".txt");
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

}  // namespace
}  // namespace oko
