// Every file oko writes goes to a temporary name and is renamed over the destination
// (common/atomic_file.h). Here a real `oko` process is killed with SIGKILL in the middle
// of writing, at several moments, and the destination must be the complete old file or
// absent, never a part; a leftover temporary never looks like a weights file to the
// loader. A write that fails (the folder does not exist) is a runtime error: exit 3.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/model_folder.h"
#include "tests/test_util.h"

extern char** environ;

namespace oko {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// Starts oko with `args` (no shell), stdout and stderr to /dev/null.
pid_t Spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  std::string binary = OKO_BINARY;
  argv.push_back(binary.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// The temporary files of `dest` ("DEST.tmp.PID") in its folder, with their sizes.
uint64_t TempBytes(const std::string& dest, pid_t pid) {
  std::error_code ec;
  const auto size = fs::file_size(fmt::format("{}.tmp.{}", dest, pid), ec);
  return ec ? 0 : size;
}

// Kills `pid` with SIGKILL once its temporary of `dest` holds at least `bytes` (or the
// process ended by itself). Returns whether it was killed mid-write.
bool KillWhenWritten(pid_t pid, const std::string& dest, uint64_t bytes) {
  const auto deadline = Clock::now() + std::chrono::seconds(600);
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return false;  // finished first
    if (fs::exists(fmt::format("{}.tmp.{}", dest, pid)) && TempBytes(dest, pid) >= bytes) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ADD_FAILURE() << "oko never wrote " << bytes << " bytes of " << dest;
  return false;
}

// Files of `dir` the loader would take for weights (TensorStore::OpenDir globs these).
std::vector<std::string> SafetensorsFiles(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") v.push_back(e.path().filename().string());
  return v;
}

TEST(AtomicWriteTest, KilledMakeModelLeavesTheOldModelWhole) {
  const std::string out = test::TempDir("kill_make_model") + "/model";
  auto r = test::RunOko("make-model --preset tiny-qwen3 --out '" + out + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string weights = out + "/model.safetensors";
  const std::string old_weights = test::ReadBytes(weights);
  const std::string old_config = test::ReadBytes(out + "/config.json");

  // qwen3-0.6b writes ~1.2 GB: killed as soon as the temporary exists, after 1 MB, after
  // 64 MB and after 256 MB (the header, the embeddings, the first layers).
  int killed_mid_write = 0;
  for (uint64_t at : {uint64_t{0}, uint64_t{1} << 20, uint64_t{64} << 20, uint64_t{256} << 20}) {
    const pid_t pid = Spawn({"make-model", "--preset", "qwen3-0.6b", "--out", out, "--force"});
    killed_mid_write += KillWhenWritten(pid, weights, at);
    // The old file, whole, is still there; so is the rest of the old folder.
    EXPECT_TRUE(test::ReadBytes(weights) == old_weights) << "killed after " << at << " bytes";
    EXPECT_TRUE(test::ReadBytes(out + "/config.json") == old_config);
    // The temporary stays behind (nothing runs after SIGKILL), but under a name that is
    // not *.safetensors, so the loader never mistakes it for a shard.
    EXPECT_THAT(SafetensorsFiles(out), ::testing::ElementsAre("model.safetensors"));
  }
  EXPECT_EQ(killed_mid_write, 4) << "every kill should land while the file was being written";
  r = test::RunOko("info -m '" + out + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("qwen3"));
}

TEST(AtomicWriteTest, KilledMakeModelIntoANewFolderLeavesNoWeights) {
  const std::string out = test::TempDir("kill_new_model") + "/model";
  const pid_t pid = Spawn({"make-model", "--preset", "qwen3-0.6b", "--out", out, "--force"});
  EXPECT_TRUE(KillWhenWritten(pid, out + "/model.safetensors", uint64_t{16} << 20));
  EXPECT_FALSE(fs::exists(out + "/model.safetensors"));
  EXPECT_TRUE(SafetensorsFiles(out).empty());
  // No weights: a clear error, not a half-read file.
  const auto r = test::RunOko("info -m '" + out + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("config.json: missing"));
}

TEST(AtomicWriteTest, KilledTraceLeavesTheOldTraceWhole) {
  const std::string dir = test::TempDir("kill_trace");
  const std::string trace = dir + "/t.safetensors";
  const std::string model = test::SharedPath("models/tiny-qwen3");
  auto r = test::RunOko("trace -m '" + model + "' -t 1 --ids 1,2,3 --out '" + trace + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string old_trace = test::ReadBytes(trace);
  // 1500 positions x 4 layers x 4 heads, f32: a 144 MB trace, killed while it is written.
  std::string ids;
  for (int i = 0; i < 1500; ++i) ids += (i ? "," : "") + std::to_string(100 + i);
  const pid_t pid = Spawn({"trace", "-m", model, "-t", "1", "--ids", ids, "--out", trace});
  EXPECT_TRUE(KillWhenWritten(pid, trace, uint64_t{8} << 20));
  EXPECT_TRUE(test::ReadBytes(trace) == old_trace);
  r = test::RunOko("trace --diff '" + trace + "' '" + trace + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// DESIGN.md: 2 is bad input, 3 a runtime failure. A destination that cannot be written is
// not the input's fault: exit 3, and the message names the file.
TEST(AtomicWriteTest, UnwritableDestinationExitsWithThree) {
  const std::string dir = test::TempDir("unwritable");
  const std::string missing = dir + "/no/such/folder";
  auto r = test::RunOko("logits -m '" + test::SharedPath("models/stories260k") + "' -t 1 --ids 1,2 --out '" +
                        missing + "/l.npy'");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr(missing + "/l.npy: cannot write"));
  EXPECT_FALSE(fs::exists(missing));

  r = test::RunOko("trace -m '" + test::SharedPath("models/stories260k") + "' -t 1 --ids 1,2 --out '" + missing +
                   "/t.safetensors'");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr(missing + "/t.safetensors: cannot write"));
}

}  // namespace
}  // namespace oko
