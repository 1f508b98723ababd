#include "gpumem/cuda/device_error.hpp"

namespace gpumem::cuda {

const char* error_name(error_code code) noexcept {
  switch (code) {
    case error_code::success: return "CUDA_SUCCESS";
    case error_code::invalid_value: return "CUDA_ERROR_INVALID_VALUE";
    case error_code::out_of_memory: return "CUDA_ERROR_OUT_OF_MEMORY";
    case error_code::not_initialized: return "CUDA_ERROR_NOT_INITIALIZED";
    case error_code::no_device: return "CUDA_ERROR_NO_DEVICE";
    case error_code::invalid_device: return "CUDA_ERROR_INVALID_DEVICE";
    case error_code::invalid_handle: return "CUDA_ERROR_INVALID_HANDLE";
    case error_code::illegal_address: return "CUDA_ERROR_ILLEGAL_ADDRESS";
    case error_code::not_permitted: return "CUDA_ERROR_NOT_PERMITTED";
    case error_code::not_supported: return "CUDA_ERROR_NOT_SUPPORTED";
    case error_code::unknown: return "CUDA_ERROR_UNKNOWN";
    case error_code::driver_unavailable: return "GPUMEM_ERROR_DRIVER_UNAVAILABLE";
    case error_code::system_error: return "GPUMEM_ERROR_SYSTEM";
  }
  return "CUDA_ERROR_UNKNOWN";
}

} // namespace gpumem::cuda

namespace gpumem::cuda {

bool is_sticky(error_code code) noexcept {
  // cuda.h 13.0: the codes whose description ends "the process must be terminated and
  // relaunched", plus uncorrectable ECC, a device-side assert and a contained error.
  switch (static_cast<int>(code)) {
    case 214:  // CUDA_ERROR_ECC_UNCORRECTABLE
    case 226:  // CUDA_ERROR_CONTAINED
    case 700:  // CUDA_ERROR_ILLEGAL_ADDRESS
    case 702:  // CUDA_ERROR_LAUNCH_TIMEOUT
    case 710:  // CUDA_ERROR_ASSERT
    case 714:  // CUDA_ERROR_HARDWARE_STACK_ERROR
    case 715:  // CUDA_ERROR_ILLEGAL_INSTRUCTION
    case 716:  // CUDA_ERROR_MISALIGNED_ADDRESS
    case 717:  // CUDA_ERROR_INVALID_ADDRESS_SPACE
    case 718:  // CUDA_ERROR_INVALID_PC
    case 719:  // CUDA_ERROR_LAUNCH_FAILED
    case 721:  // CUDA_ERROR_TENSOR_MEMORY_LEAK
    case 810:  // CUDA_ERROR_MPS_CLIENT_TERMINATED
      return true;
    default:
      return false;
  }
}

} // namespace gpumem::cuda
