//! Exit statistics: counts per exit class and vCPU, and per emulated device.

use alloc::vec::Vec;
use core::fmt;
use hypervisor::VcpuId;
use mmio_bus::DeviceIndex;

/// What a guest exit was for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExitClass {
    /// An access to the GIC distributor or redistributors.
    Gic,
    /// An access to a device on the MMIO bus (also counted per device).
    Mmio,
    /// An access nobody emulates.
    Unhandled,
    /// A PSCI / SMCCC call.
    Psci,
    /// WFI or WFE.
    Wfi,
    /// A trapped ICC_SGI*R write.
    Sgi,
    /// Another trapped system register.
    SysReg,
    /// A virtual timer event.
    Vppi,
    /// A VGIC maintenance interrupt.
    Maintenance,
    /// A physical pass-through interrupt (counted on no vCPU).
    PassthroughIrq,
    /// An exit the VMM could not emulate.
    Fatal,
}

impl ExitClass {
    /// Every class, in report order.
    pub const ALL: [ExitClass; 11] = [
        ExitClass::Gic,
        ExitClass::Mmio,
        ExitClass::Unhandled,
        ExitClass::Psci,
        ExitClass::Wfi,
        ExitClass::Sgi,
        ExitClass::SysReg,
        ExitClass::Vppi,
        ExitClass::Maintenance,
        ExitClass::PassthroughIrq,
        ExitClass::Fatal,
    ];

    /// Short name.
    pub const fn name(self) -> &'static str {
        match self {
            ExitClass::Gic => "gic",
            ExitClass::Mmio => "mmio",
            ExitClass::Unhandled => "unhandled",
            ExitClass::Psci => "psci",
            ExitClass::Wfi => "wfi",
            ExitClass::Sgi => "sgi",
            ExitClass::SysReg => "sysreg",
            ExitClass::Vppi => "vppi",
            ExitClass::Maintenance => "maintenance",
            ExitClass::PassthroughIrq => "irq",
            ExitClass::Fatal => "fatal",
        }
    }

    const fn slot(self) -> usize {
        self as usize
    }
}

const CLASSES: usize = ExitClass::ALL.len();

/// Counters.
#[derive(Clone, Debug)]
pub struct ExitStats {
    per_vcpu: Vec<[u64; CLASSES]>,
    global: [u64; CLASSES],
    per_device: Vec<u64>,
    device_names: Vec<&'static str>,
    /// Pass-through interrupts: INTID, name, count.
    per_irq: Vec<(u32, &'static str, u64)>,
}

impl ExitStats {
    /// Zeroed counters for `vcpus` vCPUs.
    pub fn new(vcpus: u8) -> Self {
        ExitStats {
            per_vcpu: alloc::vec![[0; CLASSES]; usize::from(vcpus)],
            global: [0; CLASSES],
            per_device: Vec::new(),
            device_names: Vec::new(),
            per_irq: Vec::new(),
        }
    }

    /// Names the bus devices for the report (index = [`DeviceIndex`]).
    pub fn name_devices(&mut self, names: impl Iterator<Item = &'static str>) {
        self.device_names = names.collect();
        self.per_device = alloc::vec![0; self.device_names.len()];
    }

    /// Names the pass-through interrupts for the report, by INTID.
    pub fn name_irqs(&mut self, irqs: impl Iterator<Item = (u32, &'static str)>) {
        self.per_irq = irqs.map(|(intid, name)| (intid, name, 0)).collect();
    }

    /// Counts a physical interrupt delivered for the guest (named or not).
    pub fn count_irq(&mut self, intid: u32) {
        self.count_global(ExitClass::PassthroughIrq);
        if let Some(e) = self.per_irq.iter_mut().find(|e| e.0 == intid) {
            e.2 = e.2.wrapping_add(1);
        }
    }

    /// Physical interrupts counted for INTID `intid`.
    pub fn irq(&self, intid: u32) -> u64 {
        self.per_irq
            .iter()
            .find(|e| e.0 == intid)
            .map_or(0, |e| e.2)
    }

    /// Counts one exit of `vcpu`.
    #[inline]
    pub fn count(&mut self, vcpu: VcpuId, class: ExitClass) {
        if let Some(row) = self.per_vcpu.get_mut(vcpu.index())
            && let Some(c) = row.get_mut(class.slot())
        {
            *c = c.wrapping_add(1);
        }
    }

    /// Counts an event that belongs to no vCPU.
    pub fn count_global(&mut self, class: ExitClass) {
        if let Some(c) = self.global.get_mut(class.slot()) {
            *c = c.wrapping_add(1);
        }
    }

    /// Counts a bus access, by device (`None`: nobody handled it).
    #[inline]
    pub fn count_mmio(&mut self, vcpu: VcpuId, device: Option<DeviceIndex>) {
        match device {
            Some(DeviceIndex(i)) => {
                self.count(vcpu, ExitClass::Mmio);
                if let Some(c) = self.per_device.get_mut(i) {
                    *c = c.wrapping_add(1);
                }
            }
            None => self.count(vcpu, ExitClass::Unhandled),
        }
    }

    /// Exits of `class` by `vcpu`.
    pub fn get(&self, vcpu: VcpuId, class: ExitClass) -> u64 {
        self.per_vcpu
            .get(vcpu.index())
            .and_then(|r| r.get(class.slot()))
            .copied()
            .unwrap_or(0)
    }

    /// Exits of `class` over all vCPUs, plus those of no vCPU.
    pub fn total(&self, class: ExitClass) -> u64 {
        let own = self.global.get(class.slot()).copied().unwrap_or(0);
        self.per_vcpu
            .iter()
            .filter_map(|r| r.get(class.slot()))
            .fold(own, |a, b| a.wrapping_add(*b))
    }

    /// Bus accesses handled by device `i`.
    pub fn device(&self, i: usize) -> u64 {
        self.per_device.get(i).copied().unwrap_or(0)
    }
}

impl fmt::Display for ExitStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<12}", "exits")?;
        for v in 0..self.per_vcpu.len() {
            write!(f, " {:>10}", alloc::format!("vcpu{v}"))?;
        }
        writeln!(f, " {:>10}", "total")?;
        for class in ExitClass::ALL {
            let total = self.total(class);
            if total == 0 {
                continue;
            }
            write!(f, "{:<12}", class.name())?;
            for row in &self.per_vcpu {
                write!(f, " {:>10}", row.get(class.slot()).copied().unwrap_or(0))?;
            }
            writeln!(f, " {total:>10}")?;
        }
        for (name, count) in self.device_names.iter().zip(&self.per_device) {
            if *count != 0 {
                writeln!(f, "  mmio {name:<16} {count:>10}")?;
            }
        }
        // Every pass-through interrupt, a silent one too (a line that never fired is news).
        for (intid, name, count) in &self.per_irq {
            writeln!(f, "  irq  {name:<16} {count:>10}  (INTID {intid})")?;
        }
        Ok(())
    }
}
