//! Loading the guest's boot images into guest RAM.
//!
//! The kernel is placed per Linux's arm64 boot protocol (Documentation/arch/arm64/booting.rst):
//! the Image header's `text_offset` from a 2 MiB-aligned base, with `image_size` bytes (code,
//! data and BSS) free from there.

use core::fmt;
use guest_mem::{GuestMemory, GuestPhysAddr, GuestRange, MemError};
use vmm_platform::LoadRegion;

/// "ARM\x64", at offset 56 of an arm64 Image.
pub const ARM64_MAGIC: u32 = 0x644d_5241;

/// The fields of an arm64 Image header the loader uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Arm64Header {
    /// Offset of the image from a 2 MiB-aligned base.
    pub text_offset: u64,
    /// Bytes the kernel occupies once running, BSS included.
    pub image_size: u64,
    /// Bit 0: big-endian; bits 1-2: page size; bit 3: may be placed anywhere in RAM.
    pub flags: u64,
}

/// Why an image was not loaded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LoadError {
    /// The kernel is shorter than its 64-byte header.
    Truncated,
    /// No arm64 magic at offset 56: not an uncompressed arm64 Image (a gzip'd vmlinuz?).
    BadMagic(u32),
    /// A big-endian kernel.
    BigEndian,
    /// The image does not fit its platform load region.
    TooLarge {
        /// Which image.
        what: &'static str,
        /// Bytes it needs.
        size: u64,
        /// Bytes the region has.
        max: u64,
    },
    /// Guest RAM refused the write (the region is not in RAM).
    Memory(MemError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Truncated => f.write_str("kernel image is shorter than its 64-byte header"),
            LoadError::BadMagic(m) => write!(
                f,
                "kernel image has magic {m:#010x}, not ARM\\x64: give the uncompressed Image, not vmlinuz"
            ),
            LoadError::BigEndian => f.write_str("kernel image is big-endian"),
            LoadError::TooLarge { what, size, max } => {
                write!(
                    f,
                    "{what} needs {size:#x} bytes; its load region has {max:#x}"
                )
            }
            LoadError::Memory(e) => write!(f, "{e}"),
        }
    }
}

impl From<MemError> for LoadError {
    fn from(e: MemError) -> Self {
        LoadError::Memory(e)
    }
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = at.checked_add(8).and_then(|end| b.get(at..end)) {
        v.copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

/// Parses the 64-byte arm64 Image header.
pub fn parse_arm64_header(image: &[u8]) -> Result<Arm64Header, LoadError> {
    if image.len() < 64 {
        return Err(LoadError::Truncated);
    }
    let magic = le64(image, 56) as u32;
    if magic != ARM64_MAGIC {
        return Err(LoadError::BadMagic(magic));
    }
    let mut h = Arm64Header {
        text_offset: le64(image, 8),
        image_size: le64(image, 16),
        flags: le64(image, 24),
    };
    // Kernels before 3.17 leave image_size 0 and assume a text_offset of 0x80000.
    if h.image_size == 0 {
        h.text_offset = 0x8_0000;
    }
    if h.flags & 1 != 0 {
        return Err(LoadError::BigEndian);
    }
    Ok(h)
}

/// Loads a kernel Image into `region` and returns its entry point.
pub fn load_kernel(
    mem: &GuestMemory<'_>,
    region: LoadRegion,
    image: &[u8],
) -> Result<GuestPhysAddr, LoadError> {
    let h = parse_arm64_header(image)?;
    let size = (image.len() as u64).max(h.image_size);
    let needed = h.text_offset.saturating_add(size);
    if needed > region.max_size {
        return Err(LoadError::TooLarge {
            what: "kernel",
            size: needed,
            max: region.max_size,
        });
    }
    let entry = region
        .addr
        .checked_add(h.text_offset)
        .ok_or(LoadError::TooLarge {
            what: "kernel",
            size: needed,
            max: region.max_size,
        })?;
    mem.write(entry, image)?;
    Ok(entry)
}

/// Copies an initrd or DTB into `region`; returns the range it occupies.
pub fn load_blob(
    mem: &GuestMemory<'_>,
    region: LoadRegion,
    what: &'static str,
    bytes: &[u8],
) -> Result<GuestRange, LoadError> {
    let size = bytes.len() as u64;
    if size > region.max_size {
        return Err(LoadError::TooLarge {
            what,
            size,
            max: region.max_size,
        });
    }
    mem.write(region.addr, bytes)?;
    Ok(GuestRange {
        base: region.addr,
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn header(text_offset: u64, image_size: u64, flags: u64) -> alloc::vec::Vec<u8> {
        let mut h = vec![0u8; 128];
        h[8..16].copy_from_slice(&text_offset.to_le_bytes());
        h[16..24].copy_from_slice(&image_size.to_le_bytes());
        h[24..32].copy_from_slice(&flags.to_le_bytes());
        h[56..60].copy_from_slice(&ARM64_MAGIC.to_le_bytes());
        h
    }

    const REGION: LoadRegion = LoadRegion {
        addr: GuestPhysAddr(0x4000_0000),
        max_size: 0x10_0000,
    };

    #[test]
    fn loads_at_text_offset() {
        let mut ram = vec![0u8; 0x20_0000];
        let mem = GuestMemory::new(GuestPhysAddr(0x4000_0000), &mut ram);
        let img = header(0x1000, 0x8000, 0b1010);
        assert_eq!(
            load_kernel(&mem, REGION, &img),
            Ok(GuestPhysAddr(0x4000_1000))
        );
        assert_eq!(
            mem.read_u32(GuestPhysAddr(0x4000_1000 + 56)).unwrap(),
            ARM64_MAGIC
        );
    }

    #[test]
    fn old_kernels_get_the_old_text_offset() {
        assert_eq!(
            parse_arm64_header(&header(0, 0, 0)).unwrap().text_offset,
            0x8_0000
        );
    }

    #[test]
    fn refuses_bad_images() {
        let mut ram = vec![0u8; 0x20_0000];
        let mem = GuestMemory::new(GuestPhysAddr(0x4000_0000), &mut ram);
        assert_eq!(
            load_kernel(&mem, REGION, &[0; 63]),
            Err(LoadError::Truncated)
        );
        let mut gz = header(0, 0x1000, 0);
        gz[56..60].copy_from_slice(&[0x1f, 0x8b, 8, 0]);
        assert_eq!(
            load_kernel(&mem, REGION, &gz),
            Err(LoadError::BadMagic(0x0008_8b1f))
        );
        assert_eq!(
            load_kernel(&mem, REGION, &header(0, 0x1000, 1)),
            Err(LoadError::BigEndian)
        );
        // BSS counts: image_size larger than the region.
        assert_eq!(
            load_kernel(&mem, REGION, &header(0, 0x20_0000, 0)),
            Err(LoadError::TooLarge {
                what: "kernel",
                size: 0x20_0000,
                max: 0x10_0000
            })
        );
        // A region outside RAM is refused by GuestMemory, not written.
        let outside = LoadRegion {
            addr: GuestPhysAddr(0x4020_0000),
            max_size: 0x1000,
        };
        assert!(matches!(
            load_blob(&mem, outside, "dtb", &[1; 16]),
            Err(LoadError::Memory(_))
        ));
        assert_eq!(
            load_blob(&mem, REGION, "initrd", &vec![0; 0x10_0001]),
            Err(LoadError::TooLarge {
                what: "initrd",
                size: 0x10_0001,
                max: 0x10_0000
            })
        );
        assert_eq!(
            load_blob(&mem, REGION, "dtb", &[7; 16]),
            Ok(GuestRange::new(0x4000_0000, 16))
        );
    }
}
