#pragma once
// The CPUs this process may run on: its affinity mask (what taskset, a SLURM cpuset or an MPI
// launcher's binding leaves it), not the machine's count.
#include <vector>

namespace bbt {

// Ids of the usable CPUs, ascending (every CPU of the machine where affinity is unavailable).
std::vector<int> usable_cpus();

// How many there are (at least 1).
int usable_cpu_count();

}  // namespace bbt
