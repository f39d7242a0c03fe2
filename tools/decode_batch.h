// Shared by `oko bench --parallel` and `oko profile --parallel`: N sequences of one loaded
// model decoding synthetic ids together, one pass over the weights per step.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "engine/batch_decoder.h"
#include "engine/context.h"

namespace oko {

class DecodeBatch {
 public:
  // n contexts of first's model, pool and interventions (each of options' size), warmed
  // up by one step of every sequence, as one sequence is, with each cache's memory for
  // `positions` committed: the first round would otherwise pay the decoder's buffers and
  // each cache's pages. Refused where n caches would not fit in this machine's memory.
  static Result<std::unique_ptr<DecodeBatch>> Create(const Context& first, const EngineOptions& options, size_t n,
                                                     int64_t positions);

  // Every sequence back to `depth` synthetic ids of its own: prefilled, or (still in its
  // cache from an earlier call) kept, its last id run again.
  void Reset(int64_t depth);
  // `steps` decode steps of every sequence; the seconds they took.
  double Decode(int64_t steps);
  void set_profiler(Profiler* p) { decoder_.set_profiler(p); }
  size_t size() const { return contexts_.size(); }

 private:
  DecodeBatch(const Context& first, size_t n);
  void Step(int64_t step);

  const int64_t vocab_;
  BatchDecoder decoder_;
  std::vector<std::unique_ptr<Context>> owned_;
  std::vector<Context*> contexts_;
  std::vector<int32_t> ids_;
  std::vector<float> logits_;
};

}  // namespace oko
