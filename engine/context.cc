#include "engine/context.h"

#include <algorithm>
#include <thread>

#include "common/check.h"

namespace oko {

namespace {
int ResolveThreads(int t) {
  if (t > 0) return t;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// The options as this model and pool run them.
EngineOptions Resolve(const Model& model, const ThreadPool& pool, const EngineOptions& options) {
  EngineOptions r = options;
  r.threads = pool.size();
  r.compute = model.compute();
  r.compute_auto = false;
  // A model trained with a sliding window (Mistral's sliding_window) attends at most that
  // many positions: the engine's attention window, narrowed further only by the caller.
  if (const int64_t sw = model.config().sliding_window; sw > 0) {
    const int64_t current = options.window == 0 ? options.ctx : options.window;
    if (sw < current) r.window = sw;
  }
  return r;
}
}  // namespace

Result<std::unique_ptr<Context>> Context::Create(std::shared_ptr<const Model> model,
                                                 std::shared_ptr<ThreadPool> pool,
                                                 const EngineOptions& options) {
  if (options.ctx < 2) return Errorf("the context must hold at least 2 positions, got {}", options.ctx);
  if (options.window < 0 || options.window > options.ctx)
    return Errorf("the attention window must be in [0, {}] (the context size), got {}", options.ctx,
                  options.window);
  if (options.sink < 0 || options.sink >= options.ctx)
    return Errorf("the attention sinks must be in [0, {}) (the context size), got {}", options.ctx,
                  options.sink);
  if (options.max_batch < 1) return Errorf("the prefill chunk must be at least 1, got {}", options.max_batch);
  const EngineOptions resolved = Resolve(*model, *pool, options);
  auto context = std::unique_ptr<Context>(new Context(std::move(model), std::move(pool), resolved));
  if (!context->kv_.allocated())
    return RuntimeErrorf("out of memory for a KV cache of {} positions ({} bytes)", resolved.ctx,
                         context->kv_.bytes());
  return context;
}

Context::Context(std::shared_ptr<const Model> model, std::shared_ptr<ThreadPool> pool,
                 const EngineOptions& options)
    : model_(std::move(model)),
      pool_(std::move(pool)),
      options_(options),
      rope_(model_->config().head_dim, model_->config().rope_theta, model_->config().rope_scaling),
      kv_(model_->config().num_layers, model_->config().num_kv_heads, model_->config().head_dim,
          options.ctx, options.window, options.sink, std::min(options.max_batch, options.ctx),
          options.kv_dtype),
      workspace_(*model_, static_cast<size_t>(kv_.max_batch()), pool_->size()) {
  if (!model_->lora_merged())
    for (const LoraInfo& l : model_->loras()) lora_scales_.push_back(l.scale);
}

bool Context::set_lora_scale(size_t adapter, float scale) {
  OKO_CHECK(adapter < lora_scales_.size(), "adapter {} of {}", adapter, lora_scales_.size());
  if (lora_scales_[adapter] == scale) return false;
  lora_scales_[adapter] = scale;
  const bool dropped = position_ > 0;
  Reset();
  return dropped;
}

Result<std::unique_ptr<Context>> LoadContext(const std::string& dir, const EngineOptions& options) {
  OKO_ASSIGN_OR_RETURN(std::shared_ptr<const Model> model, Model::Load(dir, options));
  return Context::Create(std::move(model), std::make_shared<ThreadPool>(ResolveThreads(options.threads)),
                         options);
}

void Context::Reset() {
  position_ = 0;
  tokens_.clear();
}

bool Context::Rewind(int64_t n) {
  if (n > position_ || n < 0) return false;
  // The positions a query at n attends must not have been overwritten by those dropped.
  const int64_t window = kv_.window() - kv_.sink();
  const int64_t oldest_needed = std::max(kv_.sink(), n - window);
  if (position_ - 1 - oldest_needed >= kv_.ring()) return false;
  position_ = n;
  tokens_.resize(static_cast<size_t>(n));
  return true;
}

size_t Context::ReusePrefix(std::span<const int32_t> prompt) {
  size_t common = 0;
  while (common < tokens_.size() && common < prompt.size() && tokens_[common] == prompt[common])
    ++common;
  // At least one prompt token must run to produce logits.
  if (common == prompt.size() && common > 0) --common;
  if (!Rewind(static_cast<int64_t>(common))) {
    Reset();
    common = 0;
  }
  return common;
}

void Context::Forward(std::span<const int32_t> ids, Logits which, std::vector<float>* logits) {
  const int64_t V = config().vocab_size;
  for (int32_t id : ids) OKO_CHECK(id >= 0 && id < V, "token id {} outside [0, {})", id, V);
  if (logits != nullptr) logits->clear();
  const size_t chunk = static_cast<size_t>(kv_.max_batch());
  for (size_t begin = 0; begin < ids.size(); begin += chunk) {
    const size_t end = std::min(ids.size(), begin + chunk);
    const bool last = end == ids.size();
    const Segment s{this, ids.subspan(begin, end - begin),
                    which == Logits::kAll ? Logits::kAll : (last ? which : Logits::kNone)};
    ForwardPass::Run(*model_, *pool_, workspace_, {&s, 1}, profiler_, logits);
  }
}

void Context::LogitsOfHidden(const float* x, int64_t T, float* out) {
  model_->LogitsOfHidden(*pool_, x, T, out, lora_scales_);
}

}  // namespace oko
