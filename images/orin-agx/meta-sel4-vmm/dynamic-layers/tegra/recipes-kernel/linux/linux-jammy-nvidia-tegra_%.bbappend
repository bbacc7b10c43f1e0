# The L4T kernel (meta-tegra) with the virtio drivers a seL4 VMM guest needs.
# `require`, not the design document's `include`: a missing file must stop the build, not
# silently produce a kernel without virtio.
require recipes-kernel/linux/linux-virtio.inc
