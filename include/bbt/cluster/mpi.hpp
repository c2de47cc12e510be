#pragma once
// Thin RAII and checked wrappers over the MPI calls the job uses. Every failing call throws
// bbt::Error naming the call; the job's main turns any error into MPI_Abort so nothing hangs.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bbt::cluster {

// MPI_Init/MPI_Finalize for the life of the object; errors are returned, not fatal.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  // Rank among the ranks of this node (for picking a GPU), via MPI_Comm_split_type.
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  // This rank's share of the node's CPUs: its usable CPUs divided among the ranks of the node that
  // may run on any of them (launcher binding, taskset or a SLURM cpuset all count), at least 1.
  int cpus_per_rank() const { return cpus_per_rank_; }
  // The ranks of this node (MPI_COMM_TYPE_SHARED), in world-rank order.
  MPI_Comm node_comm() const { return node_; }
  // A window over node_comm() kept until the session ends: freed (collectively, in the order
  // kept) just before MPI_Finalize, when nothing may use its memory any more.
  void keep_window(MPI_Win win) { windows_.push_back(win); }

 private:
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1, cpus_per_rank_ = 1;
  MPI_Comm node_ = MPI_COMM_NULL;
  std::vector<MPI_Win> windows_;
};

// The world rank before MPI_Init, from the launcher's environment (Open MPI, PMIx, SLURM); 0 if none.
int launcher_rank();

// Ends every rank of the job now (MPI_Abort), after printing `message` on this rank's stderr.
[[noreturn]] void abort_job(const std::string& message, int code);

void check(int rc, const char* call);

void broadcast(std::vector<double>& data, int root);
void broadcast(std::vector<std::int64_t>& data, int root);
void broadcast(std::vector<float>& data, int root);
void broadcast(std::string& text, int root);
void broadcast(std::int64_t& value, int root);

// Gathers each rank's `local` (its own length) onto root in rank order; others get an empty vector.
std::vector<float> gather(const std::vector<float>& local, int root);
std::vector<double> gather(const std::vector<double>& local, int root);
// Gathers the same number of doubles from every rank onto root, in rank order.
std::vector<double> gather_fixed(const std::vector<double>& local, int root);
// Element-wise maximum of one integer over all ranks (signal flags).
int allreduce_max(int value);

// Contiguous equal shares: the half-open range of `total` items owned by `rank` of `size`.
struct Range {
  std::int64_t begin = 0, end = 0;
  std::int64_t size() const { return end - begin; }
};
Range share(std::int64_t total, int rank, int size);
// Shares of whole chunks of `chunk` items, so chunk boundaries never depend on the rank count.
Range chunked_share(std::int64_t total, std::int64_t chunk, int rank, int size);

}  // namespace bbt::cluster
