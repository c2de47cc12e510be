#include "bbt/io/run_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <set>

#include "bbt/common/error.hpp"
#include "bbt/io/h5.hpp"

namespace bbt::io {
namespace {

using h5::check;
using h5::Handle;

constexpr double kFloatFill = std::numeric_limits<double>::quiet_NaN();
constexpr std::int64_t kIntFill = -1;
// A chunk of a wide series stays near this size; the default 64 rows apply to narrow rows.
constexpr std::size_t kMaxChunkBytes = std::size_t{1} << 20;

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

hid_t file_type(DType dtype) {
  if (dtype == DType::kFloat32) return H5T_IEEE_F32LE;
  return dtype == DType::kFloat64 ? H5T_IEEE_F64LE : H5T_STD_I64LE;
}

// A run-file object path must be absolute and clean, since it doubles as an HDF5 link path.
void validate_object_path(const std::string& path, const std::string& file) {
  const bool ok =
      path.size() > 1 && path[0] == '/' && path.back() != '/' && path.find("//") == std::string::npos;
  if (!ok) throw Error("run file " + file + ": bad dataset path '" + path + "' (want e.g. /train/loss)");
}

std::size_t element_count(const std::vector<hsize_t>& dims) {
  std::size_t n = 1;
  for (hsize_t d : dims) n *= static_cast<std::size_t>(d);
  return n;
}

std::string shape_text(const std::vector<hsize_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

std::vector<hsize_t> dataspace_dims(hid_t space, std::vector<hsize_t>* maxdims, const std::string& context) {
  const int rank = H5Sget_simple_extent_ndims(space);
  check(rank, context);
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank)), max(static_cast<std::size_t>(rank));
  check(H5Sget_simple_extent_dims(space, dims.data(), max.data()), context);
  if (maxdims) *maxdims = max;
  return dims;
}

DType dtype_of(hid_t dataset, const std::string& context) {
  Handle type(H5Dget_type(dataset), context);
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls == H5T_FLOAT) return H5Tget_size(type.get()) == 4 ? DType::kFloat32 : DType::kFloat64;
  if (cls == H5T_INTEGER) return DType::kInt64;
  throw Error(context + ": neither a float nor an integer dataset");
}

Handle variable_string_type() {
  Handle type(H5Tcopy(H5T_C_S1), "copying the string type");
  check(H5Tset_size(type.get(), H5T_VARIABLE), "making a variable-length string type");
  check(H5Tset_cset(type.get(), H5T_CSET_UTF8), "making a UTF-8 string type");
  return type;
}

// Every hard link below the root, as absolute paths ("/train", "/train/loss").
std::vector<std::string> all_object_paths(hid_t file, const std::string& context) {
  std::vector<std::string> names;
  auto visit = [](hid_t, const char* name, const H5L_info_t* info, void* data) -> herr_t {
    if (info->type == H5L_TYPE_HARD)
      static_cast<std::vector<std::string>*>(data)->push_back("/" + std::string(name));
    return 0;
  };
  check(H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, visit, &names), context);
  return names;
}

bool is_dataset(hid_t file, const std::string& path) {
  const hid_t obj = H5Oopen(file, path.c_str(), H5P_DEFAULT);
  if (obj < 0) return false;
  Handle owned(obj, "opening " + path);
  return H5Iget_type(obj) == H5I_DATASET;
}

// True if every component of `path` exists as a link, without HDF5 errors for missing parents.
bool link_exists(hid_t file, const std::string& path) {
  if (path == "/") return true;
  if (path.empty() || path[0] != '/') return false;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    const std::string prefix = path.substr(0, pos);
    if (prefix.size() <= 1 || prefix.back() == '/') return false;
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return true;
}

// Keeps a second writer out of a live run: RUN.h5.lock holds "host pid" and is locked with fcntl
// (honoured across nodes by NFS and by Lustre mounted with -o flock) for the writer's lifetime. The
// kernel drops the lock when the process dies, so a killed job's lock file is stale and is taken over
// silently. Open-file-description locks, so that a second writer in the same process is refused too.
class WriterLock {
 public:
  WriterLock() = default;
  WriterLock(WriterLock&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}
  WriterLock& operator=(WriterLock&& other) noexcept {
    if (this != &other) {
      release();
      fd_ = std::exchange(other.fd_, -1);
      path_ = std::move(other.path_);
    }
    return *this;
  }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;
  ~WriterLock() { release(); }

  // Locks `run_path`.lock or throws bbt::Error naming host and pid of the live writer.
  static WriterLock acquire(const std::string& run_path);

  // Removes the lock file while still holding the lock (so nobody takes over a file about to
  // vanish; acquire checks that the file it locked is still the one at the path), then unlocks.
  void release() noexcept {
    if (fd_ < 0) return;
    ::unlink(path_.c_str());
    ::close(std::exchange(fd_, -1));
  }

 private:
  WriterLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

// "host vm3, pid 4711" from the lock file's "vm3 4711".
std::string lock_holder(int fd) {
  char buf[512];
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string text = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  text.erase(std::find_if(text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r'; }), text.end());
  const std::size_t space = text.rfind(' ');
  if (space == std::string::npos || space == 0) return "host and pid not recorded yet";
  return "host " + text.substr(0, space) + ", pid " + text.substr(space + 1);
}

// Tries the lock on `fd`: 0 when taken, else errno.
int try_lock(int fd) {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (::fcntl(fd, F_OFD_SETLK, &fl) == 0) return 0;
  // Kernels and file systems without open-file-description locks: classic per-process locks.
  if (errno == EINVAL && ::fcntl(fd, F_SETLK, &fl) == 0) return 0;
  return errno;
}

WriterLock WriterLock::acquire(const std::string& run_path) {
  const std::string path = run_path + ".lock";
  const std::string ctx = "run file " + run_path + ": writer lock " + path;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw Error(ctx + ": cannot create it: " + std::strerror(errno));
    const int err = try_lock(fd);
    if (err == EACCES || err == EAGAIN) {
      const std::string holder = lock_holder(fd);
      ::close(fd);
      throw Error("run file " + run_path + " is being written by another job (" + holder +
                  "); wait for it to end or stop it first (lock " + path + ")");
    }
    // A file system that keeps no locks (Lustre without -o flock): run unguarded, as before.
    const bool unsupported = err == ENOSYS || err == ENOLCK || err == EOPNOTSUPP;
    if (err != 0 && !unsupported) {
      ::close(fd);
      throw Error(ctx + ": cannot lock it: " + std::strerror(err));
    }
    struct stat locked {}, current {};
    const bool same = ::fstat(fd, &locked) == 0 && ::stat(path.c_str(), &current) == 0 &&
                      locked.st_dev == current.st_dev && locked.st_ino == current.st_ino;
    if (!same) {  // its previous holder removed it between our open and our lock: start again
      ::close(fd);
      continue;
    }
    char host[256] = "unknown";
    ::gethostname(host, sizeof host - 1);
    const std::string text = std::string(host) + " " + std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
      const int write_err = errno;
      ::close(fd);
      throw Error(ctx + ": cannot write it: " + std::strerror(write_err));
    }
    return WriterLock(fd, path);
  }
  throw Error(ctx + ": it keeps being replaced by other jobs");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// RunFileLayout

RunFileLayout& RunFileLayout::string_attr(const std::string& name, const std::string& value) {
  string_attrs.emplace_back(name, value);
  return *this;
}
RunFileLayout& RunFileLayout::int_attr(const std::string& name, std::int64_t value) {
  int_attrs.emplace_back(name, value);
  return *this;
}
RunFileLayout& RunFileLayout::double_attr(const std::string& name, double value) {
  double_attrs.emplace_back(name, value);
  return *this;
}
RunFileLayout& RunFileLayout::add_series(const std::string& path, DType dtype,
                                         std::vector<std::size_t> row_shape) {
  series.push_back({path, dtype, std::move(row_shape)});
  return *this;
}
RunFileLayout& RunFileLayout::add_fixed(const std::string& path, DType dtype,
                                        std::vector<std::size_t> shape) {
  fixed.push_back({path, dtype, std::move(shape)});
  return *this;
}

// ---------------------------------------------------------------------------------------------
// RunFileWriter

namespace {

// An open dataset of the writer with what append/write need to check their arguments.
struct OpenDataset {
  Handle dataset;
  DType dtype = DType::kFloat64;
  std::vector<hsize_t> dims;     // current full extent; for a series dims[0] is the row count
  std::size_t row_elements = 1;  // series: elements per row; fixed: elements in total
};

}  // namespace

struct RunFileWriter::Impl {
  WriterLock lock;  // declared first: released only after the file is closed
  std::string path;
  Handle file;  // declared before the datasets: destroyed after them
  std::map<std::string, OpenDataset> series;
  std::map<std::string, OpenDataset> fixed;
  // Set by the first failed HDF5 write or flush (disk full, I/O error). From then on nothing more
  // is written and the file is never closed: closing would retry the failed writes, and HDF5 cannot
  // close a dataset whose close has failed once. The file keeps what the last flush made durable,
  // as a killed job's file does, and resumes the same way.
  std::string failure;

  // A checked HDF5 call that writes to the file: its failure breaks the writer (see `failure`).
  void check_write(herr_t status, const std::string& context) {
    try {
      check(status, context);
    } catch (const Error& e) {
      failure = e.what();
      throw;
    }
  }

  void refuse_if_failed() const {
    if (!failure.empty())
      throw Error("run file " + path + ": not written to after an earlier failure (" + failure + ")");
  }

  ~Impl() {
    if (!failure.empty()) abandon();
  }

  // Drops every handle without closing it (see `failure`).
  void abandon() noexcept {
    for (auto* table : {&series, &fixed})
      for (auto& entry : *table) entry.second.dataset.abandon();
    file.abandon();
  }

  std::string where(const std::string& object) const { return "run file " + path + ", dataset " + object; }

  OpenDataset& find(std::map<std::string, OpenDataset>& table, const std::string& object, const char* kind) {
    auto it = table.find(object);
    if (it == table.end()) {
      const bool other = (&table == &series ? fixed : series).count(object) > 0;
      throw Error("run file " + path + ": no " + kind + " dataset " + object +
                  (other ? std::string(" (it is a ") + (&table == &series ? "fixed" : "series") + " dataset)"
                         : std::string(" in the layout")));
    }
    return it->second;
  }

  // Opens every dataset of the file and sorts it into series (unlimited first dimension) or fixed.
  void open_datasets() {
    for (const std::string& object : all_object_paths(file.get(), "run file " + path + ": listing objects")) {
      if (!is_dataset(file.get(), object)) continue;
      const std::string context = where(object);
      OpenDataset d;
      d.dataset = Handle(H5Dopen2(file.get(), object.c_str(), H5P_DEFAULT), context + ": opening");
      d.dtype = dtype_of(d.dataset.get(), context);
      Handle space(H5Dget_space(d.dataset.get()), context + ": getting the dataspace");
      std::vector<hsize_t> maxdims;
      d.dims = dataspace_dims(space.get(), &maxdims, context);
      const bool is_series = !maxdims.empty() && maxdims[0] == H5S_UNLIMITED;
      if (is_series) {
        d.row_elements = element_count(std::vector<hsize_t>(d.dims.begin() + 1, d.dims.end()));
        series.emplace(object, std::move(d));
      } else {
        d.row_elements = element_count(d.dims);
        fixed.emplace(object, std::move(d));
      }
    }
  }

  void start_swmr() {
    check_write(H5Fstart_swmr_write(file.get()), "run file " + path + ": starting SWMR writing");
  }

  void write_row(const std::string& object, hid_t mem_type, DType value_dtype, const void* values,
                 std::size_t n) {
    refuse_if_failed();
    OpenDataset& d = find(series, object, "series");
    const std::string context = where(object);
    check_value_type(d, value_dtype, context);
    if (n != d.row_elements) {
      throw Error(context + ": a row holds " + std::to_string(d.row_elements) + " values, got " +
                  std::to_string(n));
    }
    std::vector<hsize_t> dims = d.dims;
    const hsize_t row = dims[0];
    dims[0] += 1;
    check_write(H5Dset_extent(d.dataset.get(), dims.data()), context + ": extending to " + shape_text(dims));
    d.dims = dims;
    Handle file_space(H5Dget_space(d.dataset.get()), context + ": getting the dataspace");
    std::vector<hsize_t> start(dims.size(), 0), count = dims;
    start[0] = row;
    count[0] = 1;
    check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
          context + ": selecting row " + std::to_string(row));
    const hsize_t mem_dims[1] = {static_cast<hsize_t>(n)};
    Handle mem_space(H5Screate_simple(1, mem_dims, nullptr), context + ": making a memory dataspace");
    check_write(H5Dwrite(d.dataset.get(), mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, values),
                context + ": writing row " + std::to_string(row));
  }

  void write_whole(const std::string& object, hid_t mem_type, DType value_dtype, const void* values,
                   std::size_t n) {
    refuse_if_failed();
    OpenDataset& d = find(fixed, object, "fixed");
    const std::string context = where(object);
    check_value_type(d, value_dtype, context);
    if (n != d.row_elements) {
      throw Error(context + ": shape " + shape_text(d.dims) + " holds " + std::to_string(d.row_elements) +
                  " values, got " + std::to_string(n));
    }
    if (n == 0) return;
    check_write(H5Dwrite(d.dataset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values),
                context + ": writing");
  }

  // Integers widen into float datasets exactly enough; doubles would be silently truncated into ints.
  static void check_value_type(const OpenDataset& d, DType value_dtype, const std::string& context) {
    if (d.dtype == DType::kInt64 && value_dtype != DType::kInt64)
      throw Error(context + ": is an int64 dataset, got " + (value_dtype == DType::kFloat32 ? "float32" : "float64") +
                  " values");
    if (d.dtype == DType::kFloat32 && value_dtype == DType::kFloat64)
      throw Error(context + ": is a float32 dataset, got float64 values");
  }
};

RunFileWriter::RunFileWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RunFileWriter::RunFileWriter(RunFileWriter&&) noexcept = default;
RunFileWriter& RunFileWriter::operator=(RunFileWriter&&) noexcept = default;
RunFileWriter::~RunFileWriter() {
  try {
    close();
  } catch (...) {
    // A destructor must not throw; close() reports failures to callers who ask.
  }
}

RunFileWriter RunFileWriter::create(const std::string& path, const RunFileLayout& layout,
                                    IfExists if_exists) {
  h5::silence_errors();
  const std::string file_ctx = "run file " + path;
  if (if_exists == IfExists::kFail && file_exists(path))
    throw Error(file_ctx + " already exists (refusing to overwrite it)");

  // Check the layout before touching the disk, so a bad layout leaves no half-made file.
  std::set<std::string> paths;
  auto claim = [&](const std::string& p) {
    validate_object_path(p, path);
    if (!paths.insert(p).second) throw Error(file_ctx + ": dataset " + p + " declared twice in the layout");
  };
  for (const auto& s : layout.series) {
    claim(s.path);
    for (std::size_t extent : s.row_shape)
      if (extent == 0)
        throw Error(file_ctx + ", dataset " + s.path + ": a series row cannot have a zero extent");
  }
  for (const auto& f : layout.fixed) claim(f.path);
  for (const auto& p : paths) {
    auto next = paths.upper_bound(p);
    if (next != paths.end() && next->compare(0, p.size() + 1, p + "/") == 0)
      throw Error(file_ctx + ": " + p + " cannot be both a dataset and the group of " + *next);
  }
  if (layout.rows_per_chunk == 0) throw Error(file_ctx + ": rows_per_chunk must be positive");

  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->lock = WriterLock::acquire(path);
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), file_ctx + ": making a file access list");
  // SWMR needs the latest format (checksummed metadata, extensible-array chunk indexes).
  check(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST),
        file_ctx + ": setting format");
  const unsigned flags = if_exists == IfExists::kFail ? H5F_ACC_EXCL : H5F_ACC_TRUNC;
  impl->file = Handle(H5Fcreate(path.c_str(), flags, H5P_DEFAULT, fapl.get()), "cannot create " + file_ctx);
  // From here the file is ours: a creation that fails (disk full, no memory) removes it, so a
  // failed start leaves no half-made file behind (declared after impl: runs first, lock still held).
  struct RemoveOnFailure {
    std::string path;
    bool armed = true;
    ~RemoveOnFailure() {
      if (armed) ::unlink(path.c_str());
    }
  } remove_on_failure{path};
  const hid_t file = impl->file.get();

  {
    Handle root(H5Gopen2(file, "/", H5P_DEFAULT), file_ctx + ": opening the root group");
    Handle scalar(H5Screate(H5S_SCALAR), file_ctx + ": making a scalar dataspace");
    auto make_attr = [&](const std::string& name, hid_t type) {
      const std::string ctx = file_ctx + ": creating attribute " + name;
      if (H5Aexists(root.get(), name.c_str()) > 0) throw Error(ctx + ": declared twice in the layout");
      return Handle(H5Acreate2(root.get(), name.c_str(), type, scalar.get(), H5P_DEFAULT, H5P_DEFAULT), ctx);
    };
    const Handle str_type = variable_string_type();
    for (const auto& [name, value] : layout.string_attrs) {
      Handle attr = make_attr(name, str_type.get());
      const char* text = value.c_str();
      check(H5Awrite(attr.get(), str_type.get(), &text), file_ctx + ": writing attribute " + name);
    }
    for (const auto& [name, value] : layout.int_attrs) {
      Handle attr = make_attr(name, H5T_STD_I64LE);
      check(H5Awrite(attr.get(), H5T_NATIVE_INT64, &value), file_ctx + ": writing attribute " + name);
    }
    for (const auto& [name, value] : layout.double_attrs) {
      Handle attr = make_attr(name, H5T_IEEE_F64LE);
      check(H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, &value), file_ctx + ": writing attribute " + name);
    }
  }

  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), file_ctx + ": making a link creation list");
  check(H5Pset_create_intermediate_group(lcpl.get(), 1), file_ctx + ": enabling group creation");
  auto set_fill = [&](hid_t dcpl, DType dtype, const std::string& ctx) {
    const float float_fill = std::numeric_limits<float>::quiet_NaN();
    if (dtype == DType::kFloat64)
      check(H5Pset_fill_value(dcpl, H5T_NATIVE_DOUBLE, &kFloatFill), ctx + ": setting the fill value");
    else if (dtype == DType::kFloat32)
      check(H5Pset_fill_value(dcpl, H5T_NATIVE_FLOAT, &float_fill), ctx + ": setting the fill value");
    else
      check(H5Pset_fill_value(dcpl, H5T_NATIVE_INT64, &kIntFill), ctx + ": setting the fill value");
  };

  for (const auto& s : layout.series) {
    const std::string ctx = impl->where(s.path);
    std::vector<hsize_t> dims{0}, maxdims{H5S_UNLIMITED}, chunk;
    std::size_t row_bytes = 8;
    for (std::size_t extent : s.row_shape) {
      dims.push_back(extent);
      maxdims.push_back(extent);
      row_bytes *= extent;
    }
    chunk = dims;
    chunk[0] = std::max<std::size_t>(1, std::min(layout.rows_per_chunk, kMaxChunkBytes / row_bytes));
    Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), maxdims.data()),
                 ctx + ": making the dataspace");
    Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), ctx + ": making a creation list");
    check(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), ctx + ": setting chunks");
    set_fill(dcpl.get(), s.dtype, ctx);
    Handle(H5Dcreate2(file, s.path.c_str(), file_type(s.dtype), space.get(), lcpl.get(), dcpl.get(),
                      H5P_DEFAULT),
           ctx + ": creating");
  }
  for (const auto& f : layout.fixed) {
    const std::string ctx = impl->where(f.path);
    std::vector<hsize_t> dims(f.shape.begin(), f.shape.end());
    Handle space(dims.empty() ? H5Screate(H5S_SCALAR)
                              : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                 ctx + ": making the dataspace");
    Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), ctx + ": making a creation list");
    // Allocated (and filled) now: allocating later would change the object header under SWMR.
    check(H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY), ctx + ": setting the allocation time");
    check(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_ALLOC), ctx + ": setting the fill time");
    set_fill(dcpl.get(), f.dtype, ctx);
    Handle(H5Dcreate2(file, f.path.c_str(), file_type(f.dtype), space.get(), lcpl.get(), dcpl.get(),
                      H5P_DEFAULT),
           ctx + ": creating");
  }

  impl->open_datasets();
  impl->start_swmr();
  remove_on_failure.armed = false;
  return RunFileWriter(std::move(impl));
}

std::string live_writer(const std::string& run_path) {
  const std::string path = run_path + ".lock";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  int rc = ::fcntl(fd, F_OFD_GETLK, &fl);
  if (rc != 0 && errno == EINVAL) {
    fl = {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    rc = ::fcntl(fd, F_GETLK, &fl);
  }
  std::string holder;
  if (rc == 0 && fl.l_type != F_UNLCK) holder = lock_holder(fd);
  ::close(fd);
  return holder;
}

std::string set_aside(const std::string& path) {
  const WriterLock lock = WriterLock::acquire(path);  // refuses a file a live job writes
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", std::gmtime(&now));
  std::string aside = path + ".partial-" + stamp;
  for (int i = 1; file_exists(aside); ++i) aside = path + ".partial-" + stamp + "-" + std::to_string(i);
  if (std::rename(path.c_str(), aside.c_str()) != 0)
    throw Error("run file " + path + ": cannot keep it aside as " + aside + ": " + std::strerror(errno));
  return aside;
}

RunFileWriter RunFileWriter::open_for_resume(const std::string& path,
                                             const std::map<std::string, long>& keep_rows,
                                             const std::vector<std::pair<std::string, std::string>>& set_string_attrs) {
  h5::silence_errors();
  const std::string file_ctx = "run file " + path;
  if (!file_exists(path)) throw Error(file_ctx + ": no such file (cannot resume)");
  if (H5Fis_hdf5(path.c_str()) <= 0) throw Error(file_ctx + " is not an HDF5 file (cannot resume)");

  auto impl = std::make_unique<Impl>();
  impl->path = path;
  // Before the status flags are cleared below: they are no guard against a live writer, this is.
  impl->lock = WriterLock::acquire(path);
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), file_ctx + ": making a file access list");
  check(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST),
        file_ctx + ": setting format");
  // A killed SWMR writer leaves "open for SWMR write" in the superblock; clear it as h5clear -s
  // does (a library property of 1.10's file access lists, not part of its documented API).
  if (H5Pexist(fapl.get(), "clear_status_flags") > 0) {
    hbool_t clear = 1;
    check(H5Pset(fapl.get(), "clear_status_flags", &clear), file_ctx + ": asking to clear status flags");
  }
  impl->file =
      Handle(H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl.get()), "cannot open " + file_ctx + " for resume");
  impl->open_datasets();

  // The longest key that is the series itself or one of its groups decides its row count.
  std::map<std::string, bool> key_used;
  std::map<std::string, std::string> normalised;
  for (const auto& [key, rows] : keep_rows) {
    std::string k = key;
    while (k.size() > 1 && k.back() == '/') k.pop_back();
    if (rows < 0) throw Error(file_ctx + ": cannot keep " + std::to_string(rows) + " rows of " + key);
    normalised[key] = k;
    key_used[key] = false;
  }
  for (auto& [object, d] : impl->series) {
    const std::string* best = nullptr;
    std::size_t best_len = 0;
    for (const auto& [key, k] : normalised) {
      const bool covers = k == "/" || object == k || object.compare(0, k.size() + 1, k + "/") == 0;
      if (covers && (best == nullptr || k.size() > best_len)) {
        best = &key;
        best_len = k.size();
      }
    }
    if (best == nullptr) continue;
    key_used[*best] = true;
    const long keep = keep_rows.at(*best);
    const std::string ctx = impl->where(object);
    if (static_cast<hsize_t>(keep) > d.dims[0]) {
      throw Error(ctx + ": holds " + std::to_string(d.dims[0]) + " rows, fewer than the " +
                  std::to_string(keep) + " to keep (file and checkpoint disagree)");
    }
    std::vector<hsize_t> dims = d.dims;
    dims[0] = static_cast<hsize_t>(keep);
    impl->check_write(H5Dset_extent(d.dataset.get(), dims.data()),
                      ctx + ": truncating to " + std::to_string(keep) + " rows");
    d.dims = dims;
  }
  for (const auto& [key, used] : key_used)
    if (!used) throw Error(file_ctx + ": no series at or under " + key + " to truncate");

  // Root attributes are rewritten here, before SWMR writing starts (it allows no new objects).
  if (!set_string_attrs.empty()) {
    Handle root(H5Gopen2(impl->file.get(), "/", H5P_DEFAULT), file_ctx + ": opening the root group");
    Handle scalar(H5Screate(H5S_SCALAR), file_ctx + ": making a scalar dataspace");
    const Handle str_type = variable_string_type();
    for (const auto& [name, value] : set_string_attrs) {
      const std::string ctx = file_ctx + ": writing attribute " + name;
      if (H5Aexists(root.get(), name.c_str()) > 0) impl->check_write(H5Adelete(root.get(), name.c_str()), ctx);
      Handle attr(H5Acreate2(root.get(), name.c_str(), str_type.get(), scalar.get(), H5P_DEFAULT, H5P_DEFAULT),
                  ctx);
      const char* text = value.c_str();
      impl->check_write(H5Awrite(attr.get(), str_type.get(), &text), ctx);
    }
  }

  impl->start_swmr();
  return RunFileWriter(std::move(impl));
}

void RunFileWriter::append(const std::string& series, const double* values, std::size_t n) {
  impl_->write_row(series, H5T_NATIVE_DOUBLE, DType::kFloat64, values, n);
}
void RunFileWriter::append(const std::string& series, const std::int64_t* values, std::size_t n) {
  impl_->write_row(series, H5T_NATIVE_INT64, DType::kInt64, values, n);
}
void RunFileWriter::write(const std::string& fixed, const double* values, std::size_t n) {
  impl_->write_whole(fixed, H5T_NATIVE_DOUBLE, DType::kFloat64, values, n);
}
void RunFileWriter::write(const std::string& fixed, const std::int64_t* values, std::size_t n) {
  impl_->write_whole(fixed, H5T_NATIVE_INT64, DType::kInt64, values, n);
}
void RunFileWriter::write(const std::string& fixed, const float* values, std::size_t n) {
  impl_->write_whole(fixed, H5T_NATIVE_FLOAT, DType::kFloat32, values, n);
}

void RunFileWriter::flush() {
  if (!impl_ || !impl_->file) throw Error("run file: flush after close");
  impl_->refuse_if_failed();
  impl_->check_write(H5Fflush(impl_->file.get(), H5F_SCOPE_GLOBAL), "run file " + impl_->path + ": flushing");
}

long RunFileWriter::rows(const std::string& series) const {
  return static_cast<long>(impl_->find(impl_->series, series, "series").dims[0]);
}
bool RunFileWriter::has_series(const std::string& path) const { return impl_->series.count(path) > 0; }
bool RunFileWriter::has_fixed(const std::string& path) const { return impl_->fixed.count(path) > 0; }
const std::string& RunFileWriter::path() const { return impl_->path; }

void RunFileWriter::close() {
  if (!impl_ || !impl_->file) return;
  const std::string ctx = "run file " + impl_->path;
  if (!impl_->failure.empty()) {
    impl_->abandon();
    throw Error(ctx + ": left as last flushed after a failed write (" + impl_->failure + ")");
  }
  const herr_t flushed = H5Fflush(impl_->file.get(), H5F_SCOPE_GLOBAL);
  const std::string flush_error = flushed < 0 ? h5::last_error_message() : std::string();
  bool ok = true;
  for (auto* table : {&impl_->series, &impl_->fixed})
    for (auto& entry : *table) ok = entry.second.dataset.reset() && ok;
  ok = impl_->file.reset() && ok;
  impl_->lock.release();
  if (flushed < 0) throw Error(ctx + ": flushing on close (HDF5: " + flush_error + ")");
  if (!ok) throw Error(ctx + ": closing failed");
}

// ---------------------------------------------------------------------------------------------
// RunFileReader

struct RunFileReader::Impl {
  std::string path;
  Handle file;
  bool swmr = false;

  std::string where(const std::string& object) const { return "run file " + path + ", dataset " + object; }

  Handle open_dataset(const std::string& object) const {
    if (!link_exists(file.get(), object) || !is_dataset(file.get(), object))
      throw Error("run file " + path + ": no dataset " + object);
    Handle d(H5Dopen2(file.get(), object.c_str(), H5P_DEFAULT), where(object) + ": opening");
    // A long-lived SWMR reader must refresh to see rows flushed since it first opened the file.
    if (swmr) check(H5Drefresh(d.get()), where(object) + ": refreshing");
    return d;
  }

  template <class T>
  Array<T> read(const std::string& object, hid_t mem_type) const {
    Handle d = open_dataset(object);
    const std::string ctx = where(object);
    if (std::is_same_v<T, std::int64_t> && dtype_of(d.get(), ctx) != DType::kInt64)
      throw Error(ctx + ": holds float64 values, not int64");
    if (std::is_same_v<T, float> && dtype_of(d.get(), ctx) != DType::kFloat32)
      throw Error(ctx + ": holds no float32 values");
    Handle space(H5Dget_space(d.get()), ctx + ": getting the dataspace");
    Array<T> out;
    const std::vector<hsize_t> dims = dataspace_dims(space.get(), nullptr, ctx);
    out.shape.assign(dims.begin(), dims.end());
    out.values.resize(element_count(dims));
    if (out.values.empty()) return out;
    // Read exactly the extent just queried, even if a live writer grows the dataset meanwhile.
    const hsize_t n[1] = {static_cast<hsize_t>(out.values.size())};
    Handle mem_space(H5Screate_simple(1, n, nullptr), ctx + ": making a memory dataspace");
    check(H5Dread(d.get(), mem_type, mem_space.get(), space.get(), H5P_DEFAULT, out.values.data()),
          ctx + ": reading");
    return out;
  }

  Handle open_attribute(const std::string& name) const {
    const std::string ctx = "run file " + path + ", attribute " + name;
    if (H5Aexists(file.get(), name.c_str()) <= 0) throw Error("run file " + path + ": no attribute " + name);
    return Handle(H5Aopen(file.get(), name.c_str(), H5P_DEFAULT), ctx + ": opening");
  }

  H5T_class_t attribute_class(hid_t attr, const std::string& name) const {
    Handle type(H5Aget_type(attr), "run file " + path + ", attribute " + name + ": getting the type");
    return H5Tget_class(type.get());
  }
};

RunFileReader::RunFileReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  h5::silence_errors();
  impl_->path = path;
  const std::string ctx = "run file " + path;
  if (!file_exists(path)) throw Error(ctx + ": no such file");
  // SWMR-read first: it is the only way into a file a running (or killed) writer holds.
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT);
  impl_->swmr = id >= 0;
  if (id < 0) id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) {
    const std::string detail = h5::last_error_message();
    if (H5Fis_hdf5(path.c_str()) <= 0) throw Error(ctx + " is not an HDF5 file");
    throw Error("cannot open " + ctx + (detail.empty() ? std::string() : " (HDF5: " + detail + ")"));
  }
  impl_->file = Handle(id, ctx);
}

RunFileReader::RunFileReader(RunFileReader&&) noexcept = default;
RunFileReader& RunFileReader::operator=(RunFileReader&&) noexcept = default;
RunFileReader::~RunFileReader() = default;

const std::string& RunFileReader::path() const { return impl_->path; }

bool RunFileReader::exists(const std::string& object_path) const {
  return link_exists(impl_->file.get(), object_path);
}

std::vector<std::string> RunFileReader::datasets() const {
  std::vector<std::string> out;
  for (const std::string& object :
       all_object_paths(impl_->file.get(), "run file " + impl_->path + ": listing"))
    if (is_dataset(impl_->file.get(), object)) out.push_back(object);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> RunFileReader::attribute_names() const {
  std::vector<std::string> names;
  auto visit = [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  check(H5Aiterate2(impl_->file.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, visit, &names),
        "run file " + impl_->path + ": listing attributes");
  return names;
}

bool RunFileReader::has_attribute(const std::string& name) const {
  return H5Aexists(impl_->file.get(), name.c_str()) > 0;
}

std::string RunFileReader::string_attribute(const std::string& name) const {
  const std::string ctx = "run file " + impl_->path + ", attribute " + name;
  Handle attr = impl_->open_attribute(name);
  Handle type(H5Aget_type(attr.get()), ctx + ": getting the type");
  if (H5Tget_class(type.get()) != H5T_STRING) throw Error(ctx + ": is not a string");
  if (H5Tis_variable_str(type.get()) > 0) {
    Handle mem_type = variable_string_type();
    check(H5Tset_cset(mem_type.get(), H5Tget_cset(type.get())), ctx + ": matching the character set");
    char* text = nullptr;
    check(H5Aread(attr.get(), mem_type.get(), &text), ctx + ": reading");
    std::string out = text ? text : "";
    Handle space(H5Aget_space(attr.get()), ctx + ": getting the dataspace");
    H5Dvlen_reclaim(mem_type.get(), space.get(), H5P_DEFAULT, &text);
    return out;
  }
  // Fixed-length strings (as other tools may write them): read the bytes, drop the padding.
  std::string out(H5Tget_size(type.get()), '\0');
  check(H5Aread(attr.get(), type.get(), out.data()), ctx + ": reading");
  out.erase(std::find(out.begin(), out.end(), '\0'), out.end());
  return out;
}

std::int64_t RunFileReader::int_attribute(const std::string& name) const {
  const std::string ctx = "run file " + impl_->path + ", attribute " + name;
  Handle attr = impl_->open_attribute(name);
  if (impl_->attribute_class(attr.get(), name) != H5T_INTEGER) throw Error(ctx + ": is not an integer");
  std::int64_t value = 0;
  check(H5Aread(attr.get(), H5T_NATIVE_INT64, &value), ctx + ": reading");
  return value;
}

double RunFileReader::double_attribute(const std::string& name) const {
  const std::string ctx = "run file " + impl_->path + ", attribute " + name;
  Handle attr = impl_->open_attribute(name);
  const H5T_class_t cls = impl_->attribute_class(attr.get(), name);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER) throw Error(ctx + ": is not a number");
  double value = 0;
  check(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value), ctx + ": reading");
  return value;
}

std::vector<std::size_t> RunFileReader::shape(const std::string& dataset) const {
  Handle d = impl_->open_dataset(dataset);
  Handle space(H5Dget_space(d.get()), impl_->where(dataset) + ": getting the dataspace");
  const std::vector<hsize_t> dims = dataspace_dims(space.get(), nullptr, impl_->where(dataset));
  return {dims.begin(), dims.end()};
}

DType RunFileReader::dtype(const std::string& dataset) const {
  Handle d = impl_->open_dataset(dataset);
  return dtype_of(d.get(), impl_->where(dataset));
}

Array<double> RunFileReader::read_double(const std::string& dataset) const {
  return impl_->read<double>(dataset, H5T_NATIVE_DOUBLE);
}

Array<std::int64_t> RunFileReader::read_int64(const std::string& dataset) const {
  return impl_->read<std::int64_t>(dataset, H5T_NATIVE_INT64);
}

Array<float> RunFileReader::read_float(const std::string& dataset) const {
  return impl_->read<float>(dataset, H5T_NATIVE_FLOAT);
}

double RunFileReader::read_double_scalar(const std::string& dataset) const {
  Array<double> a = read_double(dataset);
  if (a.values.size() != 1)
    throw Error(impl_->where(dataset) + ": expected one value, found " + std::to_string(a.values.size()));
  return a.values[0];
}

std::int64_t RunFileReader::read_int64_scalar(const std::string& dataset) const {
  Array<std::int64_t> a = read_int64(dataset);
  if (a.values.size() != 1)
    throw Error(impl_->where(dataset) + ": expected one value, found " + std::to_string(a.values.size()));
  return a.values[0];
}

}  // namespace bbt::io
