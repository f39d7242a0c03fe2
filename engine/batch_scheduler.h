// BatchScheduler: continuous batching of many sequences on one Model (what a server
// needs, with no HTTP in it). A thread owns N slots, each a Context with the sampler and
// history of the sequence it runs. Every step it admits waiting sequences into free slots
// (prefilling what their slot's cache does not already hold, engine/context.h
// ReusePrefix), then decodes the next token of every active slot in one pass over the
// weights (BatchDecoder). A sequence that ends (a stop id, its token budget, the context
// full, its caller's callback saying stop, its cancel flag) frees its slot at once; the
// slot keeps its cache, so the next turn of a conversation prefills only what changed.
// Sequences beyond the slots wait in a bounded queue; Submit refuses past it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "engine/batch_decoder.h"
#include "engine/context.h"
#include "engine/sampler.h"
#include "engine/trace.h"

namespace oko {

enum class FinishReason {
  kStop,      // a stop id (not passed to on_token)
  kLength,    // max_new_tokens generated, or the context is full
  kCaller,    // on_token returned false (a stop string, a client gone)
  kCancelled, // *cancel became true (checked every step, also while queued)
  kShutdown,  // the scheduler stopped first
};

struct SequenceResult {
  FinishReason reason = FinishReason::kStop;
  int64_t prompt_tokens = 0;
  int64_t prefilled_tokens = 0;  // of which computed (the rest came from the slot's cache)
  int64_t generated_tokens = 0;  // stop id excluded
};

// A generated token, with its log-probabilities when the request asked for them.
struct SampledToken {
  int32_t id = -1;
  std::optional<TokenLogprob> logprob;  // set when top_logprobs >= 0
  std::vector<TokenLogprob> top;        // top_logprobs alternatives, most likely first
};

struct SequenceRequest {
  std::vector<int32_t> prompt;  // not empty, ids in [0, vocab), shorter than a slot's context
  SamplerOptions sampling;
  int64_t max_new_tokens = 256;
  std::vector<int32_t> stop_ids;
  // -1: no log-probabilities; 0..kMaxTopLogprobs: each token's own and that many of the
  // most likely alternatives (engine/sampler.h Logprob).
  int top_logprobs = -1;
  // Both run on the scheduler's thread: keep them short. on_token gets every generated
  // id but stop ids; returning false ends the sequence (kCaller). on_done runs once, last.
  std::function<bool(const SampledToken& token)> on_token;
  std::function<void(const SequenceResult&)> on_done;
  // Optional: when it becomes true the sequence ends at the next step (kCancelled). Must
  // outlive the sequence (until on_done).
  std::shared_ptr<const std::atomic<bool>> cancel;
  // Optional: sees the sequence's forward passes (its prefill, then every decode step;
  // engine/trace.h), e.g. a TraceRecorder. Its calls for a step are over before that
  // step's on_token runs. Other sequences' steps do not reach it.
  std::shared_ptr<TraceSink> trace;
};

struct SchedulerOptions {
  size_t slots = 4;
  size_t max_queue = 64;  // sequences waiting for a slot (0: only as many as there are free slots)
};

// Counters since the start, and the state now (for /metrics).
struct SchedulerStats {
  int64_t sequences_done = 0;
  int64_t sequences_cancelled = 0;  // of them, ended by their request's cancel flag
  int64_t prompt_tokens = 0;
  int64_t prefilled_tokens = 0;
  int64_t generated_tokens = 0;
  int64_t decode_steps = 0;
  double busy_seconds = 0;  // time spent prefilling and decoding
  size_t active = 0;        // slots running a sequence
  size_t queued = 0;
  int64_t kv_positions = 0;  // positions held by every slot's cache
  int64_t kv_capacity = 0;   // slots x context
};

class BatchScheduler {
 public:
  // The slots are `first` and slots-1 more contexts created like it (same model, pool and
  // options). The thread starts at once.
  static Result<std::unique_ptr<BatchScheduler>> Create(std::unique_ptr<Context> first,
                                                        const SchedulerOptions& options);
  ~BatchScheduler();  // Shutdown()

  enum class Admission { kQueued, kFull, kShutDown };
  // Queues `request`, unless every slot is taken and max_queue sequences wait (kFull) or
  // the scheduler is shut down; on_done is called only for a queued one.
  Admission Submit(SequenceRequest request);
  // Ends every sequence, queued or running, with kShutdown, refuses new ones, joins.
  void Shutdown();

  SchedulerStats stats() const;
  const Model& model() const { return slots_[0].context->model(); }
  int64_t slot_context() const { return slots_[0].context->kv_cache().capacity(); }
  size_t slots() const { return slots_.size(); }
  size_t max_queue() const { return max_queue_; }

 private:
  struct Slot {
    std::unique_ptr<Context> context;
    std::unique_ptr<SequenceRequest> request;  // null: free
    std::unique_ptr<Sampler> sampler;
    std::vector<int32_t> history;  // prompt + generated, what the penalties see
    int32_t next = -1;             // sampled, not yet run
    SequenceResult result;
  };

  BatchScheduler(std::vector<std::unique_ptr<Context>> contexts, const SchedulerOptions& options);
  void Loop();
  void Admit(std::unique_lock<std::mutex>& lock);
  size_t PickSlot(const std::vector<int32_t>& prompt) const;
  void Start(Slot& slot, std::unique_ptr<SequenceRequest> request);
  // Samples from `logits` into slot.next; false when the sequence ended.
  bool Advance(Slot& slot, std::span<float> logits);
  void Finish(Slot& slot, FinishReason reason);
  void DecodeStep();
  void EndCancelled();

  std::vector<Slot> slots_;
  BatchDecoder decoder_;
  std::vector<float> logits_;
  std::vector<float> raw_logits_;  // a row before the sampler changes it, for logprobs
  const size_t max_queue_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<SequenceRequest>> queue_;  // guarded by mu_
  size_t running_ = 0;                                  // guarded by mu_: slots taken
  bool stopping_ = false;                               // guarded by mu_
  SchedulerStats stats_;                                // guarded by mu_
  std::thread thread_;
};

}  // namespace oko
