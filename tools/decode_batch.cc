#include "tools/decode_batch.h"

#include <chrono>
#include <span>
#include <vector>

#include "tools/bench_util.h"
#include "tools/resources.h"

namespace oko {

DecodeBatch::DecodeBatch(const Context& first, size_t n)
    : vocab_(first.config().vocab_size), decoder_(first.shared_model(), first.shared_pool(), n), ids_(n) {}

Result<std::unique_ptr<DecodeBatch>> DecodeBatch::Create(const Context& first, const EngineOptions& options,
                                                         size_t n, int64_t positions) {
  const uint64_t bytes = EstimateMemory(first.config(), options).total() * n, ram = PhysicalMemoryBytes();
  if (ram > 0 && bytes > ram)
    return Errorf("--parallel {}: {} contexts of {} positions would need {}, more than this machine's {} of "
                  "memory (lower --parallel or the positions each one runs)", n, n, options.ctx,
                  BytesAndHuman(bytes), BytesAndHuman(ram));
  auto batch = std::unique_ptr<DecodeBatch>(new DecodeBatch(first, n));
  for (size_t i = 0; i < n; ++i) {
    OKO_ASSIGN_OR_RETURN(auto c, Context::Create(first.shared_model(), first.shared_pool(), options));
    c->set_interventions(first.interventions());
    c->CommitCache(positions);
    batch->contexts_.push_back(c.get());
    batch->owned_.push_back(std::move(c));
  }
  batch->Step(0);
  return batch;
}

void DecodeBatch::Reset(int64_t depth) {
  for (size_t i = 0; i < contexts_.size(); ++i) {
    Context& c = *contexts_[i];
    if (depth == 0) {
      c.Reset();
      continue;
    }
    // A sequence that still holds its prompt from an earlier round (bench's rounds,
    // profile's two runs) keeps it and runs only its last id again.
    const std::vector<int32_t> prompt = SyntheticIds(depth, vocab_, 1 + static_cast<int64_t>(i));
    const size_t kept = c.ReusePrefix(prompt);
    c.Forward(std::span<const int32_t>(prompt).subspan(kept), Logits::kNone, nullptr);
  }
}

void DecodeBatch::Step(int64_t step) {
  for (size_t i = 0; i < contexts_.size(); ++i)
    ids_[i] = static_cast<int32_t>((step * 7919 + static_cast<int64_t>(i) * 104729 + 2) % vocab_);
  decoder_.Decode(contexts_, ids_, &logits_);
}

double DecodeBatch::Decode(int64_t steps) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < steps; ++step) Step(step);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace oko
