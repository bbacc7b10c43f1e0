//! The guest images, embedded at build time (`build.rs` checks the paths).

/// The guest kernel: an uncompressed arm64 `Image`.
pub static KERNEL: &[u8] = include_bytes!(env!("VMM_GUEST_KERNEL"));
/// The initramfs.
pub static INITRD: &[u8] = include_bytes!(env!("VMM_GUEST_INITRD"));
/// The guest device tree, built by `vmmctl dtb` for the same platform and initrd.
pub static DTB: &[u8] = include_bytes!(env!("VMM_GUEST_DTB"));
/// The virtio-blk disk image.
pub static DISK: &[u8] = include_bytes!(env!("VMM_GUEST_DISK"));
