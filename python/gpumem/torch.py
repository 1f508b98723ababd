"""PyTorch on gpumem: CUDAPluggableAllocator over libgpumem.so's allocator hooks.

PyTorch is imported when these functions are called, not when gpumem is.

    rt = gpumem.Runtime()                       # before PyTorch allocates anything
    gpumem.torch.use_as_allocator(rt)
    with rt.region("weights"):
        model = Model().cuda()                  # tagged "weights"
    rt.sleep(level=1); ...; rt.wake_up()

Or, as vLLM's CuMemAllocator does, only inside a pool (PyTorch with torch.cuda.MemPool):

    with gpumem.torch.pool(rt), rt.region("kv_cache"):
        kv = torch.empty(...)
"""

import contextlib

MALLOC = "gpumem_torch_malloc"
FREE = "gpumem_torch_free"


def _torch():
    import torch  # noqa: PLC0415 (lazy: gpumem does not need PyTorch)
    version = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
    if version < (2, 1):
        raise RuntimeError(f"gpumem.torch needs PyTorch >= 2.1, found {torch.__version__}")
    if not torch.cuda.is_available():
        raise RuntimeError("gpumem.torch needs a CUDA device")
    return torch


def allocator(runtime):
    """A torch.cuda.memory.CUDAPluggableAllocator over the library `runtime` uses."""
    torch = _torch()
    return torch.cuda.memory.CUDAPluggableAllocator(runtime.library, MALLOC, FREE)


def use_as_allocator(runtime):
    """Makes gpumem PyTorch's CUDA allocator for the whole process. Call it before
    PyTorch allocates any CUDA memory (PyTorch refuses afterwards)."""
    torch = _torch()
    alloc = allocator(runtime)
    torch.cuda.memory.change_current_allocator(alloc)
    return alloc


@contextlib.contextmanager
def pool(runtime, device=None):
    """Allocations PyTorch makes inside the block come from gpumem (needs
    torch.cuda.MemPool and torch.cuda.use_mem_pool)."""
    torch = _torch()
    alloc = allocator(runtime)
    mem_pool = torch.cuda.MemPool(alloc.allocator())
    with torch.cuda.use_mem_pool(mem_pool, device=device):
        yield mem_pool
