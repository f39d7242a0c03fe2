// `oko chat` end to end. On a pseudo-terminal (forkpty), as a person uses it: two turns,
// /stats showing that turn two prefilled only its new tokens, /reset, multi-line input,
// Ctrl-C mid-answer and at the prompt, Ctrl-D; a model without a chat template. With
// stdin not a terminal, as scripts use it (one message a line). And `oko run --chat`.
// tiny-qwen3 has the real Qwen3 tokenizer and template and random weights: the replies
// are gibberish, but the tokens flow.
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "loaders/trace_file.h"
#include "tests/test_util.h"

namespace oko {
namespace {

using ordered_json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

std::string Model(const std::string& name) { return test::SharedPath("models/" + name); }

// The oko binary on the slave side of a pseudo-terminal; the test types on the master.
class Terminal {
 public:
  explicit Terminal(const std::vector<std::string>& args) {
    struct winsize size = {};
    size.ws_row = 40;
    size.ws_col = 120;
    pid_ = forkpty(&fd_, nullptr, nullptr, &size);
    if (pid_ == 0) {
      setenv("TERM", "xterm", 1);
      std::vector<char*> argv = {const_cast<char*>(OKO_BINARY)};
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(OKO_BINARY, argv.data());
      _exit(127);
    }
  }
  ~Terminal() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }

  bool started() const { return pid_ > 0; }
  // Waits a moment first, as a person would: libedit reads keys typed ahead of its
  // prompt with the terminal still in cooked mode, where a Ctrl-D is not a key at all.
  void Type(const std::string& keys) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_EQ(write(fd_, keys.data(), keys.size()), static_cast<ssize_t>(keys.size()));
  }
  // Everything the program wrote so far; Mark() and Since() delimit one exchange.
  const std::string& output() const { return out_; }
  size_t Mark() const { return out_.size(); }
  std::string Since(size_t mark) const { return out_.substr(mark); }

  // Reads until `needle` appears after `mark`; false after `seconds`.
  bool WaitFor(const std::string& needle, size_t mark, double seconds = 20) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
    while (out_.find(needle, mark) == std::string::npos) {
      if (Clock::now() > deadline || !ReadSome(100)) return false;
    }
    return true;
  }
  // Reads until `bytes` more bytes arrived after `mark`.
  bool WaitForBytes(size_t bytes, size_t mark, double seconds = 60) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
    while (out_.size() < mark + bytes) {
      if (Clock::now() > deadline || !ReadSome(100)) return false;
    }
    return true;
  }
  // The exit status once the program ends (-1 on timeout).
  int WaitExit(double seconds = 60) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < deadline) {
      ReadSome(50);
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
    }
    return -1;
  }

 private:
  // False once the slave side is closed (the program exited).
  bool ReadSome(int timeout_ms) {
    struct pollfd p = {fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return true;
    char buf[4096];
    const ssize_t n = read(fd_, buf, sizeof buf);
    if (n <= 0) return false;
    out_.append(buf, static_cast<size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int fd_ = -1;
  bool exited_ = false;
  std::string out_;
};

constexpr const char* kPrompt = "\n> ";

// Types a message and waits for the reply and the next prompt; returns the exchange.
std::string Say(Terminal& t, const std::string& message) {
  const size_t mark = t.Mark();
  t.Type(message + "\r");
  EXPECT_TRUE(t.WaitFor(kPrompt, mark + message.size())) << "no prompt after '" << message << "':\n" << t.Since(mark);
  return t.Since(mark);
}

struct TurnStats {
  int64_t prompt = -1, prefilled = -1;
};

// The "last turn" numbers of /stats.
TurnStats Stats(Terminal& t) {
  const std::string text = Say(t, "/stats");
  std::smatch m;
  TurnStats s;
  // "prompt 41 tokens (16 prefilled, 25 from the cache)", or "prompt 5 tokens" when all were prefilled.
  if (std::regex_search(text, m, std::regex(R"(last turn: prompt (\d+) tokens?(?: \((\d+) prefilled)?)"))) {
    s.prompt = std::stoll(m[1]);
    s.prefilled = m[2].matched ? std::stoll(m[2]) : s.prompt;
  }
  EXPECT_GE(s.prompt, 0) << text;
  return s;
}

std::vector<std::string> ChatArgs(const std::string& model, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"chat", "-m", Model(model), "-t", "1", "--seed", "3"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST(ChatTerminal, TwoTurnsStatsResetAndExit) {
  Terminal t(ChatArgs("tiny-qwen3", {"-n", "8"}));
  ASSERT_TRUE(t.started());
  ASSERT_TRUE(t.WaitFor("> ", 0)) << t.output();
  EXPECT_NE(t.output().find("/help"), std::string::npos);

  Say(t, "Hello there, who are you?");
  const TurnStats first = Stats(t);
  EXPECT_EQ(first.prefilled, first.prompt);  // nothing cached yet

  Say(t, "Tell me more.");
  const TurnStats second = Stats(t);
  EXPECT_GT(second.prompt, first.prompt);
  // Turn one's prompt is a prefix of turn two's and came from the cache: only the
  // reply, the new message and the generation prompt were computed.
  EXPECT_LE(second.prefilled, second.prompt - first.prompt);
  EXPECT_GT(second.prefilled, 0);

  EXPECT_NE(Say(t, "/reset").find("cleared"), std::string::npos);
  Say(t, "Hi again");
  EXPECT_LT(Stats(t).prompt, second.prompt);  // the history is gone

  const std::string help = Say(t, "/help");
  EXPECT_NE(help.find("/save FILE"), std::string::npos);
  EXPECT_NE(help.find("/profile"), std::string::npos);
  EXPECT_NE(Say(t, "/bogus").find("unknown command /bogus"), std::string::npos);
  EXPECT_NE(Say(t, "/profile").find("The profiler is on"), std::string::npos);
  Say(t, "Once more");
  const std::string table = Say(t, "/profile");
  EXPECT_NE(table.find("prefill: "), std::string::npos) << table;
  EXPECT_NE(table.find("decode: "), std::string::npos) << table;
  EXPECT_NE(table.find("attn.q_proj"), std::string::npos) << table;
  t.Type("\x04");  // Ctrl-D
  EXPECT_EQ(t.WaitExit(), 0) << t.output();
}

TEST(ChatTerminal, CtrlCStopsTheAnswerAndCtrlCAtThePromptDoesNotExit) {
  // Greedy decoding of the random weights never reaches <|im_end|>: a reply that only
  // Ctrl-C (or -n) ends.
  Terminal t(ChatArgs("tiny-qwen3", {"-n", "100000", "--temp", "0"}));
  ASSERT_TRUE(t.WaitFor("> ", 0)) << t.output();
  size_t mark = t.Mark();
  t.Type("Write a very long story.\r");
  ASSERT_TRUE(t.WaitForBytes(400, mark)) << t.Since(mark);
  t.Type("\x03");
  ASSERT_TRUE(t.WaitFor("[stopped]", mark)) << t.Since(mark);
  ASSERT_TRUE(t.WaitFor(kPrompt, mark)) << t.Since(mark);
  const TurnStats stopped = Stats(t);
  EXPECT_GT(stopped.prompt, 0);

  mark = t.Mark();
  t.Type("half a line\x03");  // at the prompt: drops the line, a fresh prompt
  ASSERT_TRUE(t.WaitFor("> ", mark)) << t.Since(mark);
  const TurnStats after = Stats(t);
  EXPECT_EQ(after.prompt, stopped.prompt);  // nothing was sent

  t.Type("\x04");
  EXPECT_EQ(t.WaitExit(), 0) << t.output();
}

TEST(ChatTerminal, MultiLineInputAndSave) {
  const std::string file = test::TempDir("chat_multiline") + "/chat.json";
  Terminal t(ChatArgs("tiny-qwen3", {"-n", "4", "--system", "Be brief."}));
  ASSERT_TRUE(t.WaitFor("> ", 0)) << t.output();
  size_t mark = t.Mark();
  t.Type("first line \\\r");
  ASSERT_TRUE(t.WaitFor("... ", mark)) << t.Since(mark);
  Say(t, "second line");
  mark = t.Mark();
  t.Type("\"\"\"\r");
  ASSERT_TRUE(t.WaitFor("... ", mark)) << t.Since(mark);
  t.Type("a\rb\r");
  Say(t, "\"\"\"");
  EXPECT_NE(Say(t, "/save " + file).find("Saved 5 messages"), std::string::npos);
  t.Type("\x04");
  EXPECT_EQ(t.WaitExit(), 0) << t.output();

  std::ifstream in(file);
  const ordered_json saved = ordered_json::parse(in);
  ASSERT_EQ(saved.size(), 5u) << saved.dump(1);
  EXPECT_EQ(saved[0], (ordered_json{{"role", "system"}, {"content", "Be brief."}}));
  EXPECT_EQ(saved[1]["content"], "first line \nsecond line");
  EXPECT_EQ(saved[3]["content"], "a\nb");
  EXPECT_EQ(saved[4]["role"], "assistant");
}

TEST(ChatTerminal, ModelWithoutTemplateIsRawCompletion) {
  Terminal t(ChatArgs("stories260k", {"-n", "16"}));
  ASSERT_TRUE(t.WaitFor("> ", 0)) << t.output();
  EXPECT_NE(t.output().find("No chat template"), std::string::npos) << t.output();
  EXPECT_NE(t.output().find("Raw completion mode"), std::string::npos) << t.output();
  const std::string reply = Say(t, "Once upon a time");
  EXPECT_GT(reply.size(), std::string("Once upon a time\r\n\r\n> ").size()) << reply;
  EXPECT_EQ(Stats(t).prompt, 5);  // <s> Once upon a time
  t.Type("\x04");
  EXPECT_EQ(t.WaitExit(), 0) << t.output();
}

// stdin not a terminal: one message a line, one reply a message.
std::string Quoted(const std::string& s) { return "'" + s + "'"; }

TEST(ChatScripted, RepliesOnePerLineSameSeedSameText) {
  const std::string args = "chat -m " + Quoted(Model("tiny-qwen3")) + " -t 1 --seed 9 -n 6";
  const auto a = test::RunOko(args, "Hello\n\nHow are you?\n/stats\n");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out.find('\x1b'), std::string::npos) << "no terminal styling in a pipe";
  const auto turn2 = a.out.find("last turn: prompt ");
  ASSERT_NE(turn2, std::string::npos) << a.out;
  EXPECT_NE(a.out.find("session:   2 turns"), std::string::npos) << a.out;
  const auto b = test::RunOko(args, "Hello\n\nHow are you?\n/stats\n");
  EXPECT_EQ(a.out.substr(0, turn2), b.out.substr(0, b.out.find("last turn: prompt ")));
}

TEST(ChatScripted, SaveLoadAndSystem) {
  const std::string dir = test::TempDir("chat_scripted");
  const std::string model = Quoted(Model("tiny-qwen3"));
  auto r = test::RunOko("chat -m " + model + " -t 1 --seed 1 -n 4 --system 'You are terse.'",
                        "one\n/save " + dir + "/a.json\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = test::RunOko("chat -m " + model + " -t 1 --seed 1 -n 4",
                   "/load " + dir + "/a.json\ntwo\n/system\n/save " + dir + "/b.json\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(dir + "/b.json");
  const ordered_json b = ordered_json::parse(in);
  ASSERT_EQ(b.size(), 4u) << b.dump(1);  // the system prompt was cleared after loading
  EXPECT_EQ(b[0]["content"], "one");
  EXPECT_EQ(b[2]["content"], "two");
}

TEST(ChatScripted, FullContextSaysSoOnceAndGoesOn) {
  const auto r = test::RunOko("chat -m " + Quoted(Model("tiny-qwen3")) + " -t 1 --seed 4 -n 24 -c 64",
                              "Tell me a story\nGo on\nAnd then?\nMore\nThe end?\n/stats\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // A notice, not a reply: on stderr when stdout is a script's reply stream.
  const std::string note = "the context window of 64 positions is full";
  const size_t first = r.err.find(note);
  ASSERT_NE(first, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(note, first + 1), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find(note), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("session:   5 turns"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(wrapped: attention slides over the last window)"), std::string::npos) << r.out;
}

TEST(ChatScripted, AttnNeedsRecordingToBeAskedFor) {
  const auto r = test::RunOko("chat -m " + Quoted(Model("tiny-qwen3")) + " -t 1 --seed 1 -n 4", "Hello\n/attn\n/stats\n");
  // Scripted, an error is reported, the chat goes on, and the first error is the exit status.
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.out.find("last turn: prompt "), std::string::npos) << "went on to /stats: " << r.out;
  EXPECT_NE(r.err.find("error: /attn: start oko chat with --record-attention"), std::string::npos) << r.err;
}

TEST(ChatScripted, AttnShowsTheLastAnswerAndTraceSavesTheSession) {
  const std::string path = test::TempDir("chat_attn") + "/chat.safetensors";
  const auto r = test::RunOko("chat -m " + Quoted(Model("tiny-qwen3")) + " -t 1 --seed 1 -n 8 --record-attention",
                              "/attn\nHello\n/attn 0 1\n/attn 99\n/attn 0 x\nAgain\n/attn\n/trace " + path + "\n");
  EXPECT_EQ(r.exit_code, 2) << "the first error (/attn before an answer) is the exit status: " << r.err;
  EXPECT_NE(r.err.find("error: /attn: there is no answer yet"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("layer 0, head 1 · 7 queries"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("error: /attn: layer 99 is out of range: the model has layers 0-3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("error: /attn: head 'x' is not a non-negative integer"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("layer 3, average of 4 heads"), std::string::npos) << "defaults, after turn two: " << r.out;
  EXPECT_NE(r.out.find("Wrote the trace of "), std::string::npos) << r.out;

  const auto t = ReadTrace(path);
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->layers.size(), 4u);
  EXPECT_EQ(t->layers[0], 0);
  EXPECT_EQ(t->H(), 4);
  // Every position of both turns ran once; the last reply token may not have run yet.
  ASSERT_GT(t->Q(), 20);
  EXPECT_EQ(t->query_positions.front(), 0);
  EXPECT_EQ(t->query_positions.back(), t->Q() - 1);
  EXPECT_EQ(t->tokens.size(), static_cast<size_t>(t->Q()));
  EXPECT_EQ(t->tokens[0], "<|im_start|>");
  float sum = 0;  // the last query attends to every key before it: its row sums to 1
  for (int64_t k = 0; k < t->K(); ++k) sum += t->Row(0, 0, t->Q() - 1)[k];
  EXPECT_NEAR(sum, 1.0f, 1e-3);
}

// /lora rescales an adapter for the next answers: the same reply as a chat started at
// that scale. /drift measures and leaves the conversation where it was: the next reply is
// the one a chat without /drift gives.
TEST(ChatScripted, LoraRescalesAndDriftLeavesTheConversationAsItWas) {
  const std::string adapter = test::SharedPath("golden/lora/adapters/tiny-qwen3-r4-qkvo");
  const std::string base = "chat -m " + Quoted(Model("tiny-qwen3")) + " -t 1 --seed 1 -n 8 --record-attention --lora ";
  const auto at_half = test::RunOko(base + Quoted(adapter + ":0.5"), "Hello\nAgain\n");
  ASSERT_EQ(at_half.exit_code, 0) << at_half.err;
  const auto rescaled = test::RunOko(base + Quoted(adapter), "/lora tiny-qwen3-r4-qkvo 0.5\n/lora\nHello\n/drift 1 2\nAgain\n");
  ASSERT_EQ(rescaled.exit_code, 0) << rescaled.err;
  EXPECT_NE(rescaled.out.find("tiny-qwen3-r4-qkvo  scale 0.5  (16 matrices)"), std::string::npos) << rescaled.out;
  EXPECT_NE(rescaled.out.find("next token: KL(base || adapted)"), std::string::npos) << rescaled.out;
  EXPECT_NE(rescaled.out.find("A − B, layer 1, head 2"), std::string::npos) << rescaled.out;
  // The two replies, in order, appear the same in both runs.
  const auto replies = [](const std::string& out) {
    std::vector<std::string> lines;
    for (size_t b = 0, e; b < out.size(); b = e + 1) {
      e = out.find('\n', b);
      if (e == std::string::npos) e = out.size();
      lines.push_back(out.substr(b, e - b));
    }
    return lines;
  };
  const auto want = replies(at_half.out);
  ASSERT_GE(want.size(), 2u);
  const std::string got = rescaled.out;
  const size_t first = got.find(want[0]);
  ASSERT_NE(first, std::string::npos) << "first reply '" << want[0] << "' in:\n" << got;
  EXPECT_NE(got.find(want[1], first + want[0].size()), std::string::npos)
      << "second reply after /drift '" << want[1] << "' in:\n" << got;

  const auto refused = test::RunOko(base + Quoted(adapter) + " --lora-merge", "/lora off\n");
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("merged into the weights"), std::string::npos) << refused.err;
  const auto none = test::RunOko("chat -m " + Quoted(Model("tiny-qwen3")) + " -t 1 -n 2", "/lora\n/drift\n");
  EXPECT_NE(none.err.find("/lora: no adapters"), std::string::npos) << none.err;
  EXPECT_NE(none.err.find("/drift: start oko chat with --record-attention"), std::string::npos) << none.err;
}

// Every position of a chat trace names its message and role: the system prompt, both user
// messages, turn one's reply as turn two's prompt renders it, the scaffolding around each,
// and the reply being written.
TEST(ChatScripted, TraceNamesEveryPositionsMessageAndRole) {
  const std::string dir = test::TempDir("chat_roles");
  const auto r = test::RunOko("chat -m " + Quoted(Model("tiny-qwen3")) +
                                  " -t 1 --seed 1 -n 6 --record-attention --system 'Be brief.'",
                              "Hello there\nTell me more\n/save " + dir + "/c.json\n/trace " + dir +
                                  "/c.safetensors\n/attn\n/stats\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(dir + "/c.json");
  const ordered_json saved = ordered_json::parse(in);
  ASSERT_EQ(saved.size(), 5u);
  const auto t = ReadTrace(dir + "/c.safetensors");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->dtype, "f16");
  ASSERT_EQ(t->token_turns.size(), t->tokens.size());
  ASSERT_EQ(t->token_roles.size(), t->tokens.size());
  std::map<std::pair<int64_t, std::string>, std::string> text;
  for (size_t i = 0; i < t->tokens.size(); ++i) text[{t->token_turns[i], t->token_roles[i]}] += t->tokens[i];
  auto of = [&](int64_t turn, const std::string& role) { return text[std::make_pair(turn, role)]; };
  EXPECT_EQ(of(0, "system"), "Be brief.");
  EXPECT_EQ(of(1, "user"), "Hello there");
  EXPECT_EQ(of(3, "user"), "Tell me more");
  EXPECT_EQ(of(0, "template"), "<|im_start|>system\n<|im_end|>\n");
  EXPECT_EQ(of(1, "template"), "<|im_start|>user\n<|im_end|>\n");
  EXPECT_EQ(of(2, "template"), "<|im_start|>assistant\n<|im_end|>\n");
  EXPECT_EQ(of(3, "template"), "<|im_start|>user\n<|im_end|>\n");
  EXPECT_EQ(of(2, "assistant"), saved[2]["content"].get<std::string>());
  EXPECT_TRUE(of(4, "template").starts_with("<|im_start|>assistant\n")) << of(4, "template");
  EXPECT_FALSE(of(4, "assistant").empty());
  EXPECT_TRUE(saved[4]["content"].get<std::string>().starts_with(of(4, "assistant")))
      << "the reply so far: " << of(4, "assistant");
  EXPECT_EQ(t->token_turns.front(), 0);
  EXPECT_EQ(t->token_turns.back(), 4);
  // /attn marks the rows (the reply: a4) and says what the marks mean.
  EXPECT_NE(r.out.find(" a4   "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("messages: s system, u user, a assistant"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("attention: recording took "), std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(ms in the model \(\d+\.\d%; hook time over 1 threads\); it holds \d+\.\d kB for \d+ positions)")))
      << r.out;
}

TEST(ChatScripted, ProfileShowsTheOpTableSinceTheLastOne) {
  const std::string model = Quoted(Model("tiny-qwen3"));
  auto r = test::RunOko("chat -m " + model + " -t 1 --seed 1 -n 4",
                        "/profile\nHello\n/profile\n/profile\n/profile off\n/profile sideways\n");
  EXPECT_EQ(r.exit_code, 2) << "the bad option ends the script: " << r.err;
  EXPECT_NE(r.out.find("The profiler is on"), std::string::npos) << r.out;
  const size_t table = r.out.find("prefill: ");
  ASSERT_NE(table, std::string::npos) << r.out;
  EXPECT_NE(r.out.find("decode: 3 tokens", table), std::string::npos) << r.out;  // 4 sampled, 3 ran
  EXPECT_NE(r.out.find("final_norm", table), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Nothing ran since the last /profile."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("The profiler is off."), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("/profile: 'sideways' is not an option"), std::string::npos) << r.err;
  // --profile: on from the start.
  r = test::RunOko("chat -m " + model + " -t 1 --seed 1 -n 4 --profile", "Hello\n/profile\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("prefill: 9 tokens"), std::string::npos) << r.out;  // the whole first prompt
}

TEST(ChatScripted, BadLoadFileIsExit2NamingTheFile) {
  const std::string dir = test::TempDir("chat_bad");
  std::ofstream(dir + "/bad.json") << R"([{"role": "user"}])";
  const auto r = test::RunOko("chat -m " + Quoted(Model("tiny-qwen3")) + " -n 2", "/load " + dir + "/bad.json\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(dir + "/bad.json: message 0"), std::string::npos) << r.err;
}

TEST(ChatScripted, WithoutTemplateSaysSoAndCompletes) {
  const auto r = test::RunOko("chat -m " + Quoted(Model("stories260k")) + " --seed 2 -n 12", "Once upon a time\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("no chat template"), std::string::npos) << r.err;
  EXPECT_GT(r.out.size(), 1u);
}

TEST(RunChat, OneTurnThroughTheTemplate) {
  const auto r = test::RunOko("run -m " + Quoted(Model("tiny-qwen3")) + " -p Hello --chat --seed 1 -n 5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // <|im_start|> user \n Hello <|im_end|> \n <|im_start|> assistant \n
  EXPECT_NE(r.err.find("prompt 9 tokens"), std::string::npos) << r.err;
  const auto none = test::RunOko("run -m " + Quoted(Model("stories260k")) + " -p Hi --chat");
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("tokenizer_config.json"), std::string::npos) << none.err;
}

}  // namespace
}  // namespace oko
