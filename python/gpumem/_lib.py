"""libgpumem.so through ctypes: finding it and declaring every function of gpumem.h."""

import ctypes
import os

_declarations = {
    "gpumem_start": (ctypes.c_int, [ctypes.c_char_p]),
    "gpumem_start_from_file": (ctypes.c_int, [ctypes.c_char_p]),
    "gpumem_stop": (ctypes.c_int, []),
    "gpumem_is_started": (ctypes.c_int, []),
    "gpumem_device_count": (ctypes.c_int, [ctypes.POINTER(ctypes.c_int)]),
    "gpumem_malloc": (ctypes.c_int, [ctypes.c_size_t, ctypes.c_int, ctypes.c_char_p,
                                     ctypes.POINTER(ctypes.c_void_p)]),
    "gpumem_free": (ctypes.c_int, [ctypes.c_void_p]),
    "gpumem_push_tag": (ctypes.c_int, [ctypes.c_char_p]),
    "gpumem_pop_tag": (ctypes.c_int, []),
    "gpumem_sleep": (ctypes.c_int, [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p),
                                    ctypes.c_size_t]),
    "gpumem_wake_up": (ctypes.c_int, [ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t]),
    "gpumem_is_sleeping": (ctypes.c_int, [ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t,
                                          ctypes.POINTER(ctypes.c_int)]),
    # char** out, freed with gpumem_string_free: c_void_p keeps the pointer raw.
    "gpumem_statistics_json": (ctypes.c_int, [ctypes.POINTER(ctypes.c_void_p)]),
    "gpumem_snapshot_json": (ctypes.c_int, [ctypes.POINTER(ctypes.c_void_p)]),
    "gpumem_string_free": (None, [ctypes.c_void_p]),
    "gpumem_last_error": (ctypes.c_char_p, []),
}

_loaded = {}


def library_path(path=None):
    """The library to load: `path`, else $GPUMEM_LIBRARY, else libgpumem.so from the
    dynamic loader's search path."""
    return path or os.environ.get("GPUMEM_LIBRARY") or "libgpumem.so"


def load(path=None):
    """The library with every function declared; loaded once per path."""
    path = library_path(path)
    if path not in _loaded:
        lib = ctypes.CDLL(path)
        for name, (restype, argtypes) in _declarations.items():
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
        _loaded[path] = lib
    return _loaded[path]
