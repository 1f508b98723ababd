// The driver stand-in itself: the rules it exists to enforce, called directly as a
// careless client would, so that a stand-in grown lenient fails here.

#include <catch2/catch.hpp>

#include <cstring>

#include "gpumem/cuda/byte_units.hpp"
#include "support/cuda_standin.hpp"

using namespace gpumem;
using test::standin;

namespace {

constexpr std::size_t chunk = 2 * MiB;

struct driver {
  decltype(&::cuMemGetInfo) mem_get_info = standin().entry<decltype(mem_get_info)>("cuMemGetInfo");
  decltype(&::cuMemAddressReserve) reserve =
    standin().entry<decltype(reserve)>("cuMemAddressReserve");
  decltype(&::cuMemAddressFree) address_free =
    standin().entry<decltype(address_free)>("cuMemAddressFree");
  decltype(&::cuMemCreate) create = standin().entry<decltype(create)>("cuMemCreate");
  decltype(&::cuMemRelease) release = standin().entry<decltype(release)>("cuMemRelease");
  decltype(&::cuMemMap) map = standin().entry<decltype(map)>("cuMemMap");
  decltype(&::cuMemUnmap) unmap = standin().entry<decltype(unmap)>("cuMemUnmap");
  decltype(&::cuMemSetAccess) set_access = standin().entry<decltype(set_access)>("cuMemSetAccess");
  decltype(&::cuCtxSynchronize) synchronize =
    standin().entry<decltype(synchronize)>("cuCtxSynchronize");
};

CUmemAllocationProp on_device(int device) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device;
  return prop;
}

CUmemAccessDesc read_write(int device) {
  CUmemAccessDesc access{};
  access.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  access.location.id = device;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  return access;
}

} // namespace

TEST_CASE("the stand-in enforces CUDA's rules", "[cuda_standin][rules]") {
  REQUIRE(standin().reset() == CUDA_SUCCESS);
  driver cu;
  const CUmemAllocationProp prop = on_device(0);

  // No current context: refused.
  REQUIRE(standin().ctx_set_current(nullptr) == CUDA_SUCCESS);
  CUdeviceptr base = 0;
  CHECK(cu.reserve(&base, 2 * chunk, 0, 0, 0) == CUDA_ERROR_INVALID_CONTEXT);

  test::client_context client(0);
  REQUIRE(cu.reserve(&base, 2 * chunk, 0, 0, 0) == CUDA_SUCCESS);
  CUmemGenericAllocationHandle handle = 0;
  REQUIRE(cu.create(&handle, 2 * chunk, &prop, 0) == CUDA_SUCCESS);

  // cuMemMap: offset "currently must be zero", and flags too.
  CHECK(cu.map(base, chunk, chunk, handle, 0) == CUDA_ERROR_INVALID_VALUE);
  CHECK(cu.map(base, chunk, 0, handle, 1) == CUDA_ERROR_INVALID_VALUE);
  REQUIRE(cu.map(base, 2 * chunk, 0, handle, 0) == CUDA_SUCCESS);
  const CUmemAccessDesc access = read_write(0);
  REQUIRE(cu.set_access(base, 2 * chunk, &access, 1) == CUDA_SUCCESS);

  // A mapped chunk's release is deferred to its last unmap.
  std::size_t free_mapped = 0, total = 0, free_after = 0;
  REQUIRE(cu.mem_get_info(&free_mapped, &total) == CUDA_SUCCESS);
  REQUIRE(cu.release(handle) == CUDA_SUCCESS);
  std::memset(reinterpret_cast<void*>(base), 0x5C, 2 * chunk);  // still usable
  REQUIRE(cu.mem_get_info(&free_after, &total) == CUDA_SUCCESS);
  CHECK(free_after == free_mapped);

  // An unmap under a running kernel: sticky CUDA_ERROR_ILLEGAL_ADDRESS, and every later
  // call in the context answers it, synchronize included.
  client.launch(base, chunk, 0);
  CHECK(cu.unmap(base, 2 * chunk) == CUDA_ERROR_ILLEGAL_ADDRESS);
  CHECK(cu.mem_get_info(&free_after, &total) == CUDA_ERROR_ILLEGAL_ADDRESS);
  CHECK(cu.synchronize() == CUDA_ERROR_ILLEGAL_ADDRESS);
  CHECK(cu.unmap(base, 2 * chunk) == CUDA_ERROR_ILLEGAL_ADDRESS);

  // Another device's context is another context: it is not poisoned.
  {
    test::client_context other(1);
    CHECK(cu.mem_get_info(&free_after, &total) == CUDA_SUCCESS);
  }
  // What the dead context held stays leaked, as on a GPU until the process ends.
}

TEST_CASE("the stand-in: a synchronized kernel lets the unmap go through",
          "[cuda_standin][rules]") {
  REQUIRE(standin().reset() == CUDA_SUCCESS);
  driver cu;
  const CUmemAllocationProp prop = on_device(1);
  test::client_context client(1);
  CUdeviceptr base = 0;
  CUmemGenericAllocationHandle handle = 0;
  REQUIRE(cu.reserve(&base, chunk, 0, 0, 0) == CUDA_SUCCESS);
  REQUIRE(cu.create(&handle, chunk, &prop, 0) == CUDA_SUCCESS);
  REQUIRE(cu.map(base, chunk, 0, handle, 0) == CUDA_SUCCESS);
  const CUmemAccessDesc access = read_write(1);
  REQUIRE(cu.set_access(base, chunk, &access, 1) == CUDA_SUCCESS);
  std::size_t free_mapped = 0, total = 0, free_after = 0;
  REQUIRE(cu.mem_get_info(&free_mapped, &total) == CUDA_SUCCESS);

  client.launch(base, chunk, 0x6B);
  // The kernel's bytes land when it ends, which only a synchronize brings about here.
  CHECK(reinterpret_cast<unsigned char*>(base)[0] != 0x6B);
  REQUIRE(cu.synchronize() == CUDA_SUCCESS);
  CHECK(reinterpret_cast<unsigned char*>(base)[chunk - 1] == 0x6B);
  REQUIRE(cu.release(handle) == CUDA_SUCCESS);
  REQUIRE(cu.unmap(base, chunk) == CUDA_SUCCESS);
  REQUIRE(cu.mem_get_info(&free_after, &total) == CUDA_SUCCESS);
  CHECK(free_after == free_mapped + chunk);  // freed with its last mapping
  REQUIRE(cu.address_free(base, chunk) == CUDA_SUCCESS);
}
