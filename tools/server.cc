#include "tools/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/limits.h"
#include "engine/chat_session.h"
#include "tools/attention_stream.h"
#include "tools/flags.h"
#include "tools/reply_stream.h"
#include "tools/request_connection.h"
#include "tools/trace_html.h"

namespace oko {

using json = nlohmann::ordered_json;

namespace {

// How often a request waiting for its tokens looks whether its client is still there (a
// poll() of its socket: ~1 us). A client gone frees its slot within this, plus one step.
constexpr auto kClientCheckInterval = std::chrono::milliseconds(10);

// An OpenAI-style error: {"error": {"message", "type", "param", "code"}} with its status.
struct ApiError {
  ApiError(int status, std::string message, std::string param = "", std::string code = "")
      : status(status), message(std::move(message)), param(std::move(param)), code(std::move(code)) {}
  int status;
  std::string message;
  std::string param;  // the request field at fault, "" if none
  std::string code;   // "" or a machine-readable name (context_length_exceeded, ...)
};

std::string ErrorType(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 503: return "service_unavailable_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

json ErrorJson(const ApiError& e) {
  json error = {{"message", e.message}, {"type", ErrorType(e.status)}};
  error["param"] = e.param.empty() ? json(nullptr) : json(e.param);
  error["code"] = e.code.empty() ? json(nullptr) : json(e.code);
  return json{{"error", error}};
}

void SendJson(httplib::Response& res, const json& body, int status = 200) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void SendError(httplib::Response& res, const ApiError& e) { SendJson(res, ErrorJson(e), e.status); }

// ---- Request fields: each getter checks the type and range and names the field. ----

ApiError BadField(const std::string& field, const std::string& what) {
  return ApiError{400, fmt::format("'{}' {}", field, what), field};
}

bool Absent(const json& body, const std::string& field) { return !body.contains(field) || body[field].is_null(); }

// Each getter leaves *out as it is when the field is absent or null, and returns the
// error of a value of the wrong type or out of range.
std::optional<ApiError> GetNumber(const json& body, const std::string& field, double min, double max, float* out) {
  if (Absent(body, field)) return std::nullopt;
  const json& v = body[field];
  if (!v.is_number()) return BadField(field, "must be a number");
  if (v.get<double>() < min || v.get<double>() > max)
    return BadField(field, fmt::format("must be in [{}, {}], got {}", min, max, v.dump()));
  *out = static_cast<float>(v.get<double>());
  return std::nullopt;
}

std::optional<ApiError> GetInt(const json& body, const std::string& field, int64_t min, int64_t max,
                               std::optional<int64_t>* out) {
  if (Absent(body, field)) return std::nullopt;
  const json& v = body[field];
  if (!v.is_number_integer()) return BadField(field, "must be an integer");
  // A value past int64 is unsigned in nlohmann: compare it as such.
  const bool in_range = v.is_number_unsigned()
                            ? v.get<uint64_t>() <= static_cast<uint64_t>(max) && v.get<int64_t>() >= min
                            : v.get<int64_t>() >= min && v.get<int64_t>() <= max;
  if (!in_range) return BadField(field, fmt::format("must be in [{}, {}], got {}", min, max, v.dump()));
  *out = v.get<int64_t>();
  return std::nullopt;
}

std::optional<ApiError> GetBool(const json& body, const std::string& field, bool* out) {
  if (Absent(body, field)) return std::nullopt;
  if (!body[field].is_boolean()) return BadField(field, "must be true or false");
  *out = body[field].get<bool>();
  return std::nullopt;
}

// A nested object's field error named by its path ('oko.attention.layer').
ApiError Nested(const std::string& path, const ApiError& e) {
  return ApiError{e.status, fmt::format("'{}.{}'{}", path, e.param, e.message.substr(e.param.size() + 2)),
                  path + "." + e.param};
}

std::optional<ApiError> OnlyFields(const json& object, const std::string& path, std::initializer_list<const char*> known) {
  for (const auto& [key, value] : object.items())
    if (std::find_if(known.begin(), known.end(), [&](const char* k) { return key == k; }) == known.end())
      return BadField(path + "." + key, fmt::format("is not a field oko knows (it has: {})", fmt::join(known, ", ")));
  return std::nullopt;
}

// oko's own request fields: {"oko": {"attention": {"layer": L, "head": H}}} records where
// the answer looks (tools/attention_stream.h).
std::optional<ApiError> ParseOkoFields(const json& body, const ModelConfig& config,
                                       std::optional<AttentionRequest>* attention) {
  if (Absent(body, "oko")) return std::nullopt;
  const json& oko = body["oko"];
  if (!oko.is_object()) return BadField("oko", "must be an object");
  if (auto e = OnlyFields(oko, "oko", {"attention"})) return e;
  if (Absent(oko, "attention")) return std::nullopt;
  const json& a = oko["attention"];
  if (!a.is_object()) return BadField("oko.attention", "must be an object {\"layer\": L, \"head\": H}");
  if (auto e = OnlyFields(a, "oko.attention", {"layer", "head"})) return e;
  std::optional<int64_t> layer, head;
  if (auto e = GetInt(a, "layer", -1, config.num_layers - 1, &layer)) return Nested("oko.attention", *e);
  if (auto e = GetInt(a, "head", -1, config.num_heads - 1, &head)) return Nested("oko.attention", *e);
  *attention = AttentionRequest{layer.value_or(-1), head.value_or(-1)};
  return std::nullopt;
}

enum class Api { kChat, kCompletion };

// What every generating request shares: sampling, budget, stop sequences, streaming.
struct GenerationParams {
  SamplerOptions sampling;
  std::optional<int64_t> max_tokens;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;
  int top_logprobs = -1;  // -1: no logprobs (SequenceRequest::top_logprobs)
};

// Chat: "logprobs": true with "top_logprobs": 0..20. Text completions: "logprobs": 0..5
// (the alternatives; the chosen token's own comes with them).
std::optional<ApiError> ParseLogprobs(Api api, const json& body, int* top) {
  std::optional<int64_t> n;
  if (api == Api::kCompletion) {
    if (auto e = GetInt(body, "logprobs", 0, kMaxCompletionLogprobs, &n)) return e;
  } else {
    bool wanted = false;
    if (auto e = GetBool(body, "logprobs", &wanted)) return e;
    if (auto e = GetInt(body, "top_logprobs", 0, kMaxTopLogprobs, &n)) return e;
    if (n && !wanted) return BadField("top_logprobs", "needs \"logprobs\": true");
    if (wanted && !n) n = 0;
  }
  *top = n ? static_cast<int>(*n) : -1;
  return std::nullopt;
}

// Fills `p` from the request; an error names the field.
std::optional<ApiError> ParseGenerationParams(const json& body, const SamplingFlags& defaults,
                                              const GenerationDefaults& model_defaults, GenerationParams* p) {
  p->sampling = defaults.Resolve(model_defaults);
  SamplerOptions& o = p->sampling;
  std::optional<int64_t> top_k, n;
  for (auto e : {GetNumber(body, "temperature", 0, 2, &o.temperature), GetNumber(body, "top_p", 0, 1, &o.top_p),
                 GetNumber(body, "min_p", 0, 1, &o.min_p),
                 GetNumber(body, "presence_penalty", -2, 2, &o.presence_penalty),
                 GetNumber(body, "frequency_penalty", -2, 2, &o.frequency_penalty),
                 GetNumber(body, "repetition_penalty", 0.01, 100, &o.repetition_penalty),
                 GetInt(body, "top_k", 0, kMaxTokenCount, &top_k), GetInt(body, "n", 1, kMaxTokenCount, &n),
                 GetInt(body, "max_tokens", 1, kMaxTokenCount, &p->max_tokens),
                 GetInt(body, "max_completion_tokens", 1, kMaxTokenCount, &p->max_tokens),
                 GetBool(body, "stream", &p->stream)})
    if (e) return e;
  if (o.top_p <= 0) return BadField("top_p", "must be in (0, 1]");
  if (top_k) o.top_k = *top_k;
  if (!Absent(body, "seed")) {
    if (!body["seed"].is_number_integer()) return BadField("seed", "must be an integer");
    o.seed = body["seed"].is_number_unsigned() ? body["seed"].get<uint64_t>()
                                               : static_cast<uint64_t>(body["seed"].get<int64_t>());
  }
  if (n.value_or(1) != 1) return ApiError{422, "'n' must be 1: oko returns one choice per request", "n"};
  if (!Absent(body, "stream_options")) {
    if (!body["stream_options"].is_object()) return BadField("stream_options", "must be an object");
    if (auto e = GetBool(body["stream_options"], "include_usage", &p->include_usage)) return e;
  }
  if (!Absent(body, "stop")) {
    const json& s = body["stop"];
    if (s.is_string()) {
      p->stop.push_back(s.get<std::string>());
    } else if (s.is_array() && s.size() <= kMaxStopSequences) {
      for (const json& x : s) {
        if (!x.is_string()) return BadField("stop", "must be a string or a list of strings");
        p->stop.push_back(x.get<std::string>());
      }
    } else {
      return BadField("stop", fmt::format("must be a string or a list of at most {} strings", kMaxStopSequences));
    }
    for (const std::string& x : p->stop)
      if (x.empty()) return BadField("stop", "must not hold an empty string");
  }
  return std::nullopt;
}

// ---- The reply: ids to text on the scheduler's thread, handed to the HTTP thread. ----

// One request's reply as it is produced; shared by the scheduler's callbacks and the
// HTTP thread that writes the response.
struct Reply {
  std::mutex mu;
  std::condition_variable changed;
  std::vector<ReplyPiece> pieces;  // not yet written
  json logprobs = json::array();   // entries of tokens not yet written (when asked for)
  json attention;                  // attention rows not yet written (when asked for)
  std::optional<SequenceResult> result;
  bool stopped_by_sequence = false;  // a stop sequence ended it
  std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);

  // `rows`: an AttentionStream batch, or null.
  void Add(std::vector<ReplyPiece>* more, json entry = nullptr, json rows = nullptr) {
    if (more->empty() && entry.is_null() && rows.is_null()) return;
    {
      std::lock_guard lock(mu);
      for (ReplyPiece& p : *more) pieces.push_back(std::move(p));
      if (!entry.is_null()) logprobs.push_back(std::move(entry));
      if (attention.is_null()) {
        attention = std::move(rows);
      } else if (!rows.is_null()) {
        for (json& r : rows["rows"]) attention["rows"].push_back(std::move(r));
      }
    }
    // Only text wakes the writer: entries and rows ride on the next chunk written.
    if (!more->empty()) changed.notify_all();
  }
};

// A stop sequence may also complete only when the last pieces are flushed, after the
// token budget ended the sequence: it is still a stop.
std::string FinishReasonName(const SequenceResult& r, bool by_sequence) {
  return r.reason == FinishReason::kLength && !by_sequence ? "length" : "stop";
}

int64_t UnixTime() { return static_cast<int64_t>(std::time(nullptr)); }

}  // namespace

// ---- The server's state: what the handlers share. ----

struct ApiServer::State {
  std::unique_ptr<BatchScheduler> scheduler;
  std::unique_ptr<Tokenizer> tokenizer;
  std::optional<ChatTemplate> chat_template;
  ServerOptions options;
  std::vector<int32_t> stop_ids;
  int64_t created = UnixTime();
  std::atomic<int64_t> next_id{1};
  std::atomic<int64_t> requests{0}, errors{0}, rejected{0};
  std::string chat_page;  // GET /

  int64_t vocab() const { return scheduler->model().config().vocab_size; }
  std::string NewId(const char* prefix) { return fmt::format("{}-{}", prefix, next_id++); }
};

namespace {

using State = ApiServer::State;

// A prompt ready to run, or why not.
struct PreparedPrompt {
  std::vector<int32_t> ids;
  bool start_thinking = false;
};

std::optional<ApiError> CheckPromptIds(const State& s, const std::vector<int32_t>& ids, const std::string& param) {
  if (ids.empty()) return ApiError{400, "the prompt has no tokens", param};
  for (int32_t id : ids)
    if (id < 0 || id >= s.vocab())
      return ApiError{400, fmt::format("token id {} is outside the vocabulary [0, {})", id, s.vocab()), param};
  if (static_cast<int64_t>(ids.size()) >= s.scheduler->slot_context())
    return ApiError{422,
                    fmt::format("the prompt has {} tokens; a slot's context holds {} (oko serve -c), leaving no room "
                                "to generate",
                                ids.size(), s.scheduler->slot_context()),
                    param, "context_length_exceeded"};
  return std::nullopt;
}

// A message's content: a string, null, or a list of {"type": "text", "text"} parts.
std::optional<ApiError> MessageText(const json& content, size_t index, std::string* out) {
  const std::string param = fmt::format("messages[{}].content", index);
  if (content.is_null()) return std::nullopt;
  if (content.is_string()) {
    *out = content.get<std::string>();
    return std::nullopt;
  }
  if (!content.is_array()) return BadField(param, "must be a string or a list of text parts");
  for (const json& part : content) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
      return BadField(param, "parts must be {\"type\": \"text\", \"text\": STRING} (oko reads text only)");
    *out += part["text"].get<std::string>();
  }
  return std::nullopt;
}

std::optional<ApiError> ChatPrompt(const State& s, const json& body, PreparedPrompt* prompt) {
  if (!s.chat_template)
    return ApiError{422, "this model has no chat template: use /v1/completions", "messages"};
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
    return BadField("messages", "must be a non-empty list of messages");
  json messages = json::array();
  for (size_t i = 0; i < body["messages"].size(); ++i) {
    const json& m = body["messages"][i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      return BadField(fmt::format("messages[{}]", i), "must be an object with a string 'role'");
    std::string role = m["role"].get<std::string>();
    if (role == "developer") role = "system";  // OpenAI's newer name for it
    if (role != "system" && role != "user" && role != "assistant")
      return BadField(fmt::format("messages[{}].role", i),
                      fmt::format("must be system, developer, user or assistant, got '{}'", role));
    std::string text;
    if (auto e = MessageText(m.contains("content") ? m["content"] : json(nullptr), i, &text)) return e;
    messages.push_back(json{{"role", role}, {"content", text}});
  }
  json variables = json::object();
  if (body.contains("chat_template_kwargs")) {
    if (!body["chat_template_kwargs"].is_object()) return BadField("chat_template_kwargs", "must be an object");
    variables = body["chat_template_kwargs"];
  }
  variables["messages"] = messages;
  variables["add_generation_prompt"] = true;
  auto rendered = s.chat_template->Render(variables);
  if (!rendered.ok()) return ApiError{400, fmt::format("the chat template: {}", rendered.status().message()), "messages"};
  prompt->start_thinking = PromptOpensThinking(*rendered);
  // A rendered template holds its BOS and role tokens already.
  auto ids = s.tokenizer->Encode(*rendered, /*add_special_tokens=*/false);
  if (!ids.ok()) return ApiError{400, ids.status().message(), "messages"};
  prompt->ids = std::move(ids).value();
  return CheckPromptIds(s, prompt->ids, "messages");
}

// "prompt": a string, a list of token ids, or a list holding one of those.
std::optional<ApiError> CompletionPrompt(const State& s, const json& body, PreparedPrompt* prompt) {
  if (!body.contains("prompt")) return BadField("prompt", "is required");
  json p = body["prompt"];
  if (p.is_array() && p.size() == 1 && (p[0].is_string() || p[0].is_array())) p = json(p[0]);
  if (p.is_string()) {
    auto ids = s.tokenizer->Encode(p.get<std::string>(), /*add_special_tokens=*/true);
    if (!ids.ok()) return ApiError{400, ids.status().message(), "prompt"};
    prompt->ids = std::move(ids).value();
  } else if (p.is_array()) {
    for (const json& id : p) {
      if (!id.is_number_integer() || id.get<int64_t>() < INT32_MIN || id.get<int64_t>() > INT32_MAX)
        return BadField("prompt", "must be a string, a list of token ids, or a list of one of those");
      prompt->ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
  } else {
    return BadField("prompt", "must be a string, a list of token ids, or a list of one of those");
  }
  return CheckPromptIds(s, prompt->ids, "prompt");
}

// Parses the body as a JSON object.
std::optional<ApiError> ParseBody(const httplib::Request& req, json* body) {
  *body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body->is_discarded())
    return ApiError{400, "the body is not valid JSON (or its strings are not valid UTF-8)"};
  if (!body->is_object()) return ApiError{400, "the body must be a JSON object"};
  return std::nullopt;
}

// The JSON objects of one response, as OpenAI shapes them.
class ResponseShape {
 public:
  ResponseShape(Api api, std::string id, std::string model)
      : api_(api), id_(std::move(id)), model_(std::move(model)), created_(UnixTime()) {}

  json Chunk(const json& choice) const {
    return json{{"id", id_}, {"object", api_ == Api::kChat ? "chat.completion.chunk" : "text_completion"},
                {"created", created_}, {"model", model_}, {"choices", json::array({choice})}};
  }
  // `logprobs`: null when not asked for, else the entries (LogprobEntry) of this chunk.
  json DeltaChoice(const json& delta, const json& finish, const json& logprobs) const {
    if (api_ == Api::kChat)
      return json{{"index", 0}, {"delta", delta}, {"logprobs", Logprobs(logprobs)}, {"finish_reason", finish}};
    return json{{"index", 0}, {"text", delta.value("content", "")}, {"logprobs", Logprobs(logprobs)},
                {"finish_reason", finish}};
  }
  // A choice's "logprobs" from chat-shaped entries: chat keeps them, text completions
  // have the older column-wise shape.
  json Logprobs(const json& entries) const {
    if (entries.is_null()) return nullptr;
    if (api_ == Api::kChat) return json{{"content", entries}, {"refusal", nullptr}};
    json tokens = json::array(), logprobs = json::array(), top = json::array();
    for (const json& e : entries) {
      tokens.push_back(e["token"]);
      logprobs.push_back(e["logprob"]);
      json alternatives = json::object();
      for (const json& t : e["top_logprobs"]) alternatives[t["token"].get<std::string>()] = t["logprob"];
      top.push_back(alternatives);
    }
    return json{{"tokens", tokens}, {"token_logprobs", logprobs}, {"top_logprobs", top}};
  }
  json Delta(const ReplyPiece& p) const {
    return json{{p.channel == ReplyChannel::kThinking ? "reasoning_content" : "content", p.text}};
  }
  json Usage(const SequenceResult& r) const {
    return json{{"prompt_tokens", r.prompt_tokens}, {"completion_tokens", r.generated_tokens},
                {"total_tokens", r.prompt_tokens + r.generated_tokens},
                {"prompt_tokens_details", {{"cached_tokens", r.prompt_tokens - r.prefilled_tokens}}}};
  }
  json UsageChunk(const SequenceResult& r) const {
    json c = Chunk(json());
    c["choices"] = json::array();
    c["usage"] = Usage(r);
    return c;
  }
  json Whole(const std::string& content, const std::string& reasoning, const std::string& finish,
             const json& logprobs, const SequenceResult& r) const {
    json choice = {{"index", 0}};
    if (api_ == Api::kChat) {
      json message = {{"role", "assistant"}, {"content", content}};
      if (!reasoning.empty()) message["reasoning_content"] = reasoning;
      choice["message"] = message;
    } else {
      choice["text"] = content;
    }
    choice["logprobs"] = Logprobs(logprobs);
    choice["finish_reason"] = finish;
    return json{{"id", id_}, {"object", api_ == Api::kChat ? "chat.completion" : "text_completion"},
                {"created", created_}, {"model", model_}, {"choices", json::array({choice})}, {"usage", Usage(r)}};
  }

 private:
  Api api_;
  std::string id_, model_;
  int64_t created_;
};

ApiError ShutdownError() { return ApiError{503, "the server is shutting down", "", "shutting_down"}; }

std::string Event(const json& data) { return "data: " + data.dump() + "\n\n"; }

// One token's entry as chat completions shape it: its text (U+FFFD for a token that ends
// inside a character), log-probability, the bytes it stands for (there, its part of the
// character's UTF-8), and the alternatives.
json LogprobEntry(const Tokenizer& tokenizer, const SampledToken& token) {
  auto entry = [&](const TokenLogprob& l) {
    const std::string text = tokenizer.DecodePiece(l.id);
    json bytes = json::array();
    for (unsigned char c : tokenizer.PieceBytes(l.id)) bytes.push_back(c);
    return json{{"token", text}, {"logprob", l.logprob}, {"bytes", bytes}};
  };
  json e = entry(*token.logprob);
  e["top_logprobs"] = json::array();
  for (const TokenLogprob& l : token.top) e["top_logprobs"].push_back(entry(l));
  return e;
}

// Runs one generating request: submits it, then writes the reply whole or as a stream.
void Generate(State& s, Api api, const httplib::Request& req, const json& body, httplib::Response& res) {
  PreparedPrompt prompt;
  if (auto e = api == Api::kChat ? ChatPrompt(s, body, &prompt) : CompletionPrompt(s, body, &prompt))
    return SendError(res, *e);
  GenerationParams params;
  if (auto e = ParseGenerationParams(body, s.options.sampling, s.scheduler->model().config().generation, &params))
    return SendError(res, *e);
  if (auto e = ParseLogprobs(api, body, &params.top_logprobs)) return SendError(res, *e);
  const bool with_logprobs = params.top_logprobs >= 0;
  std::optional<AttentionRequest> attention_request;
  if (auto e = ParseOkoFields(body, s.scheduler->model().config(), &attention_request)) return SendError(res, *e);
  std::shared_ptr<AttentionStream> attention;
  if (attention_request)
    attention = std::make_shared<AttentionStream>(s.scheduler->model().config(), *attention_request, prompt.ids,
                                                  *s.tokenizer);

  auto reply = std::make_shared<Reply>();
  const RequestConnection connection(req);
  auto decoder = std::make_shared<ReplyStream>(*s.tokenizer, prompt.start_thinking, params.stop);
  SequenceRequest request;
  request.prompt = std::move(prompt.ids);
  request.sampling = params.sampling;
  request.max_new_tokens = params.max_tokens.value_or(kMaxTokenCount);
  request.stop_ids = s.stop_ids;
  request.cancel = reply->cancel;
  request.top_logprobs = params.top_logprobs;
  if (attention) request.trace = attention->sink();
  request.on_token = [reply, decoder, attention, tokenizer = s.tokenizer.get()](const SampledToken& token) {
    std::vector<ReplyPiece> pieces;
    const bool go_on = decoder->Push(token.id, &pieces);
    reply->Add(&pieces, token.logprob ? LogprobEntry(*tokenizer, token) : json(nullptr),
               attention ? attention->TakeRows(token.id) : json(nullptr));
    return go_on;
  };
  request.on_done = [reply, decoder, attention](const SequenceResult& r) {
    std::vector<ReplyPiece> pieces;
    if (r.reason != FinishReason::kShutdown) decoder->Finish(&pieces);
    // The row that chose a stop id (no on_token for it), if any.
    reply->Add(&pieces, nullptr,
               attention && r.reason != FinishReason::kShutdown ? attention->TakeRows(std::nullopt) : json(nullptr));
    {
      std::lock_guard lock(reply->mu);
      reply->stopped_by_sequence = decoder->stopped();
      reply->result = r;
    }
    reply->changed.notify_all();
  };
  // A client gone already (it sent and left): the scheduler drops the request unrun.
  if (connection.ClientGone()) reply->cancel->store(true);
  switch (s.scheduler->Submit(std::move(request))) {
    case BatchScheduler::Admission::kQueued: break;
    case BatchScheduler::Admission::kShutDown: return SendError(res, ShutdownError());
    case BatchScheduler::Admission::kFull:
      ++s.rejected;
      res.set_header("Retry-After", "1");
      return SendError(res, ApiError{503, "every slot is busy and the queue is full: retry later", "", "overloaded"});
  }

  const ResponseShape shape(api, s.NewId(api == Api::kChat ? "chatcmpl" : "cmpl"), s.options.model_name);
  if (!params.stream) {
    std::unique_lock lock(reply->mu);
    while (!reply->changed.wait_for(lock, kClientCheckInterval, [&] { return reply->result.has_value(); }))
      if (connection.ClientGone()) reply->cancel->store(true);  // its sequence ends at the next step
    if (reply->result->reason == FinishReason::kShutdown) return SendError(res, ShutdownError());
    std::string content, reasoning;
    for (const ReplyPiece& p : reply->pieces) (p.channel == ReplyChannel::kThinking ? reasoning : content) += p.text;
    json whole = shape.Whole(content, reasoning, FinishReasonName(*reply->result, reply->stopped_by_sequence),
                             with_logprobs ? reply->logprobs : json(nullptr), *reply->result);
    if (attention) whole["oko"] = {{"attention", reply->attention}};
    return SendJson(res, whole);
  }

  res.set_header("Cache-Control", "no-cache");
  auto sent_role = std::make_shared<bool>(api != Api::kChat);
  const bool include_usage = params.include_usage;
  res.set_chunked_content_provider(
      "text/event-stream",
      [reply, shape, sent_role, include_usage, with_logprobs, connection](size_t, httplib::DataSink& sink) {
        std::vector<ReplyPiece> pieces;
        json entries;  // logprobs: they ride on the first chunk written next
        json rows;     // attention rows: the same
        std::optional<SequenceResult> result;
        bool by_sequence = false;
        {
          std::unique_lock lock(reply->mu);
          // A client gone while nothing is written (queued, or prefilling): the same.
          while (!reply->changed.wait_for(lock, kClientCheckInterval,
                                          [&] { return !reply->pieces.empty() || reply->result.has_value(); })) {
            if (connection.ClientGone()) {
              reply->cancel->store(true);
              return false;
            }
          }
          pieces = std::exchange(reply->pieces, {});
          if (with_logprobs) entries = std::exchange(reply->logprobs, json::array());
          rows = std::exchange(reply->attention, nullptr);
          if (pieces.empty()) result = reply->result;  // every piece is written before the end
          by_sequence = reply->stopped_by_sequence;
        }
        auto take_entries = [&] { return std::exchange(entries, with_logprobs ? json::array() : json(nullptr)); };
        auto with_rows = [&](json chunk) {
          if (!rows.is_null()) chunk["oko"] = {{"attention", std::exchange(rows, nullptr)}};
          return chunk;
        };
        std::string out;
        if (!*sent_role) {
          out += Event(shape.Chunk(shape.DeltaChoice(json{{"role", "assistant"}, {"content", ""}}, nullptr, nullptr)));
          *sent_role = true;
        }
        for (const ReplyPiece& p : pieces)
          out += Event(with_rows(shape.Chunk(shape.DeltaChoice(shape.Delta(p), nullptr, take_entries()))));
        if (result && result->reason == FinishReason::kShutdown) {
          out += Event(ErrorJson(ShutdownError()));
        } else if (result) {
          out += Event(with_rows(
              shape.Chunk(shape.DeltaChoice(json::object(), FinishReasonName(*result, by_sequence), take_entries()))));
          if (include_usage) out += Event(shape.UsageChunk(*result));
          out += "data: [DONE]\n\n";
        }
        // A client gone: its sequence ends at the next step, freeing the slot.
        if (!sink.write(out.data(), out.size())) {
          reply->cancel->store(true);
          return false;
        }
        if (result) sink.done();
        return true;
      },
      [reply](bool success) {
        if (!success) reply->cancel->store(true);
      });
}

std::string Metrics(const State& s) {
  const SchedulerStats st = s.scheduler->stats();
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, double value) {
    out += fmt::format("# HELP oko_{0} {1}\n# TYPE oko_{0} {2}\noko_{0} {3}\n", name, help, type, value);
  };
  metric("requests_total", "counter", "HTTP requests received", s.requests.load());
  metric("request_errors_total", "counter", "requests answered with an error status", s.errors.load());
  metric("requests_rejected_total", "counter", "requests refused because the queue was full", s.rejected.load());
  metric("sequences_done_total", "counter", "generations finished", st.sequences_done);
  metric("sequences_cancelled_total", "counter", "generations ended early because their client left",
         st.sequences_cancelled);
  metric("prompt_tokens_total", "counter", "prompt tokens of finished generations", st.prompt_tokens);
  metric("prefilled_tokens_total", "counter", "prompt tokens computed (the rest came from a slot's cache)",
         st.prefilled_tokens);
  metric("generated_tokens_total", "counter", "tokens generated", st.generated_tokens);
  metric("decode_steps_total", "counter", "batched decode steps", st.decode_steps);
  metric("busy_seconds_total", "counter", "seconds spent prefilling and decoding", st.busy_seconds);
  metric("tokens_per_second", "gauge", "generated tokens per busy second since the start",
         st.busy_seconds > 0 ? st.generated_tokens / st.busy_seconds : 0.0);
  metric("slots", "gauge", "sequences that can decode together (--parallel)", static_cast<double>(s.scheduler->slots()));
  metric("slots_active", "gauge", "slots running a sequence", static_cast<double>(st.active));
  metric("queue_length", "gauge", "requests waiting for a slot", static_cast<double>(st.queued));
  metric("kv_positions_used", "gauge", "positions held in the slots' KV caches", static_cast<double>(st.kv_positions));
  metric("kv_positions_capacity", "gauge", "positions the slots' KV caches can hold", static_cast<double>(st.kv_capacity));
  return out;
}

void Tokenize(const State& s, const json& body, httplib::Response& res) {
  if (!body.contains("content") || !body["content"].is_string()) return SendError(res, BadField("content", "must be a string"));
  bool add_special = false;
  if (auto e = GetBool(body, "add_special", &add_special)) return SendError(res, *e);
  auto ids = s.tokenizer->Encode(body["content"].get<std::string>(), add_special);
  if (!ids.ok()) return SendError(res, ApiError{400, ids.status().message(), "content"});
  SendJson(res, json{{"tokens", *ids}});
}

void Detokenize(const State& s, const json& body, httplib::Response& res) {
  if (!body.contains("tokens") || !body["tokens"].is_array()) return SendError(res, BadField("tokens", "must be a list of token ids"));
  std::vector<int32_t> ids;
  for (const json& id : body["tokens"]) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= s.vocab())
      return SendError(res, BadField("tokens", fmt::format("must hold token ids in [0, {}), got {}", s.vocab(), id.dump())));
    ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  SendJson(res, json{{"content", s.tokenizer->Decode(ids)}});
}

// Wraps a handler that takes the parsed JSON body.
httplib::Server::Handler WithBody(
    std::function<void(const httplib::Request&, const json&, httplib::Response&)> handler) {
  return [handler](const httplib::Request& req, httplib::Response& res) {
    json body;
    if (auto e = ParseBody(req, &body)) return SendError(res, *e);
    handler(req, body, res);
  };
}

}  // namespace

ApiServer::ApiServer(std::unique_ptr<BatchScheduler> scheduler, std::unique_ptr<Tokenizer> tokenizer,
                     std::optional<ChatTemplate> chat_template, ServerOptions options)
    : state_(std::make_unique<State>()), http_(std::make_unique<httplib::Server>()) {
  State& s = *state_;
  s.scheduler = std::move(scheduler);
  s.tokenizer = std::move(tokenizer);
  s.chat_template = std::move(chat_template);
  s.options = std::move(options);
  s.stop_ids = ChatStopIds(s.scheduler->model().config(), *s.tokenizer, s.chat_template ? &*s.chat_template : nullptr);
  const ModelConfig& config = s.scheduler->model().config();
  s.chat_page = RenderChatPage({s.options.model_name, config.num_layers, config.num_heads, s.chat_template.has_value()});

  httplib::Server& h = *http_;
  // A thread per connection being served: every slot and queue place may hold one, plus
  // a few for /health and /metrics while all are busy. Past 512, connections wait for a
  // thread (in cpp-httplib's own queue) before their request is read.
  const size_t threads = std::min<size_t>(s.scheduler->slots() + s.scheduler->max_queue() + 4, 512);
  h.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  h.set_payload_max_length(kMaxRequestBodyBytes);
  h.set_pre_routing_handler([&s](const httplib::Request& req, httplib::Response& res) {
    ++s.requests;
    // The page holds nothing secret; its requests send the key typed into it.
    if (s.options.api_key.empty() || req.path == "/health" || (req.method == "GET" && req.path == "/"))
      return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") == "Bearer " + s.options.api_key)
      return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("Connection", "close");  // its body is left unread
    SendError(res, ApiError{401, "missing or wrong API key (send 'Authorization: Bearer KEY')", "", "invalid_api_key"});
    return httplib::Server::HandlerResponse::Handled;
  });
  h.set_post_routing_handler([&s](const httplib::Request&, httplib::Response& res) {
    if (res.status >= 400) ++s.errors;
  });
  // Statuses httplib sets itself (404, 413, 400 for a bad request line) get an OpenAI body too.
  h.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = fmt::format("HTTP {}", res.status);
    if (res.status == 404) message = fmt::format("no such endpoint: {} {}", req.method, req.path);
    if (res.status == 413) {
      message = fmt::format("the body is larger than {} bytes", kMaxRequestBodyBytes);
      res.set_header("Connection", "close");  // the body is left unread
    }
    SendError(res, ApiError{res.status, message});
  });
  h.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    SendError(res, ApiError{500, "internal error"});
  });

  h.Get("/", [&s](const httplib::Request&, httplib::Response& res) {
    res.set_content(s.chat_page, "text/html; charset=utf-8");
  });
  h.Get("/health", [](const httplib::Request&, httplib::Response& res) { SendJson(res, json{{"status", "ok"}}); });
  h.Get("/metrics", [&s](const httplib::Request&, httplib::Response& res) {
    res.set_content(Metrics(s), "text/plain; version=0.0.4");
  });
  h.Get("/v1/models", [&s](const httplib::Request&, httplib::Response& res) {
    SendJson(res, json{{"object", "list"},
                       {"data", json::array({json{{"id", s.options.model_name}, {"object", "model"},
                                                  {"created", s.created}, {"owned_by", "oko"}}})}});
  });
  h.Post("/v1/chat/completions", WithBody([&s](const httplib::Request& q, const json& b, httplib::Response& r) {
           Generate(s, Api::kChat, q, b, r);
         }));
  h.Post("/v1/completions", WithBody([&s](const httplib::Request& q, const json& b, httplib::Response& r) {
           Generate(s, Api::kCompletion, q, b, r);
         }));
  h.Post("/tokenize", WithBody([&s](const httplib::Request&, const json& b, httplib::Response& r) { Tokenize(s, b, r); }));
  h.Post("/detokenize",
         WithBody([&s](const httplib::Request&, const json& b, httplib::Response& r) { Detokenize(s, b, r); }));
}

ApiServer::~ApiServer() { Stop(); }

Result<int> ApiServer::Bind() {
  const std::string& host = state_->options.host;
  const int port = state_->options.port;
  // cpp-httplib's default sets SO_REUSEPORT, with which a second server on the same port
  // binds too and the kernel splits connections between the two: SO_REUSEADDR only.
  http_->set_socket_options([this](int socket) {
    listen_socket_ = socket;
    const int yes = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  const int bound = port == 0 ? http_->bind_to_any_port(host) : (http_->bind_to_port(host, port) ? port : -1);
  if (bound < 0) return RuntimeErrorf("cannot listen on {}:{} (in use, or not an address of this machine?)", host, port);
  // cpp-httplib listens with a backlog of 5: clients connecting together past it lose
  // their SYNs while the accepting thread waits for a core, and some saw their request
  // dropped (1 in ~150 runs of 16 concurrent streams on 2 busy cores). Listening again on
  // the bound socket raises the backlog (capped by net.core.somaxconn).
  if (::listen(listen_socket_, SOMAXCONN) != 0) return RuntimeErrorf("cannot listen on {}:{}", host, port);
  return bound;
}

void ApiServer::Serve() { http_->listen_after_bind(); }

void ApiServer::Stop() {
  state_->scheduler->Shutdown();
  http_->stop();
}

}  // namespace oko
