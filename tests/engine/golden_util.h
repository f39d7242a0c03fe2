// What the golden tests share: the .npy reader, the largest difference and where it is,
// and the check of one ref_torch.py folder (with the Recorder of attention_recorder.h).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/npy.h"
#include "engine/context.h"
#include "tests/engine/attention_recorder.h"

namespace oko::test {

using oko::Recorder;  // tests/engine/attention_recorder.h

inline NpyArray Load(const std::string& path) {
  auto a = ReadNpy(path);
  EXPECT_TRUE(a.ok()) << a.status().message();
  return a.ok() ? std::move(a).value() : NpyArray{};
}

// Max |a - b| and where it is.
struct Diff {
  double max = 0;
  size_t at = 0;
};
// `a` holds at least `expected_size` values; a `b` of another size is a failure, never a
// vacuous pass.
inline Diff MaxDiff(const float* a, const std::vector<float>& b, size_t expected_size) {
  Diff d;
  if (b.size() != expected_size) return {INFINITY, b.size()};
  for (size_t i = 0; i < b.size(); ++i) {
    const double e = std::fabs(double(a[i]) - double(b[i]));
    if (!(e <= d.max)) d = {e, i};
  }
  return d;
}

inline int32_t Argmax(const float* x, int64_t n) {
  return static_cast<int32_t>(std::max_element(x, x + n) - x);  // lowest id on ties
}

struct Tolerance {
  double logits, residual, attn;
};

// Runs the prompt of one golden folder of ref_torch.py's layout (input_ids, residual,
// attn_probs, final_hidden, logits_last, logsumexp, greedy_ids; logits_probe at
// ../probe_ids when `probes`) through a fresh context and checks every site, then the
// greedy continuation through the KV cache.
inline void CheckForward(Context* model, const std::string& dir, const Tolerance& tol, bool probes = true) {
  SCOPED_TRACE(dir);
  const ModelConfig& c = model->config();
  const auto ids64 = Load(dir + "/input_ids.npy").AsInts();
  const std::vector<int32_t> ids(ids64.begin(), ids64.end());
  const int64_t T = ids.size(), V = c.vocab_size, D = c.hidden_size;
  Recorder rec(c.num_layers, c.num_heads, T);
  model->set_trace(&rec);
  std::vector<float> logits;
  model->Forward(ids, Logits::kAll, &logits);
  model->set_trace(nullptr);

  // Residual stream, layer by layer: the first divergent layer is the one to look at.
  const auto residual = Load(dir + "/residual.npy").AsFloats();
  for (int64_t l = 0; l <= c.num_layers; ++l) {
    const float* ref = residual.data() + l * T * D;
    const Diff d = MaxDiff(ref, rec.residual[l], T * D);
    ASSERT_LE(d.max, tol.residual) << "residual stream diverges "
                                   << (l == 0 ? std::string("at the embeddings")
                                              : "after layer " + std::to_string(l - 1))
                                   << " (position " << d.at / D << ", dim " << d.at % D << ")";
    if (l < c.num_layers) {
      const auto attn = Load(dir + "/attn_probs.npy").AsFloats();
      const size_t per_layer = c.num_heads * T * T;
      std::vector<float> mine(rec.attn.begin() + l * per_layer, rec.attn.begin() + (l + 1) * per_layer);
      const Diff a = MaxDiff(attn.data() + l * per_layer, mine, per_layer);
      ASSERT_LE(a.max, tol.attn) << "L" << l << ".attn.softmax diverges (head "
                                 << a.at / (T * T) << ", query " << a.at / T % T << ", key "
                                 << a.at % T << ")";
    }
  }
  const Diff fh = MaxDiff(Load(dir + "/final_hidden.npy").AsFloats().data(), rec.final_hidden, T * D);
  EXPECT_LE(fh.max, tol.residual) << "final_norm diverges";

  std::vector<float> last(logits.end() - V, logits.end());
  const Diff dl = MaxDiff(Load(dir + "/logits_last.npy").AsFloats().data(), last, V);
  EXPECT_LE(dl.max, tol.logits) << "lm_head: last-position logits diverge at id " << dl.at;
  // Probe columns and log-sum-exp at every position.
  const auto probe_ids = probes ? Load(dir + "/../probe_ids.npy").AsInts() : std::vector<int64_t>{};
  const auto probe = probes ? Load(dir + "/logits_probe.npy").AsFloats() : std::vector<float>{};
  const auto lse = Load(dir + "/logsumexp.npy").AsFloats();
  ASSERT_EQ(lse.size(), static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) {
    const float* row = logits.data() + t * V;
    for (size_t p = 0; p < probe_ids.size(); ++p)
      ASSERT_NEAR(row[probe_ids[p]], probe[t * probe_ids.size() + p], tol.logits)
          << "position " << t << " id " << probe_ids[p];
    double m = *std::max_element(row, row + V), s = 0;
    for (int64_t v = 0; v < V; ++v) s += std::exp(double(row[v]) - m);
    EXPECT_NEAR(m + std::log(s), lse[t], tol.logits) << "logsumexp at position " << t;
  }

  // Greedy continuation through the KV cache (decode), token for token.
  const auto greedy = Load(dir + "/greedy_ids.npy").AsInts();
  int32_t next = Argmax(last.data(), V);
  for (size_t i = 0; i < greedy.size(); ++i) {
    ASSERT_EQ(next, greedy[i]) << "greedy step " << i;
    std::vector<float> step;
    const int32_t id = next;
    model->Forward(std::span<const int32_t>(&id, 1), Logits::kLast, &step);
    next = Argmax(step.data(), V);
  }
}

}  // namespace oko::test
