"""The workload's command-line choices, in a module of their own: the workload imports only
this and the standard library before it serves (a lab starts twenty of its processes, and
restarts one whenever a fault kills it), while the lab's profiles, which import the framework,
build their settings from the same names."""

# the resilient inventory fsyncs before acknowledging, refuses what its disk refuses and reads
# from memory; each flaw takes one of those properties away (see the workload's inventory)
INVENTORY_FLAWS = (
    "acks-failed-writes",
    "reads-from-disk",
    "no-fsync",
    "read-audit",
    "sticky-read-only",
    "memory-buffer",
)
GATEWAY_FLAWS = ("slow", "flaky", "no-metrics")
WARMUPS = ("", "slow", "fail")
RETRIES = ("budget", "unbounded")  # how gateways retry catalogue reads (the workload's --retries)
POOLS = ("bulkhead", "shared")  # how gateways share their capacity between request kinds
CONFIG_MODES = ("last-known", "fail-closed", "frozen")  # gateways without their config centre
