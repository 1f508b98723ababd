"""gpumem's errors: the codes of gpumem.h, raised as GpumemError."""

# gpumem.h's enum gpumem_status, by value.
CODES = {
    1: "zero_size", 2: "too_large", 3: "invalid_alignment", 4: "unknown_strategy",
    5: "invalid_tag", 6: "unknown_region", 7: "double_free", 8: "out_of_memory",
    9: "tag_asleep", 10: "transition_in_progress", 11: "invalid_transition",
    12: "insufficient_memory", 13: "invalid_config", 14: "device_failure",
    15: "device_asleep", 16: "unknown_device", 17: "no_device_available", 18: "timeout",
    19: "rolled_back", 20: "node_unreachable", 100: "invalid_argument", 101: "not_started",
    102: "already_started", 103: "no_tag_scope", 104: "start_failed", 105: "internal",
}


class GpumemError(Exception):
    """A failed call: `code` (gpumem.h's number), `name` ("double_free") and the
    library's message."""

    def __init__(self, code, message):
        self.code = code
        self.name = CODES.get(code, "unknown")
        self.message = message
        super().__init__(f"{self.name} ({code}): {message}")
