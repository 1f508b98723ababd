"""gpumem.Runtime: the process's runtime, started through libgpumem.so."""

import contextlib
import ctypes
import json

from . import _lib
from .errors import GpumemError


def _tag_array(tags):
    """(array, count) for gpumem.h's `const char* const* tags, size_t count`."""
    if tags is None:
        return None, 0
    if isinstance(tags, (str, bytes)):
        raise TypeError("tags must be a list of strings, not one string")
    encoded = [t.encode() if isinstance(t, str) else t for t in tags]
    for t in encoded:
        if not isinstance(t, bytes):
            raise TypeError(f"a tag must be a string, got {type(t).__name__}")
    return (ctypes.c_char_p * len(encoded))(*encoded), len(encoded)


class Runtime:
    """gpumem's runtime in this process (one at a time).

    Runtime() starts one with the defaults, Runtime("--gpumem.backend=host ...") with
    options, Runtime(config_file="gpumem.conf") from a file. close() (or leaving a
    `with` block) stops it. `library` names libgpumem.so (else $GPUMEM_LIBRARY).
    """

    def __init__(self, options="", config_file=None, library=None):
        self.library = _lib.library_path(library)
        self._lib = _lib.load(self.library)
        if config_file is not None:
            self._check(self._lib.gpumem_start_from_file(str(config_file).encode()))
        else:
            self._check(self._lib.gpumem_start(options.encode()))
        self._open = True

    # -- lifetime --------------------------------------------------------------------
    def close(self):
        """Stops the runtime; every region it held is gone. Idempotent."""
        if self._open:
            self._open = False
            self._check(self._lib.gpumem_stop())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- memory ------------------------------------------------------------------------
    def malloc(self, size, device=-1, tag=None):
        """Allocates `size` bytes (tag None: the innermost region(), else "default");
        returns the address as an int."""
        if size < 0:
            raise GpumemError(100, f"malloc: size {size} is negative")
        ptr = ctypes.c_void_p()
        self._check(self._lib.gpumem_malloc(size, device,
                                            None if tag is None else tag.encode(),
                                            ctypes.byref(ptr)))
        return ptr.value

    def free(self, address):
        """Frees what malloc returned."""
        self._check(self._lib.gpumem_free(address))

    @contextlib.contextmanager
    def region(self, tag):
        """Allocations of this thread that name no tag get `tag` inside the block, those
        PyTorch makes through gpumem.torch included."""
        if not isinstance(tag, str):
            raise TypeError(f"the tag must be a string, got {type(tag).__name__}")
        self._check(self._lib.gpumem_push_tag(tag.encode()))
        try:
            yield self
        finally:
            self._check(self._lib.gpumem_pop_tag())

    # -- sleep and wake ----------------------------------------------------------------
    def sleep(self, level=1, tags=None):
        """Level 1 keeps the "weights" tag's bytes on the host and discards the rest;
        level 2 discards everything. tags None: every tag."""
        array, count = _tag_array(tags)
        self._check(self._lib.gpumem_sleep(level, array, count))

    def wake_up(self, tags=None):
        """Maps the sleeping tags again (None: all); every address is as it was."""
        array, count = _tag_array(tags)
        self._check(self._lib.gpumem_wake_up(array, count))

    def is_sleeping(self, tags=None):
        array, count = _tag_array(tags)
        out = ctypes.c_int(-1)
        self._check(self._lib.gpumem_is_sleeping(array, count, ctypes.byref(out)))
        return out.value == 1

    # -- observation -------------------------------------------------------------------
    def stats(self):
        """Every device's statistics and their sum (a dict: "total", "devices")."""
        return self._json(self._lib.gpumem_statistics_json)

    def snapshot(self):
        """Every device's memory snapshot (a dict: "devices")."""
        return self._json(self._lib.gpumem_snapshot_json)

    def device_count(self):
        out = ctypes.c_int(0)
        self._check(self._lib.gpumem_device_count(ctypes.byref(out)))
        return out.value

    # -- helpers -----------------------------------------------------------------------
    def _json(self, fn):
        raw = ctypes.c_void_p()
        self._check(fn(ctypes.byref(raw)))
        try:
            return json.loads(ctypes.string_at(raw.value).decode())
        finally:
            self._lib.gpumem_string_free(raw)

    def _check(self, code):
        if code != 0:
            raise GpumemError(code, (self._lib.gpumem_last_error() or b"").decode())
