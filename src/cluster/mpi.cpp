#include "bbt/cluster/mpi.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>

#include "bbt/common/cpus.hpp"
#include "bbt/common/error.hpp"

namespace bbt::cluster {

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(std::string(call) + " failed: " + std::string(text, len));
}

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) check(MPI_Init(argc, argv), "MPI_Init");
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node_),
        "MPI_Comm_split_type");
  MPI_Comm_set_errhandler(node_, MPI_ERRORS_RETURN);
  const MPI_Comm node = node_;
  MPI_Comm_rank(node, &local_rank_);
  MPI_Comm_size(node, &local_size_);
  // Which CPUs each rank of the node may use, as bit masks: the ranks sharing any of mine share
  // my CPUs between them.
  constexpr int kWords = 64;  // 4096 CPUs
  const std::vector<int> cpus = usable_cpus();
  std::vector<std::uint64_t> mine(kWords, 0), all(static_cast<std::size_t>(kWords) * local_size_, 0);
  for (int c : cpus)
    if (c < 64 * kWords) mine[c / 64] |= std::uint64_t{1} << (c % 64);
  check(MPI_Allgather(mine.data(), kWords, MPI_UINT64_T, all.data(), kWords, MPI_UINT64_T, node),
        "MPI_Allgather");
  int sharers = 0;
  for (int r = 0; r < local_size_; ++r) {
    bool overlap = false;
    for (int w = 0; w < kWords; ++w) overlap = overlap || (all[static_cast<std::size_t>(r) * kWords + w] & mine[w]) != 0;
    sharers += overlap ? 1 : 0;
  }
  cpus_per_rank_ = std::max(1, static_cast<int>(cpus.size()) / std::max(1, sharers));
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  for (MPI_Win& win : windows_) MPI_Win_free(&win);
  if (node_ != MPI_COMM_NULL) MPI_Comm_free(&node_);
  MPI_Finalize();
}

int launcher_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    if (const char* v = std::getenv(name)) return std::atoi(v);
  }
  return 0;
}

void abort_job(const std::string& message, int code) {
  std::cerr << message << std::endl;
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  int size = 1;
  if (initialized && !finalized) MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (initialized && !finalized && size > 1) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

namespace {

template <typename T>
void broadcast_vector(std::vector<T>& data, MPI_Datatype type, int root) {
  std::int64_t n = static_cast<std::int64_t>(data.size());
  broadcast(n, root);
  data.resize(static_cast<std::size_t>(n));
  // Counts are int in MPI: send large vectors in pieces.
  constexpr std::int64_t kPiece = 1 << 28;
  for (std::int64_t off = 0; off < n; off += kPiece) {
    const int count = static_cast<int>(std::min(kPiece, n - off));
    check(MPI_Bcast(data.data() + off, count, type, root, MPI_COMM_WORLD), "MPI_Bcast");
  }
}

}  // namespace

void broadcast(std::int64_t& value, int root) {
  check(MPI_Bcast(&value, 1, MPI_INT64_T, root, MPI_COMM_WORLD), "MPI_Bcast");
}
void broadcast(std::vector<double>& data, int root) { broadcast_vector(data, MPI_DOUBLE, root); }
void broadcast(std::vector<std::int64_t>& data, int root) { broadcast_vector(data, MPI_INT64_T, root); }
void broadcast(std::vector<float>& data, int root) { broadcast_vector(data, MPI_FLOAT, root); }
void broadcast(std::string& text, int root) {
  std::int64_t n = static_cast<std::int64_t>(text.size());
  broadcast(n, root);
  text.resize(static_cast<std::size_t>(n));
  if (n > 0) check(MPI_Bcast(text.data(), static_cast<int>(n), MPI_CHAR, root, MPI_COMM_WORLD), "MPI_Bcast");
}

namespace {

// Variable-length gather to root, in rank order.
template <typename T>
std::vector<T> gather_any(const std::vector<T>& local, int root, MPI_Datatype type) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int mine = static_cast<int>(local.size());
  std::vector<int> counts(size), offsets(size);
  check(MPI_Gather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, root, MPI_COMM_WORLD), "MPI_Gather");
  std::vector<T> all;
  if (rank == root) {
    std::int64_t total = 0;
    for (int r = 0; r < size; ++r) {
      offsets[r] = static_cast<int>(total);
      total += counts[r];
    }
    all.resize(static_cast<std::size_t>(total));
  }
  check(MPI_Gatherv(local.data(), mine, type, all.data(), counts.data(), offsets.data(), type, root,
                    MPI_COMM_WORLD),
        "MPI_Gatherv");
  return all;
}

}  // namespace

std::vector<float> gather(const std::vector<float>& local, int root) {
  return gather_any(local, root, MPI_FLOAT);
}

std::vector<double> gather(const std::vector<double>& local, int root) {
  return gather_any(local, root, MPI_DOUBLE);
}

std::vector<double> gather_fixed(const std::vector<double>& local, int root) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int n = static_cast<int>(local.size());
  std::vector<double> all(rank == root ? static_cast<std::size_t>(n) * size : 0);
  check(MPI_Gather(local.data(), n, MPI_DOUBLE, all.data(), n, MPI_DOUBLE, root, MPI_COMM_WORLD),
        "MPI_Gather");
  return all;
}

int allreduce_max(int value) {
  int out = 0;
  check(MPI_Allreduce(&value, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
  return out;
}

Range share(std::int64_t total, int rank, int size) {
  return {total * rank / size, total * (rank + 1) / size};
}

Range chunked_share(std::int64_t total, std::int64_t chunk, int rank, int size) {
  const std::int64_t chunks = (total + chunk - 1) / chunk;
  const Range c = share(chunks, rank, size);
  return {std::min(total, c.begin * chunk), std::min(total, c.end * chunk)};
}

}  // namespace bbt::cluster
