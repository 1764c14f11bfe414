# The starter: brings up the services of the boot manifest, placed by the
# machine's topology, in dependency order, and answers `svc` (docs/services.md).
user_program("starter", srcs=["starter.c", "campaign.c", "manifest.c"])
# The manifest parser on the host (the host C library's snprintf and
# strings): placements, order, every refusal.
host_test("test_manifest", srcs=["../../tests/host/test_manifest.c", "manifest.c"],
          includes=["../../tests/host", "."])
