#include "bbt/cluster/node_weights.hpp"

#include <sys/mman.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "bbt/common/error.hpp"

namespace bbt::cluster {
namespace {

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

std::size_t page_size() { return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)); }

// Touches every page of [data, data + bytes) so that a backing file system without room fails
// here, with an error, rather than with SIGBUS on the first write of the copy. Returns "" or why not.
std::string populate(char* data, std::size_t bytes) {
  if (const char* v = std::getenv("BBT_TEST_NO_SHARED_WINDOW"); v != nullptr && std::string(v) == "1")
    return "BBT_TEST_NO_SHARED_WINDOW=1";
  if (::madvise(data, bytes, MADV_POPULATE_WRITE) == 0) return "";
  if (errno != EINVAL) return std::strerror(errno);
  // Kernels before 5.14: check the room in the backing directory instead.
  const char* dir = std::getenv("OMPI_MCA_osc_sm_backing_directory");
  struct statvfs fs {};
  if (::statvfs(dir != nullptr ? dir : "/dev/shm", &fs) == 0 &&
      static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize < bytes)
    return "no room in " + std::string(dir != nullptr ? dir : "/dev/shm");
  return "";
}

// MPI_Bcast of one int from the node's first rank. The others wait while it touches or converts
// the weights (seconds): asleep between polls, not spinning in a blocking MPI_Bcast on the cores
// the first rank needs.
void bcast_asleep(int& value, MPI_Comm comm) {
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Ibcast(&value, 1, MPI_INT, 0, comm, &request), "MPI_Ibcast");
  for (int done = 0;;) {
    check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done != 0) return;
    ::usleep(2000);
  }
}

struct NodeWeights : model::SharedWeights {
  MpiSession* mpi = nullptr;
  char* data = nullptr;
  std::size_t bytes = 0;
};

}  // namespace

std::shared_ptr<const model::SharedWeights> node_shared_weights(MpiSession& mpi, bool want,
                                                                const std::string& model_path) {
  if (mpi.local_size() < 2) return nullptr;
  const MPI_Comm node = mpi.node_comm();
  // Every rank of the node must want it, for the same checkpoint.
  std::string path = model_path;
  std::int64_t n = static_cast<std::int64_t>(path.size());
  check(MPI_Bcast(&n, 1, MPI_INT64_T, 0, node), "MPI_Bcast");
  path.resize(static_cast<std::size_t>(n));
  if (n > 0) check(MPI_Bcast(path.data(), static_cast<int>(n), MPI_CHAR, 0, node), "MPI_Bcast");
  int mine = want && path == model_path ? 1 : 0, all = 0;
  check(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, node), "MPI_Allreduce");
  if (all == 0) return nullptr;

  auto hooks = std::make_shared<NodeWeights>();
  NodeWeights* self = hooks.get();
  self->mpi = &mpi;
  hooks->allocate = [self](std::size_t bytes) -> model::WeightBlock {
    MpiSession& s = *self->mpi;
    const MPI_Comm comm = s.node_comm();
    const bool first = s.local_rank() == 0;
    const std::size_t page = page_size();
    // Room to start on a page and to round the end up to one: the block is mprotect()ed.
    const MPI_Aint size = first ? static_cast<MPI_Aint>(bytes + 2 * page) : 0;
    void* base = nullptr;
    MPI_Win win = MPI_WIN_NULL;
    check(MPI_Win_allocate_shared(size, 1, MPI_INFO_NULL, comm, &base, &win), "MPI_Win_allocate_shared");
    MPI_Aint got = 0;
    int unit = 0;
    void* first_base = nullptr;
    check(MPI_Win_shared_query(win, 0, &got, &unit, &first_base), "MPI_Win_shared_query");
    const auto at = reinterpret_cast<std::uintptr_t>(first_base);
    char* data = reinterpret_cast<char*>((at + page - 1) / page * page);
    std::string why;
    if (first) why = populate(data, bytes);
    int ok = why.empty() ? 1 : 0;
    bcast_asleep(ok, comm);
    if (ok == 0) {
      check(MPI_Win_free(&win), "MPI_Win_free");
      if (first)
        std::cerr << "bbt: warning: rank " << s.rank() << ": cannot share one copy of the weights ("
                  << bytes << " bytes) between this node's " << s.local_size()
                  << " ranks (MPI shared memory: " << why << "); every rank loads its own" << std::endl;
      return {};
    }
    s.keep_window(win);
    self->data = data;
    self->bytes = bytes;
    return {data, first};
  };
  hooks->published = [self](bool ok) {
    MpiSession& s = *self->mpi;
    int verdict = ok ? 1 : 0;
    bcast_asleep(verdict, s.node_comm());
    if (verdict != 0) {
      // Read-only from now on, on every rank: a stray write would change every rank's weights.
      const std::size_t page = page_size();
      const std::size_t len = (self->bytes + page - 1) / page * page;
      if (::mprotect(self->data, len, PROT_READ) != 0)
        throw Error(std::string("mprotect of the shared weights failed: ") + std::strerror(errno));
    }
    return verdict != 0;
  };
  return hooks;
}

}  // namespace bbt::cluster
