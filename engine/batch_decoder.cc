#include "engine/batch_decoder.h"

#include <algorithm>

#include "common/check.h"

namespace oko {

BatchDecoder::BatchDecoder(std::shared_ptr<const Model> model, std::shared_ptr<ThreadPool> pool,
                           size_t max_sequences)
    : model_(std::move(model)),
      pool_(std::move(pool)),
      workspace_(*model_, max_sequences, pool_->size()) {}

void BatchDecoder::Decode(std::span<Context* const> contexts, std::span<const int32_t> ids,
                          std::vector<float>* logits) {
  OKO_CHECK(contexts.size() == ids.size(), "{} contexts, {} ids", contexts.size(), ids.size());
  OKO_CHECK(contexts.size() <= max_sequences(), "{} sequences in one step (at most {})",
            contexts.size(), max_sequences());
  const int64_t V = model_->config().vocab_size;
  segments_.clear();
  for (size_t i = 0; i < contexts.size(); ++i) {
    Context* c = contexts[i];
    OKO_CHECK(&c->model() == model_.get(), "sequence {} belongs to another model", i);
    OKO_CHECK(std::count(contexts.begin(), contexts.end(), c) == 1, "sequence {} appears twice", i);
    OKO_CHECK(ids[i] >= 0 && ids[i] < V, "token id {} outside [0, {})", ids[i], V);
    segments_.push_back({c, ids.subspan(i, 1), Logits::kLast});
  }
  if (logits != nullptr) logits->clear();
  ForwardPass::Run(*model_, *pool_, workspace_, segments_, profiler_, logits);
}

}  // namespace oko
