//! Mapping frames into a VSpace (the guest's stage-2 space, or the root task's own), making
//! the intermediate page tables on the way.

use sel4::{CapRights, VmAttributes, cap_type};

use crate::objects::{AllocError, Objects, PT};

/// Maps the frame in root-CNode slot `frame` at `vaddr` of `vspace`.
pub fn map_frame(
    objs: &mut Objects,
    vspace: sel4::cap::VSpace,
    frame: usize,
    vaddr: usize,
    rights: CapRights,
    attrs: VmAttributes,
) -> Result<(), AllocError> {
    // At most one missing table per level below the root.
    for _ in 0..sel4::vspace_levels::NUM_LEVELS {
        let page = Objects::cap::<cap_type::UnspecifiedPage>(frame);
        match page.frame_map(vspace, vaddr, rights.clone(), attrs) {
            Ok(()) => return Ok(()),
            Err(sel4::Error::FailedLookup) => {
                let pt = objs.alloc_blueprint(PT)?;
                Objects::cap::<cap_type::PT>(pt).pt_map(vspace, vaddr, VmAttributes::default())?;
            }
            Err(e) => return Err(AllocError::Kernel(e)),
        }
    }
    Err(AllocError::Kernel(sel4::Error::FailedLookup))
}
