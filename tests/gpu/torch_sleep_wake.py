"""On a GPU with PyTorch >= 2.1: a small model's weights allocated through gpumem under
region("weights") and a KV-like buffer under region("kv_cache"), each in its own
torch.cuda.MemPool (as vLLM's CuMemAllocator does); a forward pass; a level-1 sleep
that must give the memory back (torch.cuda.mem_get_info); a wake; the same forward
pass, whose output must equal the first bit for bit. Exit 0 on success, 1 on a failed
check, 77 where PyTorch, CUDA or MemPool is missing. scripts/gpu-check.sh runs it.

Needs PYTHONPATH with python/ and GPUMEM_LIBRARY naming libgpumem.so."""

import sys

try:
    import torch
except ImportError:
    print("skipped: PyTorch is not installed")
    sys.exit(77)
if not torch.cuda.is_available() or not hasattr(torch.cuda, "MemPool"):
    print(f"skipped: PyTorch {torch.__version__} without CUDA or torch.cuda.MemPool")
    sys.exit(77)

import gpumem
import gpumem.torch

MiB = 1 << 20


def free_bytes():
    torch.cuda.synchronize()
    return torch.cuda.mem_get_info()[0]


def main():
    torch.manual_seed(0)
    rt = gpumem.Runtime("--gpumem.backend=cuda --gpumem.log-level=warn")
    try:
        with gpumem.torch.pool(rt), rt.region("weights"):
            model = torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.GELU(),
                                        torch.nn.Linear(4096, 1024)).cuda()
        with gpumem.torch.pool(rt), rt.region("kv_cache"):
            kv = torch.zeros(256 * MiB // 4, device="cuda")
        x = torch.randn(16, 1024, device="cuda")
        with torch.no_grad():
            before = model(x).clone()
        kv.add_(1)  # the KV buffer in use, as a serving step would

        tags = rt.stats()["total"]["tags"]
        print({t: g["allocated_bytes"]["current"] for t, g in tags.items()})
        awake_free = free_bytes()
        rt.sleep(level=1)
        asleep_free = free_bytes()
        print(f"free: {awake_free / MiB:.0f} MiB awake, {asleep_free / MiB:.0f} MiB asleep")
        rt.wake_up()
        woken_free = free_bytes()
        with torch.no_grad():
            after = model(x)
        print(f"free after wake: {woken_free / MiB:.0f} MiB")

        ok = True
        if asleep_free - awake_free < 256 * MiB:
            print("FAILED: the sleep gave back less than the KV buffer")
            ok = False
        if not torch.equal(before, after):
            print("FAILED: the output after the wake differs")
            ok = False
        if rt.is_sleeping():
            print("FAILED: still asleep after the wake")
            ok = False
        print("ok: memory came back during the sleep; outputs equal bit for bit" if ok else "")
        return 0 if ok else 1
    finally:
        rt.close()


if __name__ == "__main__":
    sys.exit(main())
