"""gpumem from Python: the runtime through libgpumem.so (ctypes, no compiled code).

    import gpumem
    rt = gpumem.Runtime("--gpumem.backend=host")
    with rt.region("weights"):
        ptr = rt.malloc(1 << 20)
    rt.sleep(level=1)
    rt.wake_up(tags=["weights"])

gpumem.torch.use_as_allocator() makes PyTorch allocate through it (PyTorch >= 2.1).
"""

from .errors import CODES, GpumemError
from .runtime import Runtime

__all__ = ["Runtime", "GpumemError", "CODES"]
