SUMMARY = "Minimal Linux guest for the seL4 VMM"
DESCRIPTION = "A console-only image: its cpio.gz is the VMM's initramfs, its ext4 the \
virtio-blk disk. Build with MACHINE = vm-jetson-agx-orin."
LICENSE = "MIT"

IMAGE_INSTALL = "packagegroup-core-boot ${CORE_IMAGE_EXTRA_INSTALL}"
IMAGE_LINGUAS = " "

inherit core-image

# Small enough to embed in the VMM's boot image (the kernel partition holds both).
IMAGE_ROOTFS_SIZE ?= "8192"
IMAGE_ROOTFS_EXTRA_SPACE:append = "${@bb.utils.contains("DISTRO_FEATURES", "systemd", " + 4096", "", d)}"
