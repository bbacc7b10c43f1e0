//! Kernel objects from the boot-time untypeds: a slot allocator over the root CNode's empty
//! slots and a bump allocator per untyped that tracks seL4's own watermark (objects are
//! placed at the next multiple of their size), so it can also hand out the object at a given
//! physical address (device frames for pass-through, identity-mapped guest RAM).

use core::ops::Range;

use sel4::{
    AbsoluteCPtr, CapTypeForObjectOfFixedSize, ObjectBlueprint, cap, cap_type, init_thread,
};

/// Why an allocation failed.
#[derive(Debug)]
pub enum AllocError {
    /// No empty slot left in the root CNode.
    NoSlots,
    /// No untyped can hold an object of this size.
    NoMemory { size_bits: usize },
    /// No untyped covers this physical range.
    NotCovered { paddr: usize, size_bits: usize },
    /// The kernel refused a retype.
    Kernel(sel4::Error),
}

impl core::fmt::Display for AllocError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AllocError::NoSlots => write!(f, "no empty slot left in the root CNode"),
            AllocError::NoMemory { size_bits } => {
                write!(f, "no untyped memory for an object of 2^{size_bits} bytes")
            }
            AllocError::NotCovered { paddr, size_bits } => write!(
                f,
                "no free untyped covers {paddr:#x} + 2^{size_bits} (taken, or not given to the root task)"
            ),
            AllocError::Kernel(e) => write!(f, "the kernel refused: {e:?}"),
        }
    }
}

impl From<sel4::Error> for AllocError {
    fn from(e: sel4::Error) -> Self {
        AllocError::Kernel(e)
    }
}

/// A slot of the root task's CNode (not an index into anything else).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Slot(usize);

impl Slot {
    /// The slot a capability of the root task's CSpace is in.
    pub fn of<T: sel4::CapType>(cap: sel4::Cap<T>) -> Slot {
        Slot(cap.bits() as usize)
    }

    /// The slot's absolute path, for CNode invocations.
    pub fn path(self) -> AbsoluteCPtr {
        init_thread::slot::CNODE
            .cap()
            .absolute_cptr(init_thread::Slot::<cap_type::Null>::from_index(self.0).cptr())
    }

    /// The capability in the slot, typed.
    pub fn cap<T: sel4::CapType>(self) -> sel4::Cap<T> {
        init_thread::Slot::<T>::from_index(self.0).cap()
    }
}

struct Untyped {
    cap: cap::Untyped,
    paddr: usize,
    size_bits: usize,
    device: bool,
    /// Offset of the first free byte, as seL4 tracks it for this untyped.
    watermark: usize,
}

/// Allocates slots and objects.
pub struct Objects {
    slots: Range<usize>,
    untypeds: alloc::vec::Vec<Untyped>,
    /// Physical ranges only `alloc_at` may take from (identity-mapped guest RAM, pass-through
    /// frames): any other object there would stand where the guest's frame must go.
    reserved: alloc::vec::Vec<Range<usize>>,
}

impl Objects {
    /// Takes over the empty slots and every untyped the kernel handed the root task.
    pub fn new(bootinfo: &sel4::BootInfo) -> Self {
        let caps = bootinfo.untyped();
        let untypeds = bootinfo
            .untyped_list()
            .iter()
            .enumerate()
            .map(|(i, d)| Untyped {
                cap: caps.index(i).cap(),
                paddr: d.paddr(),
                size_bits: d.size_bits(),
                device: d.is_device(),
                watermark: 0,
            })
            .collect();
        Objects {
            slots: bootinfo.empty().range(),
            untypeds,
            reserved: alloc::vec::Vec::new(),
        }
    }

    /// Keeps `range` for `alloc_at`: `alloc_blueprint` no longer takes from an untyped that
    /// overlaps it.
    pub fn reserve(&mut self, range: Range<usize>) {
        self.reserved.push(range);
    }

    fn is_reserved(&self, u: &Untyped) -> bool {
        let end = u.paddr.saturating_add(1 << u.size_bits);
        self.reserved
            .iter()
            .any(|r| r.start < end && u.paddr < r.end)
    }

    /// Bytes of normal (non-device) untyped memory not handed out yet.
    pub fn free_ram(&self) -> usize {
        self.untypeds
            .iter()
            .filter(|u| !u.device && !self.is_reserved(u))
            .map(|u| (1usize << u.size_bits).saturating_sub(u.watermark))
            .sum()
    }

    /// An empty slot of the root CNode.
    pub fn slot(&mut self) -> Result<Slot, AllocError> {
        self.slots.next().map(Slot).ok_or(AllocError::NoSlots)
    }

    fn retype(&mut self, ut: usize, blueprint: &ObjectBlueprint) -> Result<Slot, AllocError> {
        let slot = self.slot()?;
        let u = self
            .untypeds
            .get_mut(ut)
            .ok_or(AllocError::NoMemory { size_bits: 0 })?;
        u.cap.untyped_retype(
            blueprint,
            &init_thread::slot::CNODE.cap().absolute_cptr_for_self(),
            slot.0,
            1,
        )?;
        let size = 1usize << blueprint.physical_size_bits();
        u.watermark = u.watermark.next_multiple_of(size) + size;
        Ok(slot)
    }

    /// A new object of `blueprint` from normal memory (smallest untyped that fits, to keep
    /// large untypeds for 2 MiB guest pages).
    pub fn alloc_blueprint(&mut self, blueprint: ObjectBlueprint) -> Result<Slot, AllocError> {
        let bits = blueprint.physical_size_bits();
        let size = 1usize << bits;
        let ut = self
            .untypeds
            .iter()
            .enumerate()
            .filter(|(_, u)| !u.device && u.size_bits >= bits && !self.is_reserved(u))
            .filter(|(_, u)| u.watermark.next_multiple_of(size) + size <= 1 << u.size_bits)
            .min_by_key(|(_, u)| u.size_bits)
            .map(|(i, _)| i)
            .ok_or(AllocError::NoMemory { size_bits: bits })?;
        self.retype(ut, &blueprint)
    }

    /// A new fixed-size object.
    pub fn alloc<T: CapTypeForObjectOfFixedSize>(&mut self) -> Result<sel4::Cap<T>, AllocError> {
        Ok(self.alloc_blueprint(T::object_blueprint())?.cap())
    }

    /// The frame of `blueprint`'s size at physical address `paddr`, from whichever untyped
    /// (device or not) covers it. Memory below `paddr` in that untyped is consumed by
    /// padding objects and is lost to other uses.
    pub fn alloc_at(
        &mut self,
        paddr: usize,
        blueprint: ObjectBlueprint,
    ) -> Result<Slot, AllocError> {
        let bits = blueprint.physical_size_bits();
        let size = 1usize << bits;
        let ut = self
            .untypeds
            .iter()
            .position(|u| paddr >= u.paddr && paddr + size <= u.paddr + (1 << u.size_bits))
            .ok_or(AllocError::NotCovered {
                paddr,
                size_bits: bits,
            })?;
        let not_covered = AllocError::NotCovered {
            paddr,
            size_bits: bits,
        };
        let watermark = |objs: &Self| objs.untypeds.get(ut).map(|u| u.watermark);
        let base = self.untypeds.get(ut).map_or(0, |u| u.paddr);
        let target = paddr - base;
        if watermark(self).is_none_or(|wm| wm > target) {
            return Err(not_covered);
        }
        // Pad up to `target` with the largest naturally aligned untypeds that fit.
        while let Some(wm) = watermark(self).filter(|&wm| wm < target) {
            let gap = target - wm;
            let align_bits = if wm == 0 {
                usize::BITS - 1
            } else {
                wm.trailing_zeros()
            } as usize;
            let pad_bits = align_bits.min(gap.ilog2() as usize).max(4);
            self.retype(
                ut,
                &ObjectBlueprint::Untyped {
                    size_bits: pad_bits,
                },
            )?;
        }
        self.retype(ut, &blueprint)
    }

    /// Copies the cap in `slot` to a new slot (a frame mapped twice needs two caps).
    pub fn copy(&mut self, slot: Slot) -> Result<Slot, AllocError> {
        let new = self.slot()?;
        new.path().copy(&slot.path(), sel4::CapRights::all())?;
        Ok(new)
    }

    /// Mints a badged copy of an endpoint or notification cap.
    pub fn mint(&mut self, slot: Slot, badge: sel4::Word) -> Result<Slot, AllocError> {
        let new = self.slot()?;
        new.path()
            .mint(&slot.path(), sel4::CapRights::all(), badge)?;
        Ok(new)
    }
}

/// A PT object's blueprint (any level on AArch64).
pub const PT: ObjectBlueprint = ObjectBlueprint::Arch(sel4::ObjectBlueprintArch::PT);
