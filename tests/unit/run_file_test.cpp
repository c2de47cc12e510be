// The HDF5 run file: round trips through our reader, h5dump and h5py; SWMR reads while a writer
// process appends; a SIGKILLed writer's file; resume truncation; errors that name file and dataset.
#include "bbt/io/run_file.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bbt/common/error.hpp"
#include "bbt/io/h5.hpp"

namespace {

using bbt::io::DType;
using bbt::io::IfExists;
using bbt::io::RunFileLayout;
using bbt::io::RunFileReader;
using bbt::io::RunFileWriter;

const char* const kPython = "/usr/bin/python3";

std::vector<std::string>& temp_dirs() {
  static std::vector<std::string> dirs;
  return dirs;
}

// Removes the temporary directories once all tests have run.
class TempDirCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    for (const auto& dir : temp_dirs()) std::filesystem::remove_all(dir);
  }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new TempDirCleanup);

// A fresh directory per test, so tests never see each other's files.
std::string make_temp_dir() {
  std::string pattern = ::testing::TempDir() + "bbt_run_file_XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  temp_dirs().emplace_back(buf.data());
  return temp_dirs().back();
}

struct CommandResult {
  int status = -1;
  std::string output;  // stdout and stderr
};

CommandResult run_command(const std::string& command) {
  CommandResult r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  const int raw = pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

// Runs a Python snippet (h5py) with the file path as sys.argv[1].
CommandResult run_python(const std::string& script, const std::string& file) {
  const std::string dir = make_temp_dir();
  const std::string script_path = dir + "/check.py";
  std::ofstream(script_path) << script;
  return run_command(std::string(kPython) + " " + script_path + " " + file);
}

std::vector<double> parse_numbers(const std::string& text) {
  std::vector<double> out;
  std::string token;
  std::istringstream in(text);
  while (std::getline(in, token, ',')) {
    std::istringstream t(token);
    double v;
    if (t >> v) out.push_back(v);
  }
  return out;
}

// The layout the trainer will use, shrunk: lambda = 3, d = 4.
RunFileLayout small_layout() {
  RunFileLayout layout;
  layout.int_attr("format_version", 1)
      .string_attr("config", "[task]\nname = sst2\n[cma]\npopsize = 3\n# ünïcode ok\n")
      .string_attr("command_line", "bbt train --config x.ini")
      .int_attr("n_ranks", 2)
      .double_attr("sigma0", 0.5)
      .add_series("/train/generation", DType::kInt64)
      .add_series("/train/loss", DType::kFloat64, {3})
      .add_series("/train/best_loss", DType::kFloat64)
      .add_series("/dev/generation", DType::kInt64)
      .add_series("/dev/metric", DType::kFloat64)
      .add_fixed("/best/z", DType::kFloat64, {4})
      .add_fixed("/best/generation", DType::kInt64)
      .add_fixed("/checkpoint/covariance", DType::kFloat64, {4, 4})
      .add_fixed("/test/metric", DType::kFloat64);
  return layout;
}

// Row g of /train/loss, so any reader can check what it sees.
std::vector<double> loss_row(long g) { return {g + 0.25, g + 0.5, g + 0.75}; }

void append_generation(RunFileWriter& w, long g) {
  w.append("/train/generation", g);
  w.append("/train/loss", loss_row(g));
  w.append("/train/best_loss", static_cast<double>(g) / 3.0);
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const bbt::Error& e) {
    return e.what();
  }
  return "(no bbt::Error thrown)";
}

TEST(RunFile, RoundTripThroughOurReader) {
  const std::string path = make_temp_dir() + "/run.h5";
  {
    RunFileWriter w = RunFileWriter::create(path, small_layout());
    for (long g = 0; g < 5; ++g) append_generation(w, g);
    w.append("/dev/generation", 4);
    w.append("/dev/metric", 0.875);
    w.write("/best/z", std::vector<double>{1, -2, 3.5, 1e-300});
    w.write("/best/generation", 3);
    std::vector<double> cov(16);
    for (int i = 0; i < 16; ++i) cov[i] = i * 0.5;
    w.write("/checkpoint/covariance", cov);
    EXPECT_EQ(w.rows("/train/loss"), 5);
    EXPECT_EQ(w.rows("/dev/metric"), 1);
    w.flush();
    w.close();
  }
  RunFileReader r(path);
  EXPECT_EQ(r.int_attribute("format_version"), 1);
  EXPECT_EQ(r.int_attribute("n_ranks"), 2);
  EXPECT_EQ(r.double_attribute("sigma0"), 0.5);
  EXPECT_EQ(r.double_attribute("n_ranks"), 2.0);
  EXPECT_EQ(r.string_attribute("config"), "[task]\nname = sst2\n[cma]\npopsize = 3\n# ünïcode ok\n");
  EXPECT_TRUE(r.has_attribute("command_line"));
  EXPECT_FALSE(r.has_attribute("nope"));
  EXPECT_EQ(r.attribute_names().size(), 5u);

  const std::vector<std::string> expected{"/best/generation", "/best/z",           "/checkpoint/covariance",
                                          "/dev/generation",  "/dev/metric",       "/test/metric",
                                          "/train/best_loss", "/train/generation", "/train/loss"};
  EXPECT_EQ(r.datasets(), expected);
  EXPECT_TRUE(r.exists("/train"));
  EXPECT_TRUE(r.exists("/train/loss"));
  EXPECT_FALSE(r.exists("/train/nope"));
  EXPECT_FALSE(r.exists("/nope/loss"));

  const auto loss = r.read_double("/train/loss");
  ASSERT_EQ(loss.shape, (std::vector<std::size_t>{5, 3}));
  EXPECT_EQ(loss.rows(), 5u);
  for (long g = 0; g < 5; ++g)
    for (int j = 0; j < 3; ++j) EXPECT_EQ(loss.values[g * 3 + j], loss_row(g)[j]);
  const auto gen = r.read_int64("/train/generation");
  EXPECT_EQ(gen.values, (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(r.dtype("/train/generation"), DType::kInt64);
  EXPECT_EQ(r.dtype("/train/loss"), DType::kFloat64);
  EXPECT_EQ(r.read_double("/train/generation").values, (std::vector<double>{0, 1, 2, 3, 4}));
  EXPECT_EQ(r.read_double("/best/z").values, (std::vector<double>{1, -2, 3.5, 1e-300}));
  EXPECT_EQ(r.read_int64_scalar("/best/generation"), 3);
  EXPECT_TRUE(r.shape("/best/generation").empty());
  EXPECT_EQ(r.shape("/checkpoint/covariance"), (std::vector<std::size_t>{4, 4}));
  EXPECT_EQ(r.read_double("/checkpoint/covariance").values[15], 7.5);
  EXPECT_EQ(r.read_double_scalar("/dev/metric"), 0.875);
  // Never written: reads as the documented "not yet" fill value.
  EXPECT_TRUE(std::isnan(r.read_double_scalar("/test/metric")));
}

TEST(RunFile, UnwrittenIntDatasetReadsMinusOne) {
  const std::string path = make_temp_dir() + "/run.h5";
  RunFileWriter::create(path, small_layout()).close();
  EXPECT_EQ(RunFileReader(path).read_int64_scalar("/best/generation"), -1);
  EXPECT_EQ(RunFileReader(path).read_int64("/train/generation").shape, (std::vector<std::size_t>{0}));
}

TEST(RunFile, Float32DatasetsKeepTheirBits) {
  const std::string path = make_temp_dir() + "/run.h5";
  RunFileLayout layout = small_layout();
  layout.add_fixed("/checkpoint/weights", DType::kFloat32, {2, 3});
  layout.add_fixed("/checkpoint/moments", DType::kFloat32, {2});
  const std::vector<float> w = {1.0f / 3.0f, -2.5e-8f, 3.4e38f, 0.0f, -0.0f, 7.0f};
  {
    RunFileWriter writer = RunFileWriter::create(path, layout);
    EXPECT_NE(error_of([&] { writer.write("/checkpoint/weights", std::vector<double>(6, 1.0)); })
                  .find("/checkpoint/weights: is a float32 dataset, got float64 values"),
              std::string::npos);
    EXPECT_NE(error_of([&] { writer.write("/best/generation", w.data(), 1); }).find("int64 dataset, got float32"),
              std::string::npos);
    // float32 values widen exactly into a float64 dataset.
    writer.write("/best/z", w.data(), 4);
    writer.write("/checkpoint/weights", w.data(), w.size());
  }
  RunFileReader r(path);
  EXPECT_EQ(r.dtype("/checkpoint/weights"), DType::kFloat32);
  EXPECT_TRUE(std::isnan(r.read_float("/checkpoint/moments").values[1]));  // never written
  const bbt::io::Array<float> a = r.read_float("/checkpoint/weights");
  EXPECT_EQ(a.shape, (std::vector<std::size_t>{2, 3}));
  ASSERT_EQ(a.values.size(), w.size());
  EXPECT_EQ(std::memcmp(a.values.data(), w.data(), sizeof(float) * w.size()), 0);
  EXPECT_EQ(r.read_double("/checkpoint/weights").values[0], static_cast<double>(w[0]));
  EXPECT_EQ(r.read_double("/best/z").values[1], static_cast<double>(w[1]));
  EXPECT_NE(error_of([&] { r.read_float("/best/z"); }).find("/best/z: holds no float32 values"), std::string::npos);
  const CommandResult header = run_command("h5dump -H -d /checkpoint/weights " + path);
  EXPECT_NE(header.output.find("H5T_IEEE_F32LE"), std::string::npos) << header.output;
}

TEST(RunFile, H5dumpReadsTheClosedFile) {
  const std::string dir = make_temp_dir();
  const std::string path = dir + "/run.h5";
  {
    RunFileWriter w = RunFileWriter::create(path, small_layout());
    for (long g = 0; g < 3; ++g) append_generation(w, g);
  }  // closed by the destructor
  const std::string out = dir + "/loss.txt";
  const CommandResult r = run_command("h5dump -d /train/loss -y -w 0 -m %.17g -o " + out + " " + path);
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream in(out);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(parse_numbers(text), (std::vector<double>{0.25, 0.5, 0.75, 1.25, 1.5, 1.75, 2.25, 2.5, 2.75}));
  const CommandResult header = run_command("h5dump -H -d /train/loss " + path);
  EXPECT_NE(header.output.find("( 3, 3 ) / ( H5S_UNLIMITED, 3 )"), std::string::npos) << header.output;
}

TEST(RunFile, H5pyReadsValuesAttributesAndChunks) {
  const std::string path = make_temp_dir() + "/run.h5";
  {
    RunFileLayout layout = small_layout();
    layout.add_fixed("/checkpoint/big", DType::kFloat64, {500, 500});
    layout.add_series("/train/wide", DType::kFloat64, {500});
    RunFileWriter w = RunFileWriter::create(path, layout);
    for (long g = 0; g < 70; ++g) append_generation(w, g);
    std::vector<double> big(500 * 500);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<double>(i);
    w.write("/checkpoint/big", big);
    w.append("/train/wide", std::vector<double>(500, 2.0));
    w.write("/test/metric", 0.9);
    w.close();
  }
  const CommandResult r = run_python(R"(
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], 'r')
loss = f['/train/loss']
assert loss.shape == (70, 3), loss.shape
assert loss.maxshape == (None, 3), loss.maxshape
assert loss.chunks == (64, 3), loss.chunks
g = np.arange(70)[:, None]
assert np.array_equal(loss[...], g + np.array([0.25, 0.5, 0.75])), loss[...]
assert f['/train/generation'].dtype == np.int64
assert list(f['/train/generation'][...]) == list(range(70))
assert f['/train/wide'].chunks[1] == 500 and f['/train/wide'].chunks[0] <= 64
big = f['/checkpoint/big'][...]
assert big.shape == (500, 500) and big[499, 499] == 500 * 500 - 1 and big[1, 2] == 502
assert f['/test/metric'][()] == 0.9
assert np.isnan(f['/best/z'][...]).all()
a = f.attrs
assert a['format_version'] == 1 and a['n_ranks'] == 2 and a['sigma0'] == 0.5
assert a['config'] == '[task]\nname = sst2\n[cma]\npopsize = 3\n# ünïcode ok\n', repr(a['config'])
f.close()
# Opening for SWMR reading works only on a latest-format file, which SWMR writing needs.
h5py.File(sys.argv[1], 'r', libver='latest', swmr=True).close()
print('ok')
)",
                                     path);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("ok"), std::string::npos) << r.output;
}

// A forked writer that appends (and flushes) generation after generation, reporting each flushed
// count on `report_fd`, until `max_rows`; sleeps `pause_ms` between rows. Never returns.
[[noreturn]] void writer_child(const std::string& path, int report_fd, long max_rows, int pause_ms) {
  try {
    RunFileWriter w = RunFileWriter::create(path, small_layout());
    for (long g = 0; g < max_rows; ++g) {
      append_generation(w, g);
      w.flush();
      const std::string line = std::to_string(g + 1) + "\n";
      if (::write(report_fd, line.data(), line.size()) < 0) _exit(3);
      if (pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    }
    w.close();
    _exit(0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "writer child: %s\n", e.what());
    _exit(2);
  }
}

// Reads newline-separated counts from `fd` until one reaches `target`; returns the last seen.
long wait_for_rows(int fd, long target) {
  std::string pending;
  long last = 0;
  char buf[256];
  while (last < target) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    pending.append(buf, static_cast<std::size_t>(n));
    std::size_t pos;
    while ((pos = pending.find('\n')) != std::string::npos) {
      last = std::stol(pending.substr(0, pos));
      pending.erase(0, pos + 1);
    }
  }
  return last;
}

struct Child {
  pid_t pid = -1;
  int read_fd = -1;
};

Child spawn_writer(const std::string& path, long max_rows, int pause_ms) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = fork();
  if (pid == 0) {
    ::close(fds[0]);
    writer_child(path, fds[1], max_rows, pause_ms);
  }
  ::close(fds[1]);
  return {pid, fds[0]};
}

void kill_and_reap(Child& child) {
  ::kill(child.pid, SIGKILL);
  int status = 0;
  waitpid(child.pid, &status, 0);
  ::close(child.read_fd);
}

TEST(RunFile, SigkilledWriterLeavesEveryFlushedGeneration) {
  const std::string path = make_temp_dir() + "/run.h5";
  const long kFlushed = 25;
  Child child = spawn_writer(path, 100000, 0);
  const long seen = wait_for_rows(child.read_fd, kFlushed);
  kill_and_reap(child);
  ASSERT_GE(seen, kFlushed) << "the writer died before flushing " << kFlushed << " rows";

  long rows = 0;
  {
    RunFileReader r(path);
    const auto loss = r.read_double("/train/loss");
    rows = static_cast<long>(loss.rows());
    ASSERT_GE(rows, seen);
    for (long g = 0; g < seen; ++g)
      for (int j = 0; j < 3; ++j) ASSERT_EQ(loss.values[g * 3 + j], loss_row(g)[j]) << "row " << g;
    EXPECT_EQ(r.string_attribute("command_line"), "bbt train --config x.ini");
  }
  const CommandResult py = run_python(R"(
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], 'r', libver='latest', swmr=True)
n = f['/train/loss'].shape[0]
g = np.arange(n)[:, None]
assert n >= )" + std::to_string(seen) + R"(, n
assert np.array_equal(f['/train/loss'][:)" +
                                          std::to_string(seen) + R"(], g[:)" + std::to_string(seen) +
                                          R"(] + np.array([0.25, 0.5, 0.75]))
print('ok', n)
)",
                                      path);
  EXPECT_EQ(py.status, 0) << py.output;

  // Tools without SWMR (h5dump) need the killed writer's status flags cleared first, on a copy.
  const std::string copy = path + ".copy.h5";
  std::filesystem::copy_file(path, copy);
  const CommandResult cleared = run_command("h5clear -s " + copy + " && h5dump -H -d /train/loss " + copy);
  EXPECT_EQ(cleared.status, 0) << cleared.output;

  // The trainer's resume: cut back to the checkpointed generation, go on, close cleanly.
  const long keep = seen - 5;
  {
    RunFileWriter w = RunFileWriter::open_for_resume(path, {{"/train", keep}});
    EXPECT_EQ(w.rows("/train/loss"), keep);
    EXPECT_EQ(w.rows("/train/generation"), keep);
    append_generation(w, 1000);
    w.close();
  }
  RunFileReader r(path);
  const auto gen = r.read_int64("/train/generation");
  ASSERT_EQ(gen.values.size(), static_cast<std::size_t>(keep + 1));
  EXPECT_EQ(gen.values[keep - 1], keep - 1);
  EXPECT_EQ(gen.values[keep], 1000);
  // Closed cleanly, so even tools without SWMR read it again.
  const CommandResult dump = run_command("h5dump -H " + path);
  EXPECT_EQ(dump.status, 0) << dump.output;
}

TEST(RunFile, SwmrReadersSeeTheSeriesGrowWhileTheWriterRuns) {
  const std::string path = make_temp_dir() + "/run.h5";
  Child child = spawn_writer(path, 4000, 2);
  ASSERT_GE(wait_for_rows(child.read_fd, 1), 1);

  // Our reader, held open across appends: each read sees the rows flushed by then.
  std::size_t first = 0, second = 0;
  {
    RunFileReader r(path);
    first = r.read_double("/train/loss").rows();
    wait_for_rows(child.read_fd, static_cast<long>(first) + 20);
    const auto loss = r.read_double("/train/loss");
    second = loss.rows();
    for (std::size_t g = 0; g < second; ++g) ASSERT_EQ(loss.values[g * 3], g + 0.25) << "row " << g;
  }
  EXPECT_GE(first, 1u);
  EXPECT_GE(second, first + 20);

  // h5py with swmr=True, refreshing until it has watched the series grow several times.
  const CommandResult py = run_python(R"(
import sys, time, h5py, numpy as np
f = h5py.File(sys.argv[1], 'r', libver='latest', swmr=True)
ds = f['/train/loss']
sizes = []
deadline = time.time() + 20
while len(set(sizes)) < 4 and time.time() < deadline:
    ds.refresh()
    n = ds.shape[0]
    data = ds[:n]
    g = np.arange(n)[:, None]
    assert np.array_equal(data, g + np.array([0.25, 0.5, 0.75])), (n, data[-3:])
    sizes.append(n)
    time.sleep(0.05)
assert len(set(sizes)) >= 4 and sizes == sorted(sizes), sizes
print('ok', sizes)
)",
                                      path);
  kill_and_reap(child);
  EXPECT_EQ(py.status, 0) << py.output;
}

TEST(RunFile, ReaderOpensFilesOtherToolsWrote) {
  // h5py's default (non-latest) format cannot be opened SWMR; fixed-length string attributes.
  const std::string path = make_temp_dir() + "/other.h5";
  const CommandResult py = run_python(R"(
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], 'w') as f:
    f.attrs['task'] = np.bytes_(b'sst2')
    f.attrs['seed'] = np.int32(13)
    f.create_dataset('/test/metric', data=np.float32(0.5))
    f.create_dataset('/data/train_index', data=np.array([3, 1, 2], dtype=np.int32))
)",
                                      path);
  ASSERT_EQ(py.status, 0) << py.output;
  RunFileReader r(path);
  EXPECT_EQ(r.string_attribute("task"), "sst2");
  EXPECT_EQ(r.int_attribute("seed"), 13);
  EXPECT_EQ(r.read_double_scalar("/test/metric"), 0.5);
  EXPECT_EQ(r.read_int64("/data/train_index").values, (std::vector<std::int64_t>{3, 1, 2}));
}

TEST(RunFile, ResumeTruncatesSeriesPerGroupOrPath) {
  const std::string path = make_temp_dir() + "/run.h5";
  {
    RunFileWriter w = RunFileWriter::create(path, small_layout());
    for (long g = 0; g < 10; ++g) append_generation(w, g);
    for (long k = 0; k < 3; ++k) {
      w.append("/dev/generation", k * 4);
      w.append("/dev/metric", k * 0.1);
    }
    w.write("/best/generation", 7);
  }
  EXPECT_NE(error_of([&] {
              RunFileWriter::open_for_resume(path, {{"/train", 11}});
            }).find("fewer than"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              RunFileWriter::open_for_resume(path, {{"/nope", 1}});
            }).find("no series at or under /nope"),
            std::string::npos);
  {
    // "/dev/metric" is more specific than "/dev", so it wins for that series.
    RunFileWriter w = RunFileWriter::open_for_resume(path, {{"/train/", 6}, {"/dev", 2}, {"/dev/metric", 1}});
    EXPECT_EQ(w.rows("/train/loss"), 6);
    EXPECT_EQ(w.rows("/train/best_loss"), 6);
    EXPECT_EQ(w.rows("/dev/generation"), 2);
    EXPECT_EQ(w.rows("/dev/metric"), 1);
    append_generation(w, 6);
    w.close();
  }
  {
    RunFileReader r(path);
    const auto loss = r.read_double("/train/loss");
    ASSERT_EQ(loss.rows(), 7u);
    for (long g = 0; g < 7; ++g) EXPECT_EQ(loss.values[g * 3 + 2], loss_row(g)[2]);
    EXPECT_EQ(r.read_int64("/dev/generation").values, (std::vector<std::int64_t>{0, 4}));
    EXPECT_EQ(r.read_int64_scalar("/best/generation"), 7);  // fixed datasets are untouched
  }
  {
    RunFileWriter w = RunFileWriter::open_for_resume(path, {});
    EXPECT_EQ(w.rows("/train/loss"), 7);  // nothing named: nothing cut
  }
}

TEST(RunFile, ErrorsNameTheFileAndTheDataset) {
  const std::string dir = make_temp_dir();
  const std::string missing = dir + "/missing.h5";
  EXPECT_NE(error_of([&] { RunFileReader r(missing); }).find(missing + ": no such file"), std::string::npos);

  const std::string text = dir + "/text.h5";
  std::ofstream(text) << "this is not HDF5\n";
  EXPECT_NE(error_of([&] { RunFileReader r(text); }).find(text + " is not an HDF5 file"), std::string::npos);
  EXPECT_NE(error_of([&] { RunFileWriter::open_for_resume(text, {}); }).find("not an HDF5 file"),
            std::string::npos);

  const std::string path = dir + "/run.h5";
  {
    RunFileWriter w = RunFileWriter::create(path, small_layout());
    const std::string wrong_size = error_of([&] { w.append("/train/loss", std::vector<double>{1, 2}); });
    EXPECT_NE(wrong_size.find(path), std::string::npos) << wrong_size;
    EXPECT_NE(wrong_size.find("/train/loss: a row holds 3 values, got 2"), std::string::npos) << wrong_size;
    EXPECT_NE(error_of([&] { w.append("/train/generation", 1.5); }).find("int64 dataset, got float64"),
              std::string::npos);
    EXPECT_NE(error_of([&] { w.append("/train/nope", 1.0); }).find("no series dataset /train/nope"),
              std::string::npos);
    EXPECT_NE(error_of([&] { w.append("/best/z", 1.0); }).find("(it is a fixed dataset)"), std::string::npos);
    EXPECT_NE(error_of([&] { w.write("/best/z", 1.0); }).find("shape [4] holds 4 values, got 1"),
              std::string::npos);
    // A failed call leaves the writer usable.
    w.append("/train/best_loss", 2);
    EXPECT_EQ(w.rows("/train/best_loss"), 1);
  }
  const std::string exists = error_of([&] { RunFileWriter::create(path, small_layout()); });
  EXPECT_NE(exists.find(path + " already exists"), std::string::npos) << exists;
  RunFileWriter::create(path, small_layout(), IfExists::kOverwrite).close();

  RunFileReader r(path);
  const std::string no_dataset = error_of([&] { r.read_double("/train/lossy"); });
  EXPECT_EQ(no_dataset, "run file " + path + ": no dataset /train/lossy");
  EXPECT_NE(error_of([&] { r.read_double("/nope/x"); }).find("no dataset /nope/x"), std::string::npos);
  EXPECT_NE(error_of([&] { r.read_double("/train"); }).find("no dataset /train"), std::string::npos);
  EXPECT_NE(
      error_of([&] { r.read_int64("/train/loss"); }).find("/train/loss: holds float64 values, not int64"),
      std::string::npos);
  EXPECT_NE(error_of([&] { r.read_double_scalar("/best/z"); }).find("expected one value, found 4"),
            std::string::npos);
  EXPECT_NE(error_of([&] { r.string_attribute("nope"); }).find("no attribute nope"), std::string::npos);
  EXPECT_NE(error_of([&] { r.int_attribute("config"); }).find("attribute config: is not an integer"),
            std::string::npos);
  EXPECT_NE(error_of([&] { r.int_attribute("sigma0"); }).find("is not an integer"), std::string::npos);
}

// A live writer holds RUN.h5.lock ("host pid"): a second writer is refused naming both; a lock
// file whose lock nobody holds (a killed job's) is taken over; a clean close removes it.
TEST(RunFile, ASecondWriterIsRefusedWhileTheFirstLives) {
  const std::string path = make_temp_dir() + "/run.h5";
  const std::string lock = path + ".lock";
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  const std::string holder = "host " + std::string(host) + ", pid " + std::to_string(getpid());
  {
    RunFileWriter w = RunFileWriter::create(path, small_layout());
    append_generation(w, 0);
    w.flush();
    const std::string second = error_of([&] { RunFileWriter::open_for_resume(path, {}); });
    EXPECT_EQ(second, "run file " + path + " is being written by another job (" + holder +
                          "); wait for it to end or stop it first (lock " + lock + ")");
    EXPECT_NE(error_of([&] { RunFileWriter::create(path, small_layout(), IfExists::kOverwrite); })
                  .find("is being written by another job (" + holder),
              std::string::npos);
    w.close();
  }
  EXPECT_NE(access(lock.c_str(), F_OK), 0) << "a clean close removes the lock file";
  std::ofstream(lock) << "gone-host 12345\n";  // stale: nobody holds its lock
  {
    RunFileWriter w = RunFileWriter::open_for_resume(path, {});
    EXPECT_EQ(w.rows("/train/loss"), 1);
    std::ifstream in(lock);
    std::string h, pid;
    in >> h >> pid;
    EXPECT_EQ(h + " " + pid, std::string(host) + " " + std::to_string(getpid()));
  }
  EXPECT_NE(access(lock.c_str(), F_OK), 0);
}

// HDF5's own text may span lines (its sec2 driver puts ctime()'s newline into "file write failed:
// time = ..., filename = ..."); the error built from it must still be one line.
TEST(RunFile, ErrorsFromHdf5sStackAreOneLine) {
  bbt::io::h5::silence_errors();
  H5Eclear2(H5E_DEFAULT);
  H5Epush2(H5E_DEFAULT, __FILE__, "write", __LINE__, H5E_ERR_CLS, H5E_IO, H5E_WRITEERROR,
           "file write failed: time = %s, filename = '%s', errno = 28, error message = '%s'",
           "Wed Dec  2 04:56:07 2026\n", "run.h5", "No space left on device");
  H5Epush2(H5E_DEFAULT, __FILE__, "flush", __LINE__, H5E_ERR_CLS, H5E_IO, H5E_WRITEERROR,
           "driver write request failed\r\n");
  const std::string message = error_of([] { bbt::io::h5::check(-1, "run file run.h5: flushing"); });
  EXPECT_EQ(message.find_first_of("\r\n"), std::string::npos) << message;
  EXPECT_EQ(message,
            "run file run.h5: flushing (HDF5: file write failed: time = Wed Dec 2 04:56:07 2026, filename = "
            "'run.h5', errno = 28, error message = 'No space left on device'; driver write request failed)");
}

TEST(RunFile, BadLayoutsAreRefusedBeforeAnyFileIsMade) {
  const std::string path = make_temp_dir() + "/run.h5";
  RunFileLayout dup = small_layout();
  dup.add_fixed("/train/loss", DType::kFloat64);
  EXPECT_NE(error_of([&] { RunFileWriter::create(path, dup); }).find("/train/loss declared twice"),
            std::string::npos);
  RunFileLayout nested = small_layout();
  nested.add_fixed("/best/z/x", DType::kFloat64);
  EXPECT_NE(error_of([&] { RunFileWriter::create(path, nested); }).find("both a dataset and the group"),
            std::string::npos);
  RunFileLayout relative;
  relative.add_series("train/loss", DType::kFloat64);
  EXPECT_NE(error_of([&] { RunFileWriter::create(path, relative); }).find("bad dataset path 'train/loss'"),
            std::string::npos);
  RunFileLayout zero;
  zero.add_series("/a", DType::kFloat64, {0});
  EXPECT_NE(error_of([&] { RunFileWriter::create(path, zero); }).find("zero extent"), std::string::npos);
  EXPECT_NE(access(path.c_str(), F_OK), 0);
}

}  // namespace
