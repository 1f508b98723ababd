"""gpumem from Python: tag what you allocate with regions, sleep at level 1 (the
weights' bytes go to host memory, the rest is released), wake, and find the weights
unchanged at the same address. Run with PYTHONPATH=python and GPUMEM_LIBRARY set to
libgpumem.so."""

import ctypes

import gpumem

with gpumem.Runtime("--gpumem.backend=host --gpumem.log-level=warn") as rt:
    with rt.region("weights"):
        weights = rt.malloc(4 << 20)
    with rt.region("kv_cache"):
        kv = rt.malloc(16 << 20)

    ctypes.memmove(weights, b"the model's weights", 19)
    rt.sleep(level=1)
    print("asleep:", rt.is_sleeping(), "- weights asleep:", rt.is_sleeping(tags=["weights"]))
    rt.wake_up(tags=["weights", "kv_cache"])
    print("awake:", not rt.is_sleeping(), "-", ctypes.string_at(weights, 19).decode())
    assert ctypes.string_at(weights, 19) == b"the model's weights"

    tags = rt.stats()["total"]["tags"]
    print({tag: grid["allocated_bytes"]["current"] for tag, grid in tags.items()})
    rt.free(kv)
    rt.free(weights)
