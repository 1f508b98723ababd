"""The Python package over libgpumem.so on the host backend: allocate, write through the
pointer, sleep, wake, compare the bytes; and every error path. Run by ctest with
PYTHONPATH=python and GPUMEM_LIBRARY set."""

import ctypes
import os
import sys
import tempfile
import threading
import unittest

import gpumem
from gpumem import GpumemError

OPTIONS = ("--gpumem.backend=host --gpumem.host.devices=2 --gpumem.host.capacity=256M "
           "--gpumem.log-level=warn")


def pattern(size, seed):
    return bytes((seed + i * 31 + (i >> 12)) & 0xFF for i in range(size))


class RuntimeTests(unittest.TestCase):
    def setUp(self):
        self.rt = gpumem.Runtime(OPTIONS)

    def tearDown(self):
        self.rt.close()

    def assertCode(self, name, fn, *args, **kwargs):
        with self.assertRaises(GpumemError) as caught:
            fn(*args, **kwargs)
        self.assertEqual(caught.exception.name, name, str(caught.exception))
        self.assertTrue(caught.exception.message)
        return caught.exception

    def test_region_sleep_wake_keeps_the_weights(self):
        size = 3 * 1024 * 1024 + 17
        with self.rt.region("weights"):
            weights = self.rt.malloc(size)
            with self.rt.region("kv_cache"):
                kv = self.rt.malloc(1 << 20)
        expected = pattern(size, 5)
        ctypes.memmove(weights, expected, size)
        stats = self.rt.stats()
        self.assertGreaterEqual(stats["total"]["tags"]["weights"]["allocated_bytes"]["current"], size)
        self.assertIn("kv_cache", stats["total"]["tags"])

        self.assertFalse(self.rt.is_sleeping())
        self.rt.sleep(level=1)
        self.assertTrue(self.rt.is_sleeping())
        self.assertTrue(self.rt.is_sleeping(tags=["weights"]))
        self.assertFalse(self.rt.is_sleeping(tags=["nobody"]))
        self.rt.wake_up(tags=["weights"])
        self.assertEqual(ctypes.string_at(weights, size), expected)
        self.assertTrue(self.rt.is_sleeping(tags=["kv_cache"]))
        self.rt.wake_up()
        self.assertFalse(self.rt.is_sleeping())
        self.rt.free(weights)
        self.rt.free(kv)
        self.assertEqual(self.rt.stats()["total"]["total"]["allocated_bytes"]["current"], 0)

    def test_snapshot_and_devices(self):
        self.assertEqual(self.rt.device_count(), 2)
        p = self.rt.malloc(4096, device=1, tag="weights")
        snap = self.rt.snapshot()
        self.assertEqual(len(snap["devices"]), 2)
        self.rt.free(p)

    def test_errors(self):
        self.assertCode("zero_size", self.rt.malloc, 0)
        self.assertCode("invalid_argument", self.rt.malloc, -1)
        self.assertCode("too_large", self.rt.malloc, 1 << 50)
        self.assertCode("unknown_device", self.rt.malloc, 4096, device=9)
        self.assertCode("invalid_tag", self.rt.malloc, 4096, tag="")
        p = self.rt.malloc(4096)
        self.assertCode("unknown_region", self.rt.free, p + 8)
        self.assertCode("invalid_argument", self.rt.free, 0)
        self.rt.free(p)
        self.assertCode("double_free", self.rt.free, p)
        self.assertCode("invalid_config", self.rt.sleep, level=9)
        self.assertCode("already_started", gpumem.Runtime, OPTIONS, library=self.rt.library)
        with self.assertRaises(TypeError):
            self.rt.sleep(tags="weights")
        with self.assertRaises(TypeError):
            self.rt.wake_up(tags=[1])
        with self.assertRaises(TypeError):
            with self.rt.region(None):
                pass
        self.assertCode("invalid_tag", self.rt.region("").__enter__)
        self.assertCode("no_tag_scope", self.rt._check, self.rt._lib.gpumem_pop_tag())
        self.assertEqual(self.rt.stats()["total"]["total"]["allocated_bytes"]["current"], 0)

    def test_regions_are_per_thread(self):
        seen = {}

        def other():
            p = self.rt.malloc(4096)
            seen["tags"] = list(self.rt.stats()["total"]["tags"])
            self.rt.free(p)

        with self.rt.region("weights"):
            t = threading.Thread(target=other)
            t.start()
            t.join()
        self.assertIn("default", seen["tags"])
        self.assertNotIn("weights", seen["tags"])


class LifetimeTests(unittest.TestCase):
    def test_not_started_and_bad_starts(self):
        lib = gpumem._lib.load()
        self.assertEqual(lib.gpumem_is_started(), 0)
        with self.assertRaises(GpumemError) as caught:
            gpumem.Runtime("--gpumem.no-such-option=1")
        self.assertEqual(caught.exception.name, "start_failed")
        self.assertIn("no-such-option", caught.exception.message)
        with self.assertRaises(GpumemError) as caught:
            gpumem.Runtime(config_file="/nonexistent/gpumem.conf")
        self.assertEqual(caught.exception.name, "start_failed")

        rt = gpumem.Runtime(OPTIONS)
        rt.close()
        rt.close()  # idempotent
        with self.assertRaises(GpumemError) as caught:
            rt.malloc(4096)
        self.assertEqual(caught.exception.name, "not_started")
        with self.assertRaises(GpumemError) as caught:
            rt.stats()
        self.assertEqual(caught.exception.name, "not_started")

    def test_config_file_and_with_block(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write('[gpumem]\nbackend = "host"\nlog-level = "warn"\n'
                    '[gpumem.host]\ndevices = 3\ncapacity = "64M"\n')
        try:
            with gpumem.Runtime(config_file=f.name) as rt:
                self.assertEqual(rt.device_count(), 3)
        finally:
            os.unlink(f.name)
        self.assertEqual(gpumem._lib.load().gpumem_is_started(), 0)

    def test_torch_is_imported_lazily(self):
        import gpumem.torch  # must not import torch itself
        self.assertTrue(callable(gpumem.torch.use_as_allocator))
        if "torch" not in sys.modules:
            try:
                import torch  # noqa: F401
            except ImportError:
                with gpumem.Runtime(OPTIONS) as rt, self.assertRaises(ImportError):
                    gpumem.torch.use_as_allocator(rt)


if __name__ == "__main__":
    unittest.main()
