//! A guest made of a `virtio-drivers` driver running on the host, whose MMIO traps into our
//! device models (see the crate documentation).

use crate::{Irqs, trap};
use guest_mem::{GuestMemory, GuestPhysAddr, GuestRange};
use hypervisor::VcpuId;
use mmio_bus::{AccessSize, DeviceCtx, MmioBus};
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Mutex, MutexGuard};
use virtio_devices::VirtioDevice;
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::pci::bus::{
    BarInfo, Command, ConfigurationAccess, DeviceFunction, DeviceFunctionInfo, MemoryBarType,
    PciRoot,
};
use virtio_drivers::{BufferDirection, Hal, PAGE_SIZE, PhysAddr};
use virtio_pci::{FunctionOptions, PciBus, PciLayout, SharedPciBus};
use vmm_platform::QEMU_VIRT;

/// Guest RAM base (QEMU virt's).
pub const RAM_BASE: u64 = 0x4000_0000;
/// Guest RAM size in these tests.
pub const RAM_SIZE: usize = 16 << 20;

/// The PCI layout of QEMU virt (ECAM at 0x3f00_0000, BAR window 0x1000_0000.., SPIs 3..6).
pub fn layout() -> PciLayout {
    QEMU_VIRT.pci().expect("qemu-virt has a PCI bridge").layout
}

struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    fn new(len: usize, prot: libc::c_int) -> Mapping {
        // SAFETY: an anonymous private mapping; the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap of {len:#x} bytes failed");
        Mapping { ptr: p.cast(), len }
    }

    fn contains(&self, addr: usize) -> Option<u64> {
        let base = self.ptr as usize;
        (addr >= base && addr - base < self.len).then(|| (addr - base) as u64)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and nothing uses it any more.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// The machine: the MMIO bus with the PCI bridge on it, guest RAM and the interrupt lines.
pub struct Machine {
    /// The VMM's MMIO bus, with `pci-ecam` and `pci-mmio` registered.
    pub bus: MmioBus,
    /// The bridge.
    pub pci: SharedPciBus,
    /// Guest RAM as the devices see it.
    pub mem: GuestMemory<'static>,
    /// Interrupt lines.
    pub irq: Irqs,
    /// Trapped accesses so far.
    pub traps: u64,
    ecam: Mapping,
    bars: Mapping,
    // Last: unmapped after everything that points into it.
    _ram: Mapping,
}

impl Machine {
    fn ctx_run<R>(&mut self, f: impl FnOnce(&mut MmioBus, &mut DeviceCtx<'_>) -> R) -> R {
        let mut ctx = DeviceCtx {
            vcpu: VcpuId(0),
            mem: &self.mem,
            irq: &mut self.irq,
        };
        f(&mut self.bus, &mut ctx)
    }

    /// What the VMM does when it has outside work: the bridge's poll.
    pub fn poll(&mut self) {
        let pci = self.pci.clone();
        self.ctx_run(|_, ctx| pci.poll(ctx));
    }

    /// The level of INTx line `line` (0 = INTA).
    pub fn intx(&self, line: usize) -> bool {
        self.irq.is_high(layout().intx[line].intid())
    }
}

static CURRENT: AtomicPtr<Machine> = AtomicPtr::new(std::ptr::null_mut());

/// True when `addr` lies in a trapped window of the current machine.
pub(crate) fn is_trapped(addr: usize) -> bool {
    let m = CURRENT.load(Ordering::SeqCst);
    if m.is_null() {
        return false;
    }
    // SAFETY: the pointer is valid while the guard that set it lives; the handler runs on the
    // test's own thread, in the middle of a driver access, when no other reference is used.
    let m = unsafe { &*m };
    m.ecam.contains(addr).is_some() || m.bars.contains(addr).is_some()
}

fn route(addr: usize, size: AccessSize, store: Option<u64>) -> Option<u64> {
    let m = CURRENT.load(Ordering::SeqCst);
    if m.is_null() {
        return None;
    }
    // SAFETY: see `is_trapped`.
    let m = unsafe { &mut *m };
    let l = layout();
    let gpa = if let Some(off) = m.ecam.contains(addr) {
        l.ecam.base.0 + off
    } else if let Some(off) = m.bars.contains(addr) {
        l.mmio.base.0 + off
    } else {
        return None;
    };
    m.traps += 1;
    let gpa = GuestPhysAddr(gpa);
    Some(m.ctx_run(|bus, ctx| match store {
        Some(v) => {
            bus.write(ctx, gpa, size, v);
            0
        }
        None => bus.read(ctx, gpa, size).0,
    }))
}

struct Dma {
    host: usize,
    free: Vec<bool>,
    bounces: HashMap<u64, usize>,
}

static DMA: Mutex<Option<Dma>> = Mutex::new(None);

fn dma() -> MutexGuard<'static, Option<Dma>> {
    DMA.lock().unwrap_or_else(|e| e.into_inner())
}

impl Dma {
    fn alloc(&mut self, pages: usize) -> (u64, *mut u8) {
        let pages = pages.max(1);
        let mut run = 0;
        for i in 0..self.free.len() {
            run = if self.free[i] { run + 1 } else { 0 };
            if run == pages {
                let first = i + 1 - pages;
                for f in &mut self.free[first..=i] {
                    *f = false;
                }
                let off = first * PAGE_SIZE;
                let host = (self.host + off) as *mut u8;
                // SAFETY: inside the RAM mapping, now owned by this allocation.
                unsafe { std::ptr::write_bytes(host, 0, pages * PAGE_SIZE) };
                return (RAM_BASE + off as u64, host);
            }
        }
        panic!("guest RAM exhausted ({pages} pages)");
    }

    fn free(&mut self, gpa: u64, pages: usize) {
        let first = ((gpa - RAM_BASE) as usize) / PAGE_SIZE;
        for f in &mut self.free[first..first + pages.max(1)] {
            *f = true;
        }
    }

    fn host(&self, gpa: u64) -> *mut u8 {
        (self.host + (gpa - RAM_BASE) as usize) as *mut u8
    }
}

/// The driver's view of the platform: DMA from guest RAM, BARs through the trapped window.
pub struct GuestHal;

// SAFETY: dma_alloc returns zeroed, page-aligned, exclusively owned pages of the RAM mapping;
// mmio_phys_to_virt maps BAR addresses into the trapped window.
unsafe impl Hal for GuestHal {
    fn dma_alloc(pages: usize, _dir: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let mut d = dma();
        let d = d.as_mut().expect("no machine");
        let (gpa, host) = d.alloc(pages);
        (gpa, NonNull::new(host).expect("null"))
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        if let Some(d) = dma().as_mut() {
            d.free(paddr, pages);
        }
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let l = layout();
        assert!(
            l.mmio.contains_range(GuestPhysAddr(paddr), size as u64),
            "MMIO {paddr:#x}+{size:#x} outside the BAR window"
        );
        let m = CURRENT.load(Ordering::SeqCst);
        assert!(!m.is_null(), "no machine");
        // SAFETY: only the mapping's address is read.
        let base = unsafe { (*m).bars.ptr } as usize;
        NonNull::new((base + (paddr - l.mmio.base.0) as usize) as *mut u8).expect("null")
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let len = buffer.len();
        let pages = len.div_ceil(PAGE_SIZE);
        let mut d = dma();
        let d = d.as_mut().expect("no machine");
        let (gpa, host) = d.alloc(pages);
        d.bounces.insert(gpa, pages);
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller's buffer is valid for `len` bytes; the bounce buffer is ours.
            unsafe { std::ptr::copy_nonoverlapping(buffer.as_ptr().cast::<u8>(), host, len) };
        }
        gpa
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let mut d = dma();
        let d = d.as_mut().expect("no machine");
        if direction != BufferDirection::DriverToDevice {
            // SAFETY: as in `share`, in the other direction.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    d.host(paddr),
                    buffer.as_ptr().cast::<u8>(),
                    buffer.len(),
                )
            };
        }
        let pages = d
            .bounces
            .remove(&paddr)
            .expect("unshare of a buffer never shared");
        d.free(paddr, pages);
    }
}

/// Configuration access through the trapped ECAM window, as a guest kernel's ECAM driver does
/// it: a 32-bit load or store at `ecam + (bus << 20 | device << 15 | function << 12 | reg)`.
/// The platform's ECAM covers bus 0 only; other buses are not there (all-ones, as a host
/// bridge answers a master abort).
pub struct EcamAccess {
    base: usize,
    len: usize,
}

impl EcamAccess {
    fn addr(&self, df: DeviceFunction, reg: u8) -> Option<*mut u32> {
        let off = ((df.bus as usize) << 20)
            | ((df.device as usize) << 15)
            | ((df.function as usize) << 12)
            | reg as usize;
        (off + 4 <= self.len).then_some((self.base + off) as *mut u32)
    }
}

impl ConfigurationAccess for EcamAccess {
    fn read_word(&self, df: DeviceFunction, reg: u8) -> u32 {
        match self.addr(df, reg) {
            // SAFETY: inside the trapped ECAM window: the load faults into our handler.
            Some(p) => unsafe { p.read_volatile() },
            None => u32::MAX,
        }
    }

    fn write_word(&mut self, df: DeviceFunction, reg: u8, data: u32) {
        if let Some(p) = self.addr(df, reg) {
            // SAFETY: as in `read_word`.
            unsafe { p.write_volatile(data) }
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        EcamAccess {
            base: self.base,
            len: self.len,
        }
    }
}

/// A running machine; dropping it unmaps everything. Holds [`crate::serial`].
pub struct MachineGuard {
    m: *mut Machine,
    _serial: MutexGuard<'static, ()>,
}

impl MachineGuard {
    /// A machine with `devices` on the bridge, in slot order.
    pub fn new(devices: Vec<(Box<dyn VirtioDevice>, FunctionOptions)>) -> MachineGuard {
        let serial = crate::serial();
        trap::install(route);
        let l = layout();
        let ram = Mapping::new(RAM_SIZE, libc::PROT_READ | libc::PROT_WRITE);
        let ecam = Mapping::new(l.ecam.size as usize, libc::PROT_NONE);
        let bars = Mapping::new(l.mmio.size as usize, libc::PROT_NONE);
        // SAFETY: the RAM mapping lives as long as the Machine (dropped last) and only guest
        // memory accessors and the DMA allocator's pages use it.
        let mem = unsafe {
            GuestMemory::from_raw(
                GuestPhysAddr(RAM_BASE),
                NonNull::new(ram.ptr).expect("null"),
                RAM_SIZE as u64,
            )
        };
        let mut pci = PciBus::new(l, GuestRange::new(RAM_BASE, RAM_SIZE as u64));
        for (dev, opts) in devices {
            pci.add_with(dev, opts).expect("add device");
        }
        let pci = SharedPciBus::new(pci);
        let mut bus = MmioBus::new();
        let host = QEMU_VIRT.pci().expect("qemu-virt has a PCI bridge");
        vm_builder::attach_pci(&mut bus, &host, &pci).expect("the bridge's windows");
        *dma() = Some(Dma {
            host: ram.ptr as usize,
            free: vec![true; RAM_SIZE / PAGE_SIZE],
            bounces: HashMap::new(),
        });
        let m = Box::into_raw(Box::new(Machine {
            bus,
            pci,
            mem,
            irq: Irqs::default(),
            traps: 0,
            ecam,
            bars,
            _ram: ram,
        }));
        CURRENT.store(m, Ordering::SeqCst);
        MachineGuard { m, _serial: serial }
    }

    /// Runs `f` on the machine. Never call driver code inside `f`: its MMIO would re-enter.
    pub fn with<R>(&self, f: impl FnOnce(&mut Machine) -> R) -> R {
        // SAFETY: the machine lives until the guard drops; the handler only runs during driver
        // accesses, which `f` must not make.
        f(unsafe { &mut *self.m })
    }

    /// The VMM's poll.
    pub fn poll(&self) {
        self.with(|m| m.poll());
    }

    /// A PCI root over the trapped ECAM window.
    pub fn root(&self) -> PciRoot<EcamAccess> {
        self.with(|m| {
            PciRoot::new(EcamAccess {
                base: m.ecam.ptr as usize,
                len: m.ecam.len,
            })
        })
    }

    /// Does what firmware or the kernel's PCI core does before drivers probe: enumerates bus 0,
    /// sizes every BAR, places it in the window (naturally aligned, one after the other) and
    /// enables memory decoding and bus mastering. Returns the functions found.
    pub fn assign_bars(
        &self,
        root: &mut PciRoot<EcamAccess>,
    ) -> Vec<(DeviceFunction, DeviceFunctionInfo)> {
        let found: Vec<_> = root.enumerate_bus(0).collect();
        let l = layout();
        let mut next = l.mmio.base.0;
        for (df, _) in &found {
            let bars = root.bars(*df).expect("bars");
            for (i, bar) in bars.iter().enumerate() {
                let Some(BarInfo::Memory {
                    address_type, size, ..
                }) = bar
                else {
                    continue;
                };
                next = next.div_ceil(*size) * size;
                match address_type {
                    MemoryBarType::Width64 => root.set_bar_64(*df, i as u8, next),
                    _ => root.set_bar_32(*df, i as u8, next as u32),
                }
                next += size;
            }
            root.set_command(*df, Command::MEMORY_SPACE | Command::BUS_MASTER);
        }
        found
    }

    /// The transport of `df`, for a driver.
    pub fn transport(&self, root: &mut PciRoot<EcamAccess>, df: DeviceFunction) -> PciTransport {
        PciTransport::new::<GuestHal, _>(root, df).expect("virtio PCI transport")
    }
}

impl Drop for MachineGuard {
    fn drop(&mut self) {
        CURRENT.store(std::ptr::null_mut(), Ordering::SeqCst);
        *dma() = None;
        // SAFETY: created by Box::into_raw in `new`, dropped once here.
        drop(unsafe { Box::from_raw(self.m) });
    }
}
