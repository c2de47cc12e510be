#include "bbt/model/device_memory.hpp"

#ifdef BBT_HAVE_C10_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace bbt::model {

std::int64_t peak_device_bytes(const torch::Device& device) {
#ifdef BBT_HAVE_C10_CUDA
  if (device.is_cuda() && torch::cuda::is_available()) {
    const auto index = device.has_index() ? device.index() : static_cast<c10::DeviceIndex>(0);
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
    return static_cast<std::int64_t>(stats.reserved_bytes[0].peak);  // [0]: the aggregate over pools
  }
#else
  (void)device;
#endif
  return 0;
}

}  // namespace bbt::model
