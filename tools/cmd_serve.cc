// oko serve -m DIR|FILE.gguf [--host H] [--port P] [--parallel N] [--queue Q] [--api-key KEY]
// [engine and sampling flags]: the OpenAI-compatible HTTP server (docs/SERVER.md).
// Loopback only unless --host says otherwise; SIGINT / SIGTERM stop it cleanly.
#include <pthread.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <thread>

#include "common/limits.h"
#include "loaders/chat_template.h"
#include "tools/command.h"
#include "tools/engine_flags.h"
#include "tools/flags.h"
#include "tools/resources.h"
#include "tools/server.h"

namespace oko {
namespace {

struct ServeArgs {
  EngineFlags engine;
  SamplingFlags sampling;
  std::string host = "127.0.0.1";
  int64_t port = 8080;
  int64_t parallel = 4;
  int64_t queue = 64;
  std::string api_key;
};

bool IsLoopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.starts_with("127.");
}

// SIGINT and SIGTERM are blocked in every thread (set before any is created) and taken
// here, so that stopping runs as ordinary code, not in a signal handler.
std::thread StopOnSignal(ApiServer& server, const std::atomic<bool>& serving) {
  return std::thread([&server, &serving] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    const timespec tick{0, 200'000'000};
    while (serving.load()) {
      const int sig = sigtimedwait(&set, nullptr, &tick);
      if (sig == SIGINT || sig == SIGTERM) {
        std::fprintf(stderr, "oko serve: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        // Again until Serve returns: a stop that comes before the server runs is lost.
        while (serving.load()) {
          server.Stop();
          nanosleep(&tick, nullptr);
        }
        return;
      }
    }
  });
}

// OpenContext checks one context against the machine's memory; every slot has its own
// KV cache and buffers (exit 2, as for one).
Status CheckSlotsFit(const ServeArgs& a, const EngineOptions& options) {
  OKO_ASSIGN_OR_RETURN(const ModelConfig config, LoadModelConfig(a.engine.model_dir));
  const MemoryEstimate one = EstimateMemory(config, options);
  const uint64_t ram = PhysicalMemoryBytes();
  const uint64_t all = one.total() * static_cast<uint64_t>(a.parallel);
  if (ram == 0 || all <= ram) return {};
  return Errorf("--parallel {} slots of -c {} positions would need {} for their KV caches and buffers, more than "
                "this machine's {} of memory (lower --parallel or -c, or use --kv f16)",
                a.parallel, options.ctx, BytesAndHuman(all), BytesAndHuman(ram));
}

Status RunServe(const ServeArgs& a) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a client gone is a failed write, not the end of the server

  OKO_ASSIGN_OR_RETURN(EngineOptions options, a.engine.ToOptions());
  OKO_RETURN_IF_ERROR(CheckSlotsFit(a, options));
  OKO_ASSIGN_OR_RETURN(auto context, OpenContext(a.engine.model_dir, options, a.engine.CtxWhat()));
  OKO_ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::Load(a.engine.model_dir));
  if (tokenizer->vocab_size() > context->config().vocab_size)
    return Errorf("{}: the tokenizer has {} tokens, more than the model's vocab_size {}", a.engine.model_dir,
                  tokenizer->vocab_size(), context->config().vocab_size);
  std::optional<ChatTemplate> chat_template;
  if (auto t = ChatTemplate::LoadFromDir(a.engine.model_dir); t.ok()) {
    chat_template = std::move(t.value());
  } else {
    std::fprintf(stderr, "oko serve: no chat template (%s): /v1/chat/completions will refuse, /v1/completions works\n",
                 t.status().message().c_str());
  }
  SchedulerOptions so;
  so.slots = static_cast<size_t>(a.parallel);
  so.max_queue = static_cast<size_t>(a.queue);
  OKO_ASSIGN_OR_RETURN(auto scheduler, BatchScheduler::Create(std::move(context), so));
  const int64_t slot_context = scheduler->slot_context();

  ServerOptions server_options;
  server_options.host = a.host;
  server_options.port = static_cast<int>(a.port);
  server_options.api_key = a.api_key;
  server_options.model_name = a.engine.ModelName();
  server_options.sampling = a.sampling;
  ApiServer server(std::move(scheduler), std::move(tokenizer), std::move(chat_template), server_options);
  OKO_ASSIGN_OR_RETURN(const int port, server.Bind());
  if (!IsLoopback(a.host) && a.api_key.empty())
    std::fprintf(stderr, "oko serve: warning: listening on %s without --api-key: anyone who can reach it can use it\n",
                 a.host.c_str());
  std::fprintf(stderr, "oko serve: listening on http://%s:%d (%lld slots of %lld positions); chat page: http://%s:%d/\n",
               a.host.c_str(), port, static_cast<long long>(a.parallel), static_cast<long long>(slot_context),
               a.host.c_str(), port);
  std::atomic<bool> serving{true};
  std::thread watcher = StopOnSignal(server, serving);
  server.Serve();
  serving.store(false);
  watcher.join();
  return {};
}

}  // namespace

Subcommand AddServeCommand(CLI::App& root) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* app = root.add_subcommand("serve", "Serve the model over an OpenAI-compatible HTTP API");
  a->engine.Add(app);
  a->sampling.Add(app);
  app->add_option("--host", a->host, "address to listen on (default: 127.0.0.1, this machine only)");
  AddIntFlag(app, "--port", &a->port, {0, 65535}, "TCP port, 0: any free one (default: 8080)");
  AddIntFlag(app, "--parallel", &a->parallel, {1, kMaxServerSlots},
             "sequences decoded together, each with its own KV cache of -c positions (default: 4)");
  AddIntFlag(app, "--queue", &a->queue, {0, kMaxServerQueue},
             "requests that may wait for a slot; past it: 503 (default: 64)");
  app->add_option("--api-key", a->api_key,
                  "require 'Authorization: Bearer KEY' on every endpoint but /health and the page / (default: none)");
  AddExamples(app, {"oko serve -m ../shared/models/tiny-qwen3",
                    "oko serve -m DIR --port 8081 --parallel 8 -c 2048",
                    "oko serve -m DIR --host 0.0.0.0 --api-key secret"});
  return {app, [a]() { return RunServe(*a); }};
}

}  // namespace oko
