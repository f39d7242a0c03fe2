#include "engine/batch_scheduler.h"

#include <algorithm>
#include <chrono>

namespace oko {

namespace {
size_t CommonPrefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  const size_t n = std::min(a.size(), b.size());
  return static_cast<size_t>(std::mismatch(a.begin(), a.begin() + n, b.begin()).first - a.begin());
}
}  // namespace

Result<std::unique_ptr<BatchScheduler>> BatchScheduler::Create(std::unique_ptr<Context> first,
                                                               const SchedulerOptions& options) {
  if (options.slots < 1) return Status::Error("a scheduler needs at least one slot");
  std::vector<std::unique_ptr<Context>> contexts;
  for (size_t i = 1; i < options.slots; ++i) {
    OKO_ASSIGN_OR_RETURN(auto c, Context::Create(first->shared_model(), first->shared_pool(), first->options()));
    contexts.push_back(std::move(c));
  }
  contexts.insert(contexts.begin(), std::move(first));
  return std::unique_ptr<BatchScheduler>(new BatchScheduler(std::move(contexts), options));
}

BatchScheduler::BatchScheduler(std::vector<std::unique_ptr<Context>> contexts, const SchedulerOptions& options)
    : decoder_(contexts[0]->shared_model(), contexts[0]->shared_pool(), contexts.size()),
      max_queue_(options.max_queue) {
  slots_.resize(contexts.size());
  for (size_t i = 0; i < contexts.size(); ++i) slots_[i].context = std::move(contexts[i]);
  stats_.kv_capacity = static_cast<int64_t>(slots_.size()) * slot_context();
  thread_ = std::thread([this] { Loop(); });
}

BatchScheduler::~BatchScheduler() { Shutdown(); }

BatchScheduler::Admission BatchScheduler::Submit(SequenceRequest request) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Admission::kShutDown;
    if (running_ + queue_.size() >= slots_.size() + max_queue_) return Admission::kFull;
    queue_.push_back(std::make_unique<SequenceRequest>(std::move(request)));
    stats_.queued = queue_.size();
  }
  wake_.notify_one();
  return Admission::kQueued;
}

void BatchScheduler::Shutdown() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

SchedulerStats BatchScheduler::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void BatchScheduler::Loop() {
  auto active = [&] {
    return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.request != nullptr; });
  };
  std::unique_lock lock(mu_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || active(); });
    if (stopping_) break;
    const auto start = std::chrono::steady_clock::now();
    Admit(lock);
    lock.unlock();
    EndCancelled();
    DecodeStep();
    lock.lock();
    stats_.busy_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    stats_.active = 0;
    stats_.kv_positions = 0;
    for (const Slot& s : slots_) {
      stats_.active += s.request != nullptr;
      stats_.kv_positions += std::min(s.context->position(), s.context->kv_cache().capacity());
    }
  }
  std::deque<std::unique_ptr<SequenceRequest>> queued = std::move(queue_);
  queue_.clear();
  stats_.queued = 0;
  lock.unlock();
  for (Slot& s : slots_)
    if (s.request != nullptr) Finish(s, FinishReason::kShutdown);
  for (auto& r : queued) r->on_done(SequenceResult{FinishReason::kShutdown, static_cast<int64_t>(r->prompt.size())});
}

// Moves waiting sequences into free slots and prefills them (with mu_ released, so that
// Submit and stats() do not wait for a prefill).
void BatchScheduler::Admit(std::unique_lock<std::mutex>& lock) {
  while (!queue_.empty()) {
    const bool any_free = std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.request == nullptr; });
    if (!any_free) break;
    std::unique_ptr<SequenceRequest> request = std::move(queue_.front());
    queue_.pop_front();
    stats_.queued = queue_.size();
    ++running_;
    lock.unlock();
    if (request->cancel != nullptr && request->cancel->load()) {
      {
        std::lock_guard relock(mu_);
        --running_;
        ++stats_.sequences_done;
        ++stats_.sequences_cancelled;
      }
      request->on_done(SequenceResult{FinishReason::kCancelled, static_cast<int64_t>(request->prompt.size())});
    } else {
      Slot& slot = slots_[PickSlot(request->prompt)];
      Start(slot, std::move(request));
    }
    lock.lock();
  }
}

// The free slot whose cache shares the longest prefix with `prompt` (a conversation's
// next turn goes back to the slot that holds its previous turns).
size_t BatchScheduler::PickSlot(const std::vector<int32_t>& prompt) const {
  size_t best = slots_.size(), best_len = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].request != nullptr) continue;
    const size_t len = CommonPrefix(slots_[i].context->tokens(), prompt);
    if (best == slots_.size() || len > best_len) best = i, best_len = len;
  }
  return best;
}

void BatchScheduler::Start(Slot& slot, std::unique_ptr<SequenceRequest> request) {
  slot.request = std::move(request);
  const SequenceRequest& r = *slot.request;
  slot.sampler = std::make_unique<Sampler>(r.sampling);
  slot.history = r.prompt;
  slot.result = SequenceResult{};
  slot.result.prompt_tokens = static_cast<int64_t>(r.prompt.size());
  Context& c = *slot.context;
  c.set_trace(r.trace.get());
  const size_t reused = c.ReusePrefix(r.prompt);
  slot.result.prefilled_tokens = static_cast<int64_t>(r.prompt.size() - reused);
  c.Forward(std::span(r.prompt).subspan(reused), Logits::kLast, &logits_);
  Advance(slot, logits_);
}

bool BatchScheduler::Advance(Slot& slot, std::span<float> logits) {
  const SequenceRequest& r = *slot.request;
  if (slot.result.generated_tokens >= r.max_new_tokens) {
    Finish(slot, FinishReason::kLength);
    return false;
  }
  if (r.top_logprobs >= 0) raw_logits_.assign(logits.begin(), logits.end());
  const int32_t id = slot.sampler->Sample(logits, slot.history);
  if (std::find(r.stop_ids.begin(), r.stop_ids.end(), id) != r.stop_ids.end()) {
    Finish(slot, FinishReason::kStop);
    return false;
  }
  slot.history.push_back(id);
  ++slot.result.generated_tokens;
  SampledToken token;
  token.id = id;
  if (r.top_logprobs >= 0) {
    const double lse = LogSumExp(raw_logits_);
    token.logprob = Logprob(raw_logits_, id, lse);
    token.top = TopLogprobs(raw_logits_, static_cast<size_t>(r.top_logprobs), lse);
  }
  if (!r.on_token(token)) {
    Finish(slot, FinishReason::kCaller);
    return false;
  }
  // The next step would run `id` at position(): past the cache it would wrap the ring
  // and silently forget the prompt's start.
  if (slot.result.generated_tokens >= r.max_new_tokens || slot.context->position() >= slot_context()) {
    Finish(slot, FinishReason::kLength);
    return false;
  }
  slot.next = id;
  return true;
}

void BatchScheduler::Finish(Slot& slot, FinishReason reason) {
  slot.result.reason = reason;
  std::unique_ptr<SequenceRequest> request = std::move(slot.request);
  slot.sampler.reset();
  slot.next = -1;
  slot.context->set_trace(nullptr);
  {
    std::lock_guard lock(mu_);
    --running_;
    ++stats_.sequences_done;
    if (reason == FinishReason::kCancelled) ++stats_.sequences_cancelled;
    stats_.prompt_tokens += slot.result.prompt_tokens;
    stats_.prefilled_tokens += slot.result.prefilled_tokens;
    stats_.generated_tokens += slot.result.generated_tokens;
  }
  request->on_done(slot.result);
}

void BatchScheduler::EndCancelled() {
  for (Slot& s : slots_)
    if (s.request != nullptr && s.request->cancel != nullptr && s.request->cancel->load())
      Finish(s, FinishReason::kCancelled);
}

void BatchScheduler::DecodeStep() {
  std::vector<Slot*> running;
  std::vector<Context*> contexts;
  std::vector<int32_t> ids;
  for (Slot& s : slots_) {
    if (s.request == nullptr) continue;
    running.push_back(&s);
    contexts.push_back(s.context.get());
    ids.push_back(s.next);
  }
  if (running.empty()) return;
  decoder_.Decode(contexts, ids, &logits_);
  {
    std::lock_guard lock(mu_);
    ++stats_.decode_steps;
  }
  const size_t V = static_cast<size_t>(model().config().vocab_size);
  for (size_t i = 0; i < running.size(); ++i) Advance(*running[i], std::span(logits_).subspan(i * V, V));
}

}  // namespace oko
