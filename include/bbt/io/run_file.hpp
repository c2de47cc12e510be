#pragma once
// The HDF5 run file (DESIGN.md "Run file"): one per run, written by rank 0 with SWMR so it can be
// read (h5py swmr=True, RunFileReader) while the job runs, and a killed job leaves every flushed
// generation readable. HDF5 1.10 SWMR forbids creating objects once SWMR writing has started, so
// the whole layout is declared up front in a RunFileLayout and created by RunFileWriter::create.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace bbt::io {

// Element type of a run-file dataset (stored little-endian: IEEE f64 / i64 / f32). float32 is for
// large fixed arrays held in float32 anyway (model tuning's checkpointed weights).
enum class DType { kFloat64, kInt64, kFloat32 };

// An extendible dataset that gains one row per append: shape [rows, row_shape...], chunked along
// rows. row_shape {} gives a 1-D series of scalars, {lambda} a [G x lambda] array.
struct SeriesSpec {
  std::string path;  // absolute, e.g. "/train/loss"; parent groups are created
  DType dtype = DType::kFloat64;
  std::vector<std::size_t> row_shape;
};

// A fixed-shape dataset, allocated at creation and (over)written later with RunFileWriter::write.
// Until written it reads NaN (kFloat64) or -1 (kInt64), so a reader can tell "not yet".
struct FixedSpec {
  std::string path;  // e.g. "/checkpoint/covariance"
  DType dtype = DType::kFloat64;
  std::vector<std::size_t> shape;  // {} = scalar, {d}, {d, d}, ...
};

// Everything the run file will ever contain. Root attributes are written once at creation and
// are immutable afterwards (SWMR); anything that changes later must be a fixed dataset.
struct RunFileLayout {
  std::vector<std::pair<std::string, std::string>> string_attrs;
  std::vector<std::pair<std::string, std::int64_t>> int_attrs;
  std::vector<std::pair<std::string, double>> double_attrs;
  std::vector<SeriesSpec> series;
  std::vector<FixedSpec> fixed;
  // Rows per chunk of a series (capped so that one chunk stays near 1 MiB for wide rows).
  std::size_t rows_per_chunk = 64;

  // Builder-style helpers; distinct names because `int_attr("n", 4)` must not be ambiguous.
  RunFileLayout& string_attr(const std::string& name, const std::string& value);
  RunFileLayout& int_attr(const std::string& name, std::int64_t value);
  RunFileLayout& double_attr(const std::string& name, double value);
  RunFileLayout& add_series(const std::string& path, DType dtype, std::vector<std::size_t> row_shape = {});
  RunFileLayout& add_fixed(const std::string& path, DType dtype, std::vector<std::size_t> shape = {});
};

// What RunFileWriter::create does when the file already exists.
enum class IfExists { kFail, kOverwrite };

// The single writer (rank 0). Move-only; the destructor closes the file (errors swallowed), call
// close() to see them. Every failure is a bbt::Error naming the file and the dataset. While open it
// holds RUN.h5.lock ("host pid", an fcntl lock that dies with the process): a second writer of the
// same file, in any process on any node sharing the file system, is refused naming host and pid.
// After a failed HDF5 write (disk full) the writer writes nothing more and leaves the file as last
// flushed, as a killed job would.
class RunFileWriter {
 public:
  // Creates the file with the latest HDF5 format, all groups, datasets and root attributes of
  // `layout`, then starts SWMR writing. Refuses an existing file unless kOverwrite.
  static RunFileWriter create(const std::string& path, const RunFileLayout& layout,
                              IfExists if_exists = IfExists::kFail);

  // Reopens an existing run file (also one left behind by a killed job: its SWMR status flags
  // are cleared, as `h5clear -s` would) and truncates series before starting SWMR writing again.
  // Each key of `keep_rows` is a series path ("/dev/loss") or a group ("/train"): every series at
  // or under it keeps its first N rows (the longest matching key wins); other series are kept
  // whole. A series holding fewer than N rows is an error. A file that a live writer holds is
  // refused (its lock); no RunFileReader of this process may have the file open.
  // `set_string_attrs` are root string attributes written (replacing any of the same name)
  // before SWMR writing starts.
  static RunFileWriter open_for_resume(const std::string& path, const std::map<std::string, long>& keep_rows,
                                       const std::vector<std::pair<std::string, std::string>>& set_string_attrs = {});

  RunFileWriter(RunFileWriter&&) noexcept;
  RunFileWriter& operator=(RunFileWriter&&) noexcept;
  ~RunFileWriter();

  // Appends one row to a series: `n` must equal the row's element count (1 for scalars).
  // int64 values may go into a float64 series; doubles into an int64 series are refused.
  // Not visible to readers (nor safe from a kill) until flush().
  void append(const std::string& series, const double* values, std::size_t n);
  void append(const std::string& series, const std::int64_t* values, std::size_t n);
  void append(const std::string& series, const std::vector<double>& values) {
    append(series, values.data(), values.size());
  }
  void append(const std::string& series, const std::vector<std::int64_t>& values) {
    append(series, values.data(), values.size());
  }
  void append(const std::string& series, double value) { append(series, &value, 1); }
  void append(const std::string& series, std::int64_t value) { append(series, &value, 1); }
  // Any other integer type (int, std::size_t, ...) as int64, so `append("/train/generation", g)`
  // is never ambiguous.
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, std::int64_t>, int> = 0>
  void append(const std::string& series, T value) {
    append(series, static_cast<std::int64_t>(value));
  }

  // Overwrites a whole fixed dataset: `n` must equal its element count. Same dtype rules.
  void write(const std::string& fixed, const double* values, std::size_t n);
  void write(const std::string& fixed, const std::int64_t* values, std::size_t n);
  void write(const std::string& fixed, const float* values, std::size_t n);  // float32 or float64 datasets
  void write(const std::string& fixed, const std::vector<double>& values) {
    write(fixed, values.data(), values.size());
  }
  void write(const std::string& fixed, const std::vector<std::int64_t>& values) {
    write(fixed, values.data(), values.size());
  }
  void write(const std::string& fixed, double value) { write(fixed, &value, 1); }
  void write(const std::string& fixed, std::int64_t value) { write(fixed, &value, 1); }
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, std::int64_t>, int> = 0>
  void write(const std::string& fixed, T value) {
    write(fixed, static_cast<std::int64_t>(value));
  }

  // Makes everything appended/written so far durable and visible to SWMR readers (H5Fflush).
  void flush();
  // Number of rows a series holds now (including unflushed appends).
  long rows(const std::string& series) const;
  bool has_series(const std::string& path) const;
  bool has_fixed(const std::string& path) const;
  const std::string& path() const;
  // Flushes and closes; afterwards the file is an ordinary HDF5 file (h5dump reads it). Idempotent.
  void close();

 private:
  struct Impl;
  explicit RunFileWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Renames a run file that holds nothing worth resuming (a failed start) to PATH.partial-<time>
// (a suffix added if that exists) under its writer lock, so a file a live job writes is refused;
// returns the new name.
std::string set_aside(const std::string& path);

// Whether a live process writes `run_path` now (holds its writer lock): "host H, pid P", or "" when
// none does (no lock file, or a stale one a killed job left). Takes no lock itself.
std::string live_writer(const std::string& run_path);

// An N-dimensional array read from a run file, row-major.
template <class T>
struct Array {
  std::vector<std::size_t> shape;  // {} for a scalar
  std::vector<T> values;
  // Extent of the first dimension (1 for a scalar).
  std::size_t rows() const { return shape.empty() ? 1 : shape[0]; }
};

// Read-only access for `bbt eval`, `bbt report` and resume. Opens with SWMR-read when the file
// allows it (a running or killed job's file), otherwise plainly. Every read sees the data flushed
// up to that moment. Errors name the file and the dataset or attribute.
class RunFileReader {
 public:
  explicit RunFileReader(const std::string& path);
  RunFileReader(RunFileReader&&) noexcept;
  RunFileReader& operator=(RunFileReader&&) noexcept;
  ~RunFileReader();

  const std::string& path() const;
  // True if a group or dataset exists at `object_path` ("/train", "/train/loss").
  bool exists(const std::string& object_path) const;
  // Every dataset path in the file, sorted ("/best/z", "/train/loss", ...).
  std::vector<std::string> datasets() const;

  // Root attributes.
  std::vector<std::string> attribute_names() const;
  bool has_attribute(const std::string& name) const;
  std::string string_attribute(const std::string& name) const;
  std::int64_t int_attribute(const std::string& name) const;  // refuses float attributes
  double double_attribute(const std::string& name) const;     // converts integer attributes

  std::vector<std::size_t> shape(const std::string& dataset) const;
  DType dtype(const std::string& dataset) const;
  Array<double> read_double(const std::string& dataset) const;       // converts int64 datasets
  Array<std::int64_t> read_int64(const std::string& dataset) const;  // refuses float datasets
  Array<float> read_float(const std::string& dataset) const;         // float32 datasets only
  double read_double_scalar(const std::string& dataset) const;       // a one-element dataset
  std::int64_t read_int64_scalar(const std::string& dataset) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bbt::io
