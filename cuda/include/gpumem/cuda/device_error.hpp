#pragma once
// Errors of the device layer: values with a code and a name, never exceptions.
//
// Codes are CUDA's own CUresult numbers where CUDA has one, so the driver backend
// passes them through unchanged and the host backend answers misuse with the error
// CUDA would give. Conditions CUDA has no code for (no driver library) use negative
// codes with GPUMEM_ names.

#include <string>
#include <utility>

#include "gpumem/cuda/basic_result.hpp"

namespace gpumem::cuda {

enum class error_code : int {
  success = 0,
  invalid_value = 1,          // CUDA_ERROR_INVALID_VALUE
  out_of_memory = 2,          // CUDA_ERROR_OUT_OF_MEMORY
  not_initialized = 3,        // CUDA_ERROR_NOT_INITIALIZED
  no_device = 100,            // CUDA_ERROR_NO_DEVICE
  invalid_device = 101,       // CUDA_ERROR_INVALID_DEVICE
  invalid_handle = 400,       // CUDA_ERROR_INVALID_HANDLE
  illegal_address = 700,      // CUDA_ERROR_ILLEGAL_ADDRESS
  not_permitted = 800,        // CUDA_ERROR_NOT_PERMITTED
  not_supported = 801,        // CUDA_ERROR_NOT_SUPPORTED
  unknown = 999,              // CUDA_ERROR_UNKNOWN
  driver_unavailable = -1,    // GPUMEM_ERROR_DRIVER_UNAVAILABLE: libcuda.so.1 missing
  system_error = -2,          // GPUMEM_ERROR_SYSTEM: an OS call failed (errno in message)
};

/// CUDA's name for a code ("CUDA_ERROR_OUT_OF_MEMORY"), or gpumem's own.
const char* error_name(error_code code) noexcept;

/// Whether a code is one of CUDA's sticky errors, after which cuda.h says "the process
/// must be terminated and relaunched": the device's context is dead for good.
bool is_sticky(error_code code) noexcept;

/// A failed device-layer call: what failed (name, code) and why (message).
class device_error {
public:
  device_error(error_code code, std::string message)
    : code_(code), name_(error_name(code)), message_(std::move(message)) {}
  /// For codes outside error_code (the driver backend keeps CUDA's own name).
  device_error(int raw_code, std::string name, std::string message)
    : code_(static_cast<error_code>(raw_code)), name_(std::move(name)),
      message_(std::move(message)) {}

  error_code code() const noexcept { return code_; }
  const std::string& name() const noexcept { return name_; }
  const std::string& message() const noexcept { return message_; }
  /// "CUDA_ERROR_OUT_OF_MEMORY: create_chunk(...) ..." for logs and test output.
  std::string to_string() const { return name_ + ": " + message_; }

private:
  error_code code_;
  std::string name_;
  std::string message_;
};

/// Either a T or the device_error that prevented it.
template <class T>
using result = basic_result<T, device_error>;

using status = result<void>;

} // namespace gpumem::cuda
