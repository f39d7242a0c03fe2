// Continuous batching: sequences submitted together, more than there are slots, each
// give the tokens they give run alone; a cancelled sequence frees its slot; a full queue
// refuses; a conversation's next turn prefills only what is new; shutdown ends every
// sequence. Threaded (the scheduler's thread and the submitters'): TSan runs this file.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "engine/batch_scheduler.h"
#include "tests/test_util.h"

namespace oko {
namespace {

std::unique_ptr<BatchScheduler> NewScheduler(size_t slots, size_t max_queue = 64, int64_t ctx = 256) {
  EngineOptions o;
  o.ctx = ctx;
  o.threads = 2;
  auto c = LoadContext(test::SharedPath("models/stories260k"), o);
  EXPECT_TRUE(c.ok()) << c.status().message();
  if (!c.ok()) return nullptr;
  auto s = BatchScheduler::Create(std::move(c).value(), SchedulerOptions{slots, max_queue});
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? std::move(s).value() : nullptr;
}

constexpr auto kQueued = BatchScheduler::Admission::kQueued;

struct Outcome {
  std::vector<int32_t> ids;
  SequenceResult result;
};

// A request whose tokens and result land in the future's Outcome.
SequenceRequest Request(std::vector<int32_t> prompt, uint64_t seed, int64_t max_new,
                        std::shared_ptr<std::promise<Outcome>> done) {
  auto got = std::make_shared<Outcome>();
  SequenceRequest r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0.8f;
  r.sampling.top_p = 0.95f;
  r.sampling.seed = seed;
  r.max_new_tokens = max_new;
  r.on_token = [got](const SampledToken& t) {
    got->ids.push_back(t.id);
    return true;
  };
  r.on_done = [got, done](const SequenceResult& result) {
    got->result = result;
    done->set_value(*got);
  };
  return r;
}

Outcome RunAlone(BatchScheduler& s, std::vector<int32_t> prompt, uint64_t seed, int64_t max_new) {
  auto done = std::make_shared<std::promise<Outcome>>();
  auto f = done->get_future();
  EXPECT_EQ(s.Submit(Request(std::move(prompt), seed, max_new, done)), kQueued);
  return f.get();
}

std::vector<int32_t> Prompt(int i) { return {1, static_cast<int32_t>(10 + i), static_cast<int32_t>(20 + 3 * i)}; }

TEST(BatchScheduler, SequencesTogetherGiveWhatTheyGiveAlone) {
  auto alone = NewScheduler(1);
  std::vector<Outcome> want;
  for (int i = 0; i < 6; ++i) want.push_back(RunAlone(*alone, Prompt(i), 100 + i, 12 + i));

  auto together = NewScheduler(3);  // 6 sequences on 3 slots: half of them queue
  std::vector<std::future<Outcome>> got;
  for (int i = 0; i < 6; ++i) {
    auto done = std::make_shared<std::promise<Outcome>>();
    got.push_back(done->get_future());
    ASSERT_EQ(together->Submit(Request(Prompt(i), 100 + i, 12 + i, done)), kQueued);
  }
  for (int i = 0; i < 6; ++i) {
    const Outcome o = got[i].get();
    EXPECT_EQ(o.ids, want[i].ids) << "sequence " << i;
    EXPECT_EQ(o.result.reason, want[i].result.reason);
    EXPECT_EQ(o.result.generated_tokens, static_cast<int64_t>(o.ids.size()));
  }
  EXPECT_EQ(together->stats().sequences_done, 6);
}

TEST(BatchScheduler, LengthEndsAtMaxNewTokens) {
  auto s = NewScheduler(2);
  const Outcome o = RunAlone(*s, Prompt(0), 7, 5);  // no stop ids: only the budget ends it
  EXPECT_EQ(o.ids.size(), 5u);
  EXPECT_EQ(o.result.reason, FinishReason::kLength);
}

TEST(BatchScheduler, TheContextFullEndsWithLength) {
  auto s = NewScheduler(1, 4, /*ctx=*/16);
  SequenceRequest r = Request(Prompt(0), 7, 1000, std::make_shared<std::promise<Outcome>>());
  r.stop_ids = {};  // no end of text: only the context stops it
  auto done = std::make_shared<std::promise<Outcome>>();
  auto f = done->get_future();
  int64_t n = 0;
  r.on_token = [&n](const SampledToken&) { return ++n, true; };
  r.on_done = [done](const SequenceResult& result) { done->set_value(Outcome{{}, result}); };
  ASSERT_EQ(s->Submit(std::move(r)), kQueued);
  const Outcome o = f.get();
  EXPECT_EQ(o.result.reason, FinishReason::kLength);
  EXPECT_EQ(3 + n, 16 + 1);  // the last token is sampled from position 15's logits, never run
}

TEST(BatchScheduler, CallerStopAndCancelFreeTheSlot) {
  auto s = NewScheduler(1);
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  auto done = std::make_shared<std::promise<Outcome>>();
  auto f = done->get_future();
  SequenceRequest r = Request(Prompt(0), 7, 100000, done);
  r.on_token = [cancel](const SampledToken&) {
    cancel->store(true);  // as a client that went away after the first token
    return true;
  };
  r.cancel = cancel;
  ASSERT_EQ(s->Submit(std::move(r)), kQueued);
  EXPECT_EQ(f.get().result.reason, FinishReason::kCancelled);

  auto done2 = std::make_shared<std::promise<Outcome>>();
  auto f2 = done2->get_future();
  SequenceRequest r2 = Request(Prompt(1), 7, 100000, done2);
  r2.on_token = [](const SampledToken&) { return false; };
  ASSERT_EQ(s->Submit(std::move(r2)), kQueued);
  const Outcome o2 = f2.get();
  EXPECT_EQ(o2.result.reason, FinishReason::kCaller);
  EXPECT_EQ(o2.result.generated_tokens, 1);
  // The slot is free again: a third sequence runs.
  EXPECT_GT(RunAlone(*s, Prompt(2), 7, 3).result.generated_tokens, 0);
}

TEST(BatchScheduler, AFullQueueRefuses) {
  auto s = NewScheduler(1, /*max_queue=*/1);  // one running, one waiting
  // Holds the slot until released.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto first = std::make_shared<std::promise<Outcome>>();
  SequenceRequest r = Request(Prompt(0), 7, 3, first);
  std::promise<void> started;
  r.on_token = [released, &started, n = 0](const SampledToken&) mutable {
    if (n++ == 0) started.set_value();
    released.wait();
    return true;
  };
  ASSERT_EQ(s->Submit(std::move(r)), kQueued);
  started.get_future().wait();  // the slot is busy, the queue empty
  auto second = std::make_shared<std::promise<Outcome>>();
  EXPECT_EQ(s->Submit(Request(Prompt(1), 7, 3, second)), kQueued);
  EXPECT_EQ(s->Submit(Request(Prompt(2), 7, 3, std::make_shared<std::promise<Outcome>>())),
            BatchScheduler::Admission::kFull);
  release.set_value();
  first->get_future().wait();
  second->get_future().wait();
}

TEST(BatchScheduler, TheNextTurnPrefillsOnlyWhatIsNew) {
  auto s = NewScheduler(2);
  const Outcome first = RunAlone(*s, Prompt(0), 7, 8);
  std::vector<int32_t> next = Prompt(0);
  next.insert(next.end(), first.ids.begin(), first.ids.end());
  next.push_back(5);
  const Outcome second = RunAlone(*s, next, 7, 4);
  // The last generated token was never run, so it and the new one are prefilled.
  EXPECT_EQ(second.result.prefilled_tokens, 2);
  EXPECT_EQ(second.result.prompt_tokens, static_cast<int64_t>(next.size()));
}

TEST(BatchScheduler, ShutdownEndsQueuedAndRunningSequences) {
  auto s = NewScheduler(1, /*max_queue=*/1 << 20);  // refuses only once stopping
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::vector<std::future<Outcome>> got;
  auto submit = [&](int i) {
    auto done = std::make_shared<std::promise<Outcome>>();
    SequenceRequest r = Request(Prompt(i), 7, 1000, done);
    r.on_token = [released](const SampledToken&) { return released.wait(), true; };
    const bool queued = s->Submit(std::move(r)) == kQueued;
    if (queued) got.push_back(done->get_future());
    return queued;
  };
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(submit(i));  // one runs (held in on_token), two wait
  std::thread stopper([&] { s->Shutdown(); });
  for (int i = 3; submit(i); ++i) {
  }  // until the scheduler refuses: it is stopping
  release.set_value();
  stopper.join();
  for (auto& f : got) EXPECT_EQ(f.get().result.reason, FinishReason::kShutdown);
  EXPECT_EQ(s->Submit(Request(Prompt(0), 7, 3, std::make_shared<std::promise<Outcome>>())),
            BatchScheduler::Admission::kShutDown);
}

}  // namespace
}  // namespace oko
