#pragma once
// One copy of the model's weights per node on CPU: the node's ranks share one block of memory (an
// MPI shared-memory window over the node's communicator); its first rank converts the weights into
// it, the others wrap their tensors around it (model::LoadOptions::shared).
#include <memory>
#include <string>

#include "bbt/cluster/mpi.hpp"
#include "bbt/model/roberta.hpp"

namespace bbt::cluster {

// Collective over the ranks of this node (every rank calls it). Returns the sharing hooks for
// model::Roberta::load when this node has more than one rank and all of them want to share
// (`want`: CPU float32) the same `model_path`; otherwise nullptr (each rank loads its own copy).
// When the window cannot be had (no room in the backing directory of MPI's shared memory), the
// node's first rank prints one warning line and every rank loads its own copy. The window lives
// until the session ends (MPI_Finalize); once filled it is mapped read-only on every rank.
// Test hook: BBT_TEST_NO_SHARED_WINDOW=1 makes the window fail as if there were no room.
std::shared_ptr<const model::SharedWeights> node_shared_weights(MpiSession& mpi, bool want,
                                                                const std::string& model_path);

}  // namespace bbt::cluster
