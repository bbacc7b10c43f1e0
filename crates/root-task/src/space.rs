//! Mapping frames into a VSpace (the guest's stage-2 space, or the root task's own), making
//! the intermediate page tables on the way.

use sel4::{CapRights, VmAttributes, cap_type};

use crate::objects::{AllocError, Objects, PT, Slot};

/// Maps the frame in root-CNode slot `frame` at `vaddr` of `vspace`.
pub fn map_frame(
    objs: &mut Objects,
    vspace: sel4::cap::VSpace,
    frame: Slot,
    vaddr: usize,
    rights: CapRights,
    attrs: VmAttributes,
) -> Result<(), AllocError> {
    // At most one missing table per level below the root.
    for _ in 0..sel4::vspace_levels::NUM_LEVELS {
        let page = frame.cap::<cap_type::UnspecifiedPage>();
        match page.frame_map(vspace, vaddr, rights.clone(), attrs) {
            Ok(()) => return Ok(()),
            Err(sel4::Error::FailedLookup) => {
                let pt = objs.alloc_blueprint(PT)?;
                pt.cap::<cap_type::PT>()
                    .pt_map(vspace, vaddr, VmAttributes::default())?;
            }
            Err(e) => return Err(AllocError::Kernel(e)),
        }
    }
    Err(AllocError::Kernel(sel4::Error::FailedLookup))
}

/// Maps the 4 KiB device page at physical `paddr` (from seL4's device untypeds) at `vaddr` of
/// the root task, uncached and never executed.
pub fn map_device_page(
    objs: &mut Objects,
    paddr: usize,
    vaddr: usize,
    rights: CapRights,
) -> Result<(), AllocError> {
    let frame = objs.alloc_at(
        paddr,
        sel4::ObjectBlueprint::Arch(sel4::ObjectBlueprintArch::SmallPage),
    )?;
    // Device memory: no cacheable attribute.
    map_frame(
        objs,
        sel4::init_thread::slot::VSPACE.cap(),
        frame,
        vaddr,
        rights,
        VmAttributes::EXECUTE_NEVER,
    )
}
