// ApiServer: the OpenAI-compatible HTTP server of `oko serve` (docs/SERVER.md). HTTP and
// JSON live here; the batching of sequences is the engine's BatchScheduler. Requests are
// parsed and tokenized on the HTTP threads, their tokens decoded into text on the
// scheduler's thread (so that a stop sequence ends the sequence at once), and written
// out by the request's HTTP thread.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "engine/batch_scheduler.h"
#include "loaders/chat_template.h"
#include "loaders/tokenizer.h"
#include "tools/engine_flags.h"

namespace httplib {
class Server;
}

namespace oko {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;         // 0: any free port (Bind returns it)
  std::string api_key;     // "": no authentication
  std::string model_name;  // the id /v1/models lists
  SamplingFlags sampling;  // the defaults of requests that do not set a field
};

class ApiServer {
 public:
  // `chat_template` unset: /v1/chat/completions refuses (the model is a base model).
  ApiServer(std::unique_ptr<BatchScheduler> scheduler, std::unique_ptr<Tokenizer> tokenizer,
            std::optional<ChatTemplate> chat_template, ServerOptions options);
  ~ApiServer();

  // Binds the socket; returns the port.
  Result<int> Bind();
  // Serves until Stop() (from any thread).
  void Serve();
  // In-flight requests end with an error (a stream: an error event), new ones are
  // refused, and Serve returns.
  void Stop();

  struct State;  // what the handlers share (server.cc)

 private:
  std::unique_ptr<State> state_;
  std::unique_ptr<httplib::Server> http_;
  int listen_socket_ = -1;  // set by Bind
};

}  // namespace oko
