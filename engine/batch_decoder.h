// BatchDecoder: the next token of several sequences in one pass over the weights. Decode
// reads every weight once per step whatever the number of rows, so N sequences cost
// little more than one: the GEMVs become skinny GEMMs of N rows, while each sequence
// attends its own KV cache at its own position (engine/forward.h).
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "engine/context.h"

namespace oko {

class BatchDecoder {
 public:
  // Decodes up to max_sequences contexts of `model` at once on `pool`.
  BatchDecoder(std::shared_ptr<const Model> model, std::shared_ptr<ThreadPool> pool,
               size_t max_sequences);

  size_t max_sequences() const { return workspace_.rows(); }
  // Runs ids[i] at the next position of contexts[i] (distinct contexts of this model,
  // at most max_sequences, ids in [0, vocab)); logits receives [n, vocab], row i being
  // what contexts[i]->Forward would give for ids[i] alone.
  void Decode(std::span<Context* const> contexts, std::span<const int32_t> ids,
              std::vector<float>* logits);
  void set_profiler(Profiler* p) { profiler_ = p; }

 private:
  std::shared_ptr<const Model> model_;
  std::shared_ptr<ThreadPool> pool_;
  Workspace workspace_;
  std::vector<Segment> segments_;
  Profiler* profiler_ = nullptr;
};

}  // namespace oko
