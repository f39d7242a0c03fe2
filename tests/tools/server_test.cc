// oko serve's HTTP API, in process on an ephemeral loopback port: the endpoints' shapes,
// streaming against whole replies, stop sequences, bad input answered with OpenAI error
// objects and the right status while the server keeps serving, the API key, a full
// queue, and 16 concurrent seeded streams each equal to the same request alone.
// Threaded (HTTP threads, the scheduler): TSan runs this file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/limits.h"
#include "common/npy.h"
#include "tests/test_util.h"
#include "tools/server.h"

namespace oko {
namespace {

using json = nlohmann::json;

constexpr char kBase64Alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// An ApiServer over `model` in shared/models, not yet bound.
std::unique_ptr<ApiServer> MakeServer(const std::string& model, size_t slots, size_t queue, std::string api_key,
                                    int port) {
  const std::string dir = test::SharedPath("models/" + model);
  EngineOptions o;
  o.ctx = 256;
  o.threads = 2;
  auto context = LoadContext(dir, o);
  EXPECT_TRUE(context.ok()) << context.status().message();
  auto scheduler = BatchScheduler::Create(std::move(context).value(), SchedulerOptions{slots, queue});
  EXPECT_TRUE(scheduler.ok());
  auto tokenizer = Tokenizer::Load(dir);
  EXPECT_TRUE(tokenizer.ok());
  std::optional<ChatTemplate> chat_template;
  if (auto t = ChatTemplate::LoadFromDir(dir); t.ok()) chat_template = std::move(t).value();
  ServerOptions so;
  so.port = port;
  so.api_key = std::move(api_key);
  so.model_name = model;
  return std::make_unique<ApiServer>(std::move(scheduler).value(), std::move(tokenizer).value(),
                                     std::move(chat_template), so);
}

class TestServer {
 public:
  explicit TestServer(const std::string& model, size_t slots = 2, size_t queue = 16, std::string api_key = "") {
    std::signal(SIGPIPE, SIG_IGN);  // as oko serve: a client gone is a failed write
    server_ = MakeServer(model, slots, queue, std::move(api_key), /*port=*/0);
    auto port = server_->Bind();
    EXPECT_TRUE(port.ok());
    port_ = *port;
    thread_ = std::thread([this] { server_->Serve(); });
    // Serving once /health answers.
    for (int i = 0; i < 500 && !Client().Get("/health"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ~TestServer() {
    server_->Stop();
    thread_.join();
  }

  httplib::Client Client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c;
  }
  // POSTs `body`; the status and the parsed reply (null when it is not JSON).
  std::pair<int, json> Post(const std::string& path, const std::string& body, httplib::Headers headers = {}) const {
    auto r = Client().Post(path.c_str(), headers, body, "application/json");
    if (!r) return {0, json()};
    return {r->status, json::parse(r->body, nullptr, false)};
  }
  httplib::Result Raw(const std::string& path, const std::string& body) const {
    return Client().Post(path.c_str(), body, "application/json");
  }
  // The body of a 200 reply; a failed request or another status fails the test.
  std::string Body(const std::string& path, const std::string& body) const {
    auto r = Raw(path, body);
    if (!r) {
      ADD_FAILURE() << "POST " << path << " failed: " << httplib::to_string(r.error());
      return "";
    }
    EXPECT_EQ(r->status, 200) << r->body;
    return r->body;
  }
  int port() const { return port_; }

 private:
  std::unique_ptr<ApiServer> server_;
  std::thread thread_;
  int port_ = 0;
};

// The data of each SSE event of a stream body, [DONE] included.
std::vector<std::string> Events(const std::string& body) {
  std::vector<std::string> events;
  size_t at = 0;
  while ((at = body.find("data: ", at)) != std::string::npos) {
    const size_t end = body.find("\n\n", at);
    events.push_back(body.substr(at + 6, end - at - 6));
    at = end;
  }
  return events;
}

struct Streamed {
  std::string text, reasoning, finish_reason;
  json usage;
  bool done = false;
};

// Concatenates a stream's deltas (chat or text completion).
Streamed ReadStream(const std::string& body) {
  Streamed s;
  for (const std::string& e : Events(body)) {
    if (e == "[DONE]") {
      s.done = true;
      continue;
    }
    const json j = json::parse(e);
    if (j.contains("usage")) s.usage = j["usage"];
    if (j["choices"].empty()) continue;
    const json& c = j["choices"][0];
    if (c.contains("delta")) {
      s.text += c["delta"].value("content", "");
      s.reasoning += c["delta"].value("reasoning_content", "");
    } else {
      s.text += c.value("text", "");
    }
    if (!c["finish_reason"].is_null()) s.finish_reason = c["finish_reason"];
  }
  return s;
}

const char* kChat = R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}],
                        "max_tokens": 12, "seed": 5, "temperature": 0.9})";

TEST(Server, ChatCompletionWholeAndStreamedAgree) {
  TestServer server("tiny-qwen3");
  const auto [status, whole] = server.Post("/v1/chat/completions", kChat);
  ASSERT_EQ(status, 200) << whole.dump();
  EXPECT_EQ(whole["object"], "chat.completion");
  EXPECT_EQ(whole["model"], "tiny-qwen3");
  const json& choice = whole["choices"][0];
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_TRUE(choice["finish_reason"] == "length" || choice["finish_reason"] == "stop");
  EXPECT_EQ(whole["usage"]["total_tokens"].get<int>(),
            whole["usage"]["prompt_tokens"].get<int>() + whole["usage"]["completion_tokens"].get<int>());
  if (choice["finish_reason"] == "length") {
    EXPECT_EQ(whole["usage"]["completion_tokens"], 12);
  }

  json streamed_request = json::parse(kChat);
  streamed_request["stream"] = true;
  streamed_request["stream_options"] = {{"include_usage", true}};
  auto r = server.Raw("/v1/chat/completions", streamed_request.dump());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  const Streamed s = ReadStream(r->body);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.text, choice["message"]["content"].get<std::string>());
  EXPECT_EQ(s.finish_reason, choice["finish_reason"]);
  EXPECT_EQ(s.usage["completion_tokens"], whole["usage"]["completion_tokens"]);
  // The same conversation again: its slot still holds the prompt.
  EXPECT_GT(s.usage["prompt_tokens_details"]["cached_tokens"].get<int>(), 0);
}

TEST(Server, StopSequenceCutsTheText) {
  TestServer server("stories260k");
  const auto [status, whole] = server.Post("/v1/completions", R"({"prompt": "Once upon a time", "max_tokens": 40, "seed": 3, "temperature": 0.8})");
  ASSERT_EQ(status, 200) << whole.dump();
  const std::string text = whole["choices"][0]["text"];
  ASSERT_GT(text.size(), 12u);
  const std::string stop = text.substr(text.size() / 2, 3);
  json request = {{"prompt", "Once upon a time"}, {"max_tokens", 40}, {"seed", 3}, {"temperature", 0.8}, {"stop", {stop}}};
  const auto [status2, cut] = server.Post("/v1/completions", request.dump());
  ASSERT_EQ(status2, 200);
  EXPECT_EQ(cut["choices"][0]["text"], text.substr(0, text.find(stop)));
  EXPECT_EQ(cut["choices"][0]["finish_reason"], "stop");
  request["stream"] = true;
  const Streamed s = ReadStream(server.Body("/v1/completions", request.dump()));
  EXPECT_EQ(s.text, text.substr(0, text.find(stop)));
  EXPECT_EQ(s.finish_reason, "stop");
}

TEST(Server, CompletionOfTokenIdsModelsTokenizeMetrics) {
  TestServer server("stories260k");
  const auto [tok_status, tokens] = server.Post("/tokenize", R"({"content": "Once upon a time"})");
  ASSERT_EQ(tok_status, 200);
  ASSERT_FALSE(tokens["tokens"].empty());
  const auto [detok_status, text] = server.Post("/detokenize", json{{"tokens", tokens["tokens"]}}.dump());
  ASSERT_EQ(detok_status, 200);
  EXPECT_EQ(text["content"], "Once upon a time");

  const auto [status, by_ids] = server.Post("/v1/completions", json{{"prompt", tokens["tokens"]}, {"max_tokens", 5}, {"temperature", 0}}.dump());
  ASSERT_EQ(status, 200) << by_ids.dump();
  EXPECT_EQ(by_ids["object"], "text_completion");
  EXPECT_EQ(by_ids["usage"]["prompt_tokens"], tokens["tokens"].size());

  auto models = server.Client().Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(json::parse(models->body)["data"][0]["id"], "stories260k");
  auto metrics = server.Client().Get("/metrics");
  ASSERT_TRUE(metrics);
  for (const char* name : {"oko_requests_total", "oko_generated_tokens_total", "oko_queue_length", "oko_slots_active",
                           "oko_kv_positions_used", "oko_tokens_per_second"})
    EXPECT_NE(metrics->body.find(std::string("\n") + name + " "), std::string::npos) << name;
  EXPECT_NE(metrics->body.find("\noko_sequences_done_total 1\n"), std::string::npos) << metrics->body;
  EXPECT_NE(metrics->body.find("\noko_sequences_cancelled_total 0\n"), std::string::npos) << metrics->body;
}

struct BadRequest {
  const char* path;
  std::string body;
  int status;
  const char* param;  // "" when none is named
};

TEST(Server, BadInputGetsErrorObjectsAndTheServerKeepsServing) {
  TestServer server("tiny-qwen3");
  const std::vector<BadRequest> table = {
      {"/v1/chat/completions", "{not json", 400, ""},
      {"/v1/chat/completions", "[1, 2]", 400, ""},
      {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\xff\"}]}", 400, ""},
      {"/v1/chat/completions", R"({})", 400, "messages"},
      {"/v1/chat/completions", R"({"messages": []})", 400, "messages"},
      {"/v1/chat/completions", R"({"messages": "hi"})", 400, "messages"},
      {"/v1/chat/completions", R"({"messages": [{"role": "wizard", "content": "hi"}]})", 400, "messages[0].role"},
      {"/v1/chat/completions", R"({"messages": [{"content": "hi"}]})", 400, "messages[0]"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": 7}]})", 400, "messages[0].content"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", 400,
       "messages[0].content"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"})", 400,
       "temperature"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "temperature": 5})", 400,
       "temperature"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "top_p": 0})", 400, "top_p"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0})", 400,
       "max_tokens"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1.5})", 400,
       "max_tokens"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "seed": "x"})", 400, "seed"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "stream": "yes"})", 400, "stream"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "stop": [1]})", 400, "stop"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "stop": ["a","b","c","d","e"]})",
       400, "stop"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "presence_penalty": 3})", 400,
       "presence_penalty"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "chat_template_kwargs": 1})", 400,
       "chat_template_kwargs"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "n": 2})", 422, "n"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "logprobs": 1})", 400,
       "logprobs"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2})", 400,
       "top_logprobs"},
      {"/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "hi"}], "logprobs": true, "top_logprobs": 21})", 400,
       "top_logprobs"},
      {"/v1/completions", R"({"prompt": "hi", "logprobs": 6})", 400, "logprobs"},
      {"/v1/completions", R"({"prompt": "hi", "logprobs": true})", 400, "logprobs"},
      {"/v1/completions", R"({"prompt": "hi", "oko": 1})", 400, "oko"},
      {"/v1/completions", R"({"prompt": "hi", "oko": {"attn": {}}})", 400, "oko.attn"},
      {"/v1/completions", R"({"prompt": "hi", "oko": {"attention": true}})", 400, "oko.attention"},
      {"/v1/completions", R"({"prompt": "hi", "oko": {"attention": {"layers": [1]}}})", 400, "oko.attention.layers"},
      {"/v1/completions", R"({"prompt": "hi", "oko": {"attention": {"layer": 4}}})", 400, "oko.attention.layer"},
      {"/v1/completions", R"({"prompt": "hi", "oko": {"attention": {"layer": "last"}}})", 400,
       "oko.attention.layer"},
      {"/v1/completions", R"({"prompt": "hi", "oko": {"attention": {"head": -2}}})", 400, "oko.attention.head"},
      {"/v1/chat/completions",
       json{{"messages", {{{"role", "user"}, {"content", std::string(4000, 'a') + " b"}}}}}.dump(), 422,
       "messages"},
      {"/v1/completions", R"({})", 400, "prompt"},
      {"/v1/completions", R"({"prompt": 5})", 400, "prompt"},
      {"/v1/completions", R"({"prompt": [1, "a"]})", 400, "prompt"},
      {"/v1/completions", R"({"prompt": [99999999]})", 400, "prompt"},
      {"/v1/completions", R"({"prompt": [-1]})", 400, "prompt"},
      {"/v1/completions", R"({"prompt": ""})", 400, "prompt"},
      {"/v1/completions", R"({"prompt": "hi", "frequency_penalty": -3})", 400, "frequency_penalty"},
      {"/tokenize", R"({"content": 1})", 400, "content"},
      {"/detokenize", R"({"tokens": [1, 99999999]})", 400, "tokens"},
      {"/detokenize", R"({"tokens": "1"})", 400, "tokens"},
      {"/v1/nothing", R"({})", 404, ""},
  };
  for (const BadRequest& t : table) {
    SCOPED_TRACE(std::string(t.path) + " " + t.body.substr(0, 120));
    const auto [status, reply] = server.Post(t.path, t.body);
    EXPECT_EQ(status, t.status) << reply.dump();
    ASSERT_TRUE(reply.is_object() && reply.contains("error")) << reply.dump();
    EXPECT_FALSE(reply["error"]["message"].get<std::string>().empty());
    EXPECT_TRUE(reply["error"]["type"].is_string());
    if (*t.param != '\0') {
      EXPECT_EQ(reply["error"]["param"], t.param);
    }
  }
  // A body past the limit.
  const auto [status, reply] = server.Post("/v1/completions", std::string(kMaxRequestBodyBytes + 1, ' '));
  EXPECT_EQ(status, 413);
  EXPECT_TRUE(reply.contains("error"));
  // Still serving.
  EXPECT_EQ(server.Post("/v1/chat/completions", kChat).first, 200);
}

TEST(Server, ChatWithoutATemplateIsRefused) {
  TestServer server("stories260k");
  const auto [status, reply] = server.Post("/v1/chat/completions", kChat);
  EXPECT_EQ(status, 422);
  EXPECT_EQ(reply["error"]["param"], "messages");
}

TEST(Server, ApiKeyIsRequiredButForHealthAndThePage) {
  TestServer server("stories260k", 1, 4, "sesame");
  const std::string body = R"({"prompt": "Once", "max_tokens": 2})";
  const auto [no_key, error] = server.Post("/v1/completions", body);
  EXPECT_EQ(no_key, 401);
  EXPECT_EQ(error["error"]["code"], "invalid_api_key");
  EXPECT_EQ(server.Post("/v1/completions", body, {{"Authorization", "Bearer wrong"}}).first, 401);
  EXPECT_EQ(server.Post("/v1/completions", body, {{"Authorization", "Bearer sesame"}}).first, 200);
  EXPECT_EQ(server.Client().Get("/health")->status, 200);
  EXPECT_EQ(server.Client().Get("/")->status, 200);  // the page asks for the key itself
  EXPECT_EQ(server.Client().Get("/v1/models")->status, 401);
}

TEST(Server, AFullQueueAnswers503WithRetryAfter) {
  TestServer server("stories260k", /*slots=*/1, /*queue=*/0);
  // A stream holds the one slot while it runs; requests sent meanwhile find it taken
  // and the queue (of none) full.
  const std::string body = R"({"prompt": "Once", "max_tokens": 250, "temperature": 0, "stream": true})";
  std::vector<std::future<httplib::Result>> replies;
  for (int i = 0; i < 8; ++i)
    replies.push_back(std::async(std::launch::async, [&] { return server.Raw("/v1/completions", body); }));
  int ok = 0, busy = 0;
  for (auto& f : replies) {
    httplib::Result r = f.get();
    ASSERT_TRUE(r);
    if (r->status == 200) ++ok;
    if (r->status == 503) {
      ++busy;
      EXPECT_EQ(r->get_header_value("Retry-After"), "1");
      EXPECT_EQ(json::parse(r->body)["error"]["code"], "overloaded");
    }
  }
  EXPECT_EQ(ok + busy, 8);
  EXPECT_GE(ok, 1);  // how many find the slot taken depends on timing (typically 6 of 8);
                     // batch_scheduler_test refuses deterministically
}

// cpp-httplib's default socket options set SO_REUSEPORT, with which a second server
// binds the same port and takes half of the first one's connections.
TEST(Server, ASecondServerOnTheSamePortIsRefused) {
  TestServer first("stories260k");
  auto second = MakeServer("stories260k", 1, 1, "", first.port());
  auto bound = second->Bind();
  ASSERT_FALSE(bound.ok());
  EXPECT_THAT(bound.status().message(), testing::HasSubstr("in use"));
}


// The first token's log-probabilities against the float32 PyTorch reference's logits of
// the same prompt (../shared/golden/tiny-qwen3/paragraph): logit - logsumexp, top 5 in
// order, within the golden README's logit tolerance (1e-3) for each of the two terms.
TEST(Server, CompletionLogprobsAreTheReferenceLogSoftmax) {
  const std::string dir = test::SharedPath("golden/tiny-qwen3/paragraph");
  const std::vector<int64_t> ids = ReadNpy(dir + "/input_ids.npy")->AsInts();
  const std::vector<int64_t> top_ids = ReadNpy(dir + "/logits_topk_ids.npy")->AsInts();
  const std::vector<float> top_logits = ReadNpy(dir + "/logits_topk_vals.npy")->AsFloats();
  const std::vector<float> lse = ReadNpy(dir + "/logsumexp.npy")->AsFloats();
  const size_t last = ids.size() - 1;
  auto tokenizer = Tokenizer::Load(test::SharedPath("models/tiny-qwen3"));
  ASSERT_TRUE(tokenizer.ok());

  TestServer server("tiny-qwen3");
  // Ordered: "top_logprobs" objects list the alternatives most likely first.
  const auto reply = nlohmann::ordered_json::parse(server.Body(
      "/v1/completions", json{{"prompt", ids}, {"max_tokens", 3}, {"temperature", 0}, {"logprobs", 5}}.dump()));
  const auto& lp = reply["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 3u) << lp.dump();
  ASSERT_EQ(lp["token_logprobs"].size(), 3u);
  ASSERT_EQ(lp["top_logprobs"].size(), 3u);
  // Greedy: the chosen token is the reference's most likely one.
  EXPECT_EQ(lp["tokens"][0], (*tokenizer)->DecodePiece(static_cast<int32_t>(top_ids[last * 10])));
  EXPECT_NEAR(lp["token_logprobs"][0].get<double>(), top_logits[last * 10] - lse[last], 2e-3);
  const auto& first = lp["top_logprobs"][0];
  ASSERT_EQ(first.size(), 5u) << first.dump();
  size_t k = 0;
  for (const auto& [text, logprob] : first.items()) {
    EXPECT_EQ(text, (*tokenizer)->DecodePiece(static_cast<int32_t>(top_ids[last * 10 + k]))) << k;
    EXPECT_NEAR(logprob.get<double>(), top_logits[last * 10 + k] - lse[last], 2e-3) << k;
    ++k;
  }
  for (size_t t = 0; t < 3; ++t) {
    EXPECT_LE(lp["token_logprobs"][t].get<double>(), 0.0);
    EXPECT_EQ(lp["top_logprobs"][t].size(), 5u);
  }
}

// Chat entries: one per generated token, the chosen token's own first among its
// alternatives when greedy, alternatives most likely first; a stream carries the same
// entries, spread over its chunks.
TEST(Server, ChatLogprobsWholeAndStreamedAgree) {
  TestServer server("tiny-qwen3");
  json request = json::parse(kChat);
  request["temperature"] = 0;
  request["logprobs"] = true;
  request["top_logprobs"] = 3;
  const auto [status, whole] = server.Post("/v1/chat/completions", request.dump());
  ASSERT_EQ(status, 200) << whole.dump();
  const json& entries = whole["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(entries.size(), whole["usage"]["completion_tokens"].get<size_t>()) << whole.dump();
  for (const json& e : entries) {
    ASSERT_EQ(e["top_logprobs"].size(), 3u) << e.dump();
    EXPECT_EQ(e["token"], e["top_logprobs"][0]["token"]);
    EXPECT_EQ(e["logprob"], e["top_logprobs"][0]["logprob"]);
    EXPECT_GE(e["top_logprobs"][0]["logprob"].get<double>(), e["top_logprobs"][1]["logprob"].get<double>());
    EXPECT_GE(e["top_logprobs"][1]["logprob"].get<double>(), e["top_logprobs"][2]["logprob"].get<double>());
    EXPECT_LE(e["logprob"].get<double>(), 0.0);
    // bytes: the token's own; the text's UTF-8 but where the token ends inside a
    // character (the text shows U+FFFD there).
    for (const json& t : e["top_logprobs"]) {
      const std::string text = t["token"];
      std::string bytes;
      for (const json& b : t["bytes"]) bytes.push_back(static_cast<char>(b.get<int>()));
      if (text.find("\xEF\xBF\xBD") == std::string::npos) {
        EXPECT_EQ(bytes, text);
      }
      EXPECT_FALSE(bytes.empty() && !text.empty()) << t.dump();
    }
  }

  request["stream"] = true;
  json streamed = json::array();
  for (const std::string& event : Events(server.Body("/v1/chat/completions", request.dump()))) {
    if (event == "[DONE]") continue;
    const json chunk = json::parse(event);
    const json& choice = chunk["choices"][0];
    if (!choice["logprobs"].is_null())
      for (const json& e : choice["logprobs"]["content"]) streamed.push_back(e);
  }
  // The same tokens; the numbers to float rounding, as the second request reuses the
  // first one's cached prompt and computes only its last position (a 1-row matmul).
  ASSERT_EQ(streamed.size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(streamed[i]["token"], entries[i]["token"]) << i;
    EXPECT_EQ(streamed[i]["bytes"], entries[i]["bytes"]) << i;
    EXPECT_NEAR(streamed[i]["logprob"].get<double>(), entries[i]["logprob"].get<double>(), 1e-4) << i;
    for (size_t k = 0; k < 3; ++k)
      EXPECT_NEAR(streamed[i]["top_logprobs"][k]["logprob"].get<double>(),
                  entries[i]["top_logprobs"][k]["logprob"].get<double>(), 1e-4)
          << i << " " << k;
  }

  // Without "logprobs" a choice says null.
  const auto [status2, plain] = server.Post("/v1/chat/completions", kChat);
  ASSERT_EQ(status2, 200);
  EXPECT_TRUE(plain["choices"][0]["logprobs"].is_null());
}
// 16 seeded streams at once on 4 slots (so some wait in the queue): each text equals
// the same request sent alone, so no stream lost or mixed another's tokens.
TEST(Server, ConcurrentStreamsEachEqualTheirRequestAlone) {
  TestServer server("stories260k", /*slots=*/4, /*queue=*/16);
  auto request = [](int i) {
    return json{{"prompt", i % 2 ? "Once upon a time" : "The cat"}, {"max_tokens", 24 + i}, {"seed", 1000 + i},
                {"temperature", 0.8}, {"top_p", 0.95}, {"stream", true}}
        .dump();
  };
  std::vector<Streamed> alone;
  for (int i = 0; i < 16; ++i) alone.push_back(ReadStream(server.Body("/v1/completions", request(i))));
  std::vector<std::future<Streamed>> together;
  for (int i = 0; i < 16; ++i)
    together.push_back(std::async(std::launch::async, [&, i] { return ReadStream(server.Body("/v1/completions", request(i))); }));
  for (int i = 0; i < 16; ++i) {
    const Streamed s = together[i].get();
    EXPECT_TRUE(s.done) << i;
    EXPECT_FALSE(s.text.empty()) << i;
    EXPECT_EQ(s.text, alone[i].text) << "request " << i;
    EXPECT_EQ(s.finish_reason, alone[i].finish_reason) << i;
  }
}

// Sends one POST on a socket of its own and closes it without reading the reply.
void PostAndLeave(int port, const std::string& path, const std::string& body) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  const std::string request = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  close(fd);
}

// The value of one counter or gauge of /metrics.
double Metric(const TestServer& server, const std::string& name) {
  auto r = server.Client().Get("/metrics");
  if (!r) return -1;
  const size_t at = r->body.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stod(r->body.substr(at + name.size() + 2));
}

// A client that leaves ends its sequence, whole reply or stream, running or still queued:
// the server looks before submitting it and every 10 ms while it waits, and the scheduler
// ends it at the next step (FinishReason::kCancelled). Without that it would run to its
// budget (250 tokens, which greedy stories260k fills without an end-of-text, in ~20 ms)
// and end as kLength. The second request of each pair waits behind the first.
TEST(Server, AClientThatLeavesEndsItsSequence) {
  TestServer server("stories260k", /*slots=*/1, /*queue=*/4);
  for (bool stream : {false, true}) {
    const std::string body = json{{"prompt", "Once"}, {"max_tokens", 250}, {"temperature", 0},
                                  {"stream", stream}}.dump();
    const double done = Metric(server, "oko_sequences_done_total");
    const double cancelled = Metric(server, "oko_sequences_cancelled_total");
    PostAndLeave(server.port(), "/v1/completions", body);
    PostAndLeave(server.port(), "/v1/completions", body);
    for (int i = 0; i < 500 && Metric(server, "oko_sequences_done_total") < done + 2; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(Metric(server, "oko_sequences_done_total"), done + 2) << "stream " << stream;
    EXPECT_EQ(Metric(server, "oko_sequences_cancelled_total"), cancelled + 2) << "stream " << stream;
    EXPECT_EQ(Metric(server, "oko_slots_active"), 0);
  }
}

// ---- The attention view: the "oko" request field, and the page that draws it. ----

std::vector<uint8_t> FromBase64(const std::string& text) {
  std::vector<uint8_t> out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    const char* at = std::strchr(kBase64Alphabet, c);
    if (c == '=' || at == nullptr) break;
    bits = (bits << 6) | static_cast<uint32_t>(at - kBase64Alphabet);
    if ((count += 6) >= 8) out.push_back(static_cast<uint8_t>(bits >> (count -= 8)));
  }
  return out;
}

// A row's probabilities [heads][pos + 1], decoded as the viewer does.
std::vector<float> RowProbs(const json& row) {
  std::vector<float> p;
  for (uint8_t b : FromBase64(row["probs"].get<std::string>())) p.push_back(float(b) * b / (255.0f * 255.0f));
  return p;
}

// The row of the prompt's last position is the float32 PyTorch reference's, every head of
// the asked layer, within the 8-bit encoding's step; asking for one head gives that head's.
TEST(ServerAttention, TheFirstRowIsTheReferenceSoftmax) {
  const std::string dir = test::SharedPath("golden/tiny-qwen3/paragraph");
  const std::vector<int64_t> ids = ReadNpy(dir + "/input_ids.npy")->AsInts();
  const std::vector<float> golden = ReadNpy(dir + "/attn_probs.npy")->AsFloats();  // [L, H, T, T]
  const int64_t T = static_cast<int64_t>(ids.size()), H = 4, layer = 1;
  ASSERT_EQ(golden.size(), size_t(4 * H * T * T));
  TestServer server("tiny-qwen3");
  const json reply = json::parse(server.Body(
      "/v1/completions",
      json{{"prompt", ids}, {"max_tokens", 1}, {"temperature", 0}, {"oko", {{"attention", {{"layer", layer}}}}}}.dump()));
  const json& a = reply["oko"]["attention"];
  EXPECT_EQ(a["layer"], layer);
  EXPECT_EQ(a["heads"], json({0, 1, 2, 3}));
  ASSERT_EQ(a["prompt_tokens"].size(), size_t(T));
  ASSERT_EQ(a["rows"].size(), 1u) << a.dump();
  const json& row = a["rows"][0];
  EXPECT_EQ(row["pos"], T - 1);
  EXPECT_EQ(row["token"], a["prompt_tokens"][T - 1]);
  const std::vector<float> p = RowProbs(row);
  ASSERT_EQ(p.size(), size_t(H * T));
  for (int64_t h = 0; h < H; ++h)
    for (int64_t k = 0; k < T; ++k) {
      const float ref = golden[((layer * H + h) * T + (T - 1)) * T + k];
      // round(255 sqrt(p)) moves sqrt(p) by at most 1/510, p by about 2 sqrt(p) / 510.
      EXPECT_NEAR(p[h * T + k], ref, 2 * std::sqrt(ref) / 510 + 2 / (510.0 * 510.0) + 1e-4) << "head " << h << " key " << k;
    }

  const json one = json::parse(server.Body(
      "/v1/completions", json{{"prompt", ids}, {"max_tokens", 1}, {"temperature", 0},
                              {"oko", {{"attention", {{"layer", layer}, {"head", 2}}}}}}.dump()));
  EXPECT_EQ(one["oko"]["attention"]["heads"], json({2}));
  const std::vector<float> p2 = RowProbs(one["oko"]["attention"]["rows"][0]);
  EXPECT_EQ(p2, std::vector<float>(p.begin() + 2 * T, p.begin() + 3 * T));
}

// Streamed, the rows ride on the chunks and are the whole reply's; one per query from the
// prompt's last to the last token run, each over keys 0..pos, each head summing to 1. A
// request without the field has none.
TEST(ServerAttention, StreamedRowsAreTheWholeReplysRows) {
  TestServer server("tiny-qwen3");
  json request = {{"messages", {{{"role", "user"}, {"content", "Where do you look?"}}}},
                  {"max_tokens", 6}, {"temperature", 0}, {"oko", {{"attention", json::object()}}}};
  const json whole = json::parse(server.Body("/v1/chat/completions", request.dump()));
  const json& a = whole["oko"]["attention"];
  EXPECT_EQ(a["layer"], 3);  // the last, by default
  const int64_t prompt = whole["usage"]["prompt_tokens"], generated = whole["usage"]["completion_tokens"];
  ASSERT_EQ(a["rows"].size(), size_t(generated)) << a.dump();
  for (int64_t i = 0; i < generated; ++i) {
    const json& row = a["rows"][i];
    EXPECT_EQ(row["pos"], prompt - 1 + i);
    const std::vector<float> p = RowProbs(row);
    ASSERT_EQ(p.size(), size_t(4 * (prompt + i)));
    for (int64_t h = 0; h < 4; ++h) {
      double sum = 0;
      for (int64_t k = 0; k < prompt + i; ++k) sum += p[h * (prompt + i) + k];
      EXPECT_NEAR(sum, 1.0, 0.02) << "row " << i << " head " << h;
    }
  }

  request["stream"] = true;
  json streamed = json::array(), header;
  for (const std::string& e : Events(server.Body("/v1/chat/completions", request.dump()))) {
    if (e == "[DONE]") continue;
    const json chunk = json::parse(e);
    if (!chunk.contains("oko")) continue;
    const json& part = chunk["oko"]["attention"];
    if (part.contains("layer")) {
      EXPECT_TRUE(header.is_null()) << "a second header";
      header = part;
    }
    for (const json& r : part["rows"]) streamed.push_back(r);
  }
  ASSERT_FALSE(header.is_null());
  EXPECT_EQ(header["prompt_tokens"], a["prompt_tokens"]);
  EXPECT_EQ(streamed, a["rows"]);

  request.erase("oko");
  request.erase("stream");
  EXPECT_FALSE(json::parse(server.Body("/v1/chat/completions", request.dump())).contains("oko"));
}

bool Have(const char* program) { return std::system(fmt::format("command -v {} >/dev/null 2>&1", program).c_str()) == 0; }

// GET / in headless Chromium, driven as a person would (tests/tools/chat_page/drive.mjs):
// a typed message and Enter, then a second turn with the Send button; each answer
// streamed and its heatmap drawn by the viewer, no JavaScript error.
TEST(ServerPage, ChromiumDrivesTheChatPage) {
  TestServer server("tiny-qwen3");
  auto page = server.Client().Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  for (const char* outside : {"<script src", "http://", "https://", "<link rel=\"stylesheet"})
    EXPECT_EQ(page->body.find(outside), std::string::npos) << outside;
  if (!Have("chromium") || !Have("node")) GTEST_SKIP() << "chromium or node is not installed (scripts/setup.sh)";
  const std::string shot = (std::filesystem::temp_directory_path() / "oko_chat_page.png").string();
  const test::CommandResult r = test::RunCommand(fmt::format("node '{}/tests/tools/chat_page/drive.mjs' http://127.0.0.1:{}/ '{}'",
                                                             OKO_SOURCE_DIR, server.port(), shot));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  std::printf("%s", r.out.c_str());
}

}  // namespace
}  // namespace oko
