//! The virtio 1.2 PCI transport of one device (§4.1): the registers in its memory BAR.
//!
//! BAR layout (16 KiB, [`BAR_SIZE`]):
//!
//! | offset | structure | length |
//! | --- | --- | --- |
//! | 0x0000 | common configuration (`virtio_pci_common_cfg`) | 0x38 |
//! | 0x1000 | ISR status | 4 (one byte used) |
//! | 0x2000 | device-specific configuration | the device's, rounded up to 4 |
//! | 0x3000 | notifications, `notify_off_multiplier` 4, queue *n* at 4*n | 4 per queue |
//!
//! Interrupts are INTx only (no MSI-X capability): `msix_config` and `queue_msix_vector` read
//! NO_VECTOR (0xffff) and ignore writes. ISR bit 0 is set when a queue's used ring needs a
//! notification (after `avail.flags` or, with EVENT_IDX, `used_event`), bit 1 on a
//! configuration change (DEVICE_NEEDS_RESET); reading the ISR returns and clears it.

use alloc::boxed::Box;
use alloc::vec::Vec;
use guest_mem::{GuestMemory, GuestPhysAddr};
use mmio_bus::{AccessSize, MmioError};
use virtio_devices::features::{
    TRANSPORT, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1,
};
use virtio_devices::{DeviceError, LogCauses, Queues, VirtioDevice, Virtqueue};

/// Size of the BAR.
pub const BAR_SIZE: u64 = 0x4000;
/// Common configuration offset in the BAR.
pub const COMMON_OFF: u64 = 0x0000;
/// Common configuration length.
pub const COMMON_LEN: u64 = 0x38;
/// ISR offset.
pub const ISR_OFF: u64 = 0x1000;
/// ISR region length.
pub const ISR_LEN: u64 = 4;
/// Device configuration offset.
pub const DEVICE_OFF: u64 = 0x2000;
/// Notification region offset.
pub const NOTIFY_OFF: u64 = 0x3000;
/// `notify_off_multiplier`.
pub const NOTIFY_MULTIPLIER: u64 = 4;
/// Largest device configuration space the BAR has room for.
pub const DEVICE_MAX: u64 = 0x1000;

/// Device status bits (§2.1).
pub mod status {
    /// The guest found the device.
    pub const ACKNOWLEDGE: u8 = 1;
    /// The guest has a driver for it.
    pub const DRIVER: u8 = 2;
    /// The driver is ready.
    pub const DRIVER_OK: u8 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u8 = 8;
    /// The device hit an error and needs a reset.
    pub const DEVICE_NEEDS_RESET: u8 = 0x40;
    /// The driver gave up.
    pub const FAILED: u8 = 0x80;
    /// The bits the driver sets.
    pub const DRIVER_BITS: u8 = ACKNOWLEDGE | DRIVER | DRIVER_OK | FEATURES_OK | FAILED;
}

/// ISR bit: a queue was used.
pub const ISR_QUEUE: u8 = 1;
/// ISR bit: configuration changed.
pub const ISR_CONFIG: u8 = 2;
const NO_VECTOR: u64 = 0xffff;

/// Transport-level reasons for ignoring a driver request; numbered from 32 so that they share
/// one [`LogCauses`] with the devices' [`DeviceError`] causes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Refusal {
    /// Driver features written after FEATURES_OK.
    FeaturesAfterFeaturesOk = 32,
    /// FEATURES_OK refused: the driver accepted features the device did not offer.
    UnknownFeatures,
    /// FEATURES_OK refused: VIRTIO_F_VERSION_1 not accepted.
    NoVersion1,
    /// A status write clearing bits (only 0 resets).
    StatusCleared,
    /// DRIVER_OK without FEATURES_OK.
    DriverOkWithoutFeaturesOk,
    /// Queue configuration written while the queue is enabled.
    QueueConfigWhileEnabled,
    /// `queue_enable` refused: bad size or rings.
    QueueEnableRefused,
    /// `queue_enable` written 0 (not allowed without VIRTIO_F_RING_RESET).
    QueueDisable,
    /// Notification of a queue the device does not have.
    NotifyUnknownQueue,
    /// Notification of a queue that is not enabled.
    NotifyDisabledQueue,
    /// Notification before DRIVER_OK.
    NotifyBeforeDriverOk,
    /// Notification while the device needs a reset.
    NotifyWhileNeedsReset,
    /// `queue_enable` before FEATURES_OK.
    QueueEnableBeforeFeaturesOk,
    /// A write to read-only device configuration.
    ConfigReadOnly,
    /// Queue registers of a `queue_select` beyond the queues.
    NoSuchQueue,
}

impl Refusal {
    fn text(self) -> &'static str {
        match self {
            Refusal::FeaturesAfterFeaturesOk => "driver features written after FEATURES_OK",
            Refusal::UnknownFeatures => "FEATURES_OK refused: driver accepted features not offered",
            Refusal::NoVersion1 => "FEATURES_OK refused: VIRTIO_F_VERSION_1 not accepted",
            Refusal::StatusCleared => "status write clears bits without a reset",
            Refusal::DriverOkWithoutFeaturesOk => "DRIVER_OK without FEATURES_OK",
            Refusal::QueueConfigWhileEnabled => "queue configuration written while enabled",
            Refusal::QueueEnableRefused => "queue_enable refused",
            Refusal::QueueDisable => "queue_enable written 0",
            Refusal::NotifyUnknownQueue => "notification of a queue the device does not have",
            Refusal::NotifyDisabledQueue => "notification of a queue that is not enabled",
            Refusal::NotifyBeforeDriverOk => "notification before DRIVER_OK",
            Refusal::NotifyWhileNeedsReset => "notification while the device needs a reset",
            Refusal::QueueEnableBeforeFeaturesOk => "queue_enable before FEATURES_OK",
            Refusal::ConfigReadOnly => "write to read-only device configuration",
            Refusal::NoSuchQueue => "queue register of a queue the device does not have",
        }
    }
}

/// What to run the device for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Work {
    Notify(u16),
    Poll,
}

/// One device and its transport state.
pub(crate) struct Transport {
    device: Box<dyn VirtioDevice>,
    queues: Vec<Virtqueue>,
    status: u8,
    device_feature_select: u32,
    driver_feature_select: u32,
    driver_features: u64,
    queue_select: u16,
    isr: u8,
    config_generation: u8,
    log: LogCauses,
    slot: u8,
}

impl Transport {
    pub(crate) fn new(device: Box<dyn VirtioDevice>, slot: u8) -> Self {
        let queues = (0..device.num_queues())
            .map(|q| Virtqueue::new(device.queue_max_size(q)))
            .collect();
        Transport {
            device,
            queues,
            status: 0,
            device_feature_select: 0,
            driver_feature_select: 0,
            driver_features: 0,
            queue_select: 0,
            isr: 0,
            config_generation: 0,
            log: LogCauses::default(),
            slot,
        }
    }

    pub(crate) fn device(&self) -> &dyn VirtioDevice {
        &*self.device
    }

    pub(crate) fn status(&self) -> u8 {
        self.status
    }

    pub(crate) fn isr(&self) -> u8 {
        self.isr
    }

    pub(crate) fn queues(&self) -> &[Virtqueue] {
        &self.queues
    }

    /// Device configuration length as the capability states it.
    pub(crate) fn device_cfg_len(&self) -> u64 {
        (u64::from(self.device.config_len()).div_ceil(4))
            .saturating_mul(4)
            .min(DEVICE_MAX)
    }

    /// Notification region length.
    pub(crate) fn notify_len(&self) -> u64 {
        (u64::from(self.device.num_queues()) * NOTIFY_MULTIPLIER).max(NOTIFY_MULTIPLIER)
    }

    fn offered(&self) -> u64 {
        self.device.features() | TRANSPORT
    }

    fn refuse(&mut self, why: Refusal) {
        if self.log.first(why as u8) {
            log::warn!(
                "virtio-pci 00:{:02x}.0 ({}): {}: ignored",
                self.slot,
                self.device.name(),
                why.text()
            );
        }
    }

    fn fail(&mut self, e: DeviceError) {
        if self.status & status::DEVICE_NEEDS_RESET != 0 {
            return;
        }
        if self.log.first(e.cause()) {
            log::warn!(
                "virtio-pci 00:{:02x}.0 ({}): {e}: device needs reset",
                self.slot,
                self.device.name()
            );
        }
        self.status |= status::DEVICE_NEEDS_RESET;
        if self.status & status::DRIVER_OK != 0 {
            self.isr |= ISR_CONFIG;
        }
    }

    fn reset(&mut self) {
        self.status = 0;
        self.device_feature_select = 0;
        self.driver_feature_select = 0;
        self.driver_features = 0;
        self.queue_select = 0;
        self.isr = 0;
        for q in &mut self.queues {
            q.reset();
        }
        self.device.reset();
    }

    fn write_status(&mut self, value: u8) {
        if value == 0 {
            self.reset();
            return;
        }
        let old = self.status & status::DRIVER_BITS;
        let new = value & status::DRIVER_BITS;
        if new & old != old {
            self.refuse(Refusal::StatusCleared);
            return;
        }
        let mut set = new & !old;
        if set & status::FEATURES_OK != 0 {
            if self.driver_features & !self.offered() != 0 {
                self.refuse(Refusal::UnknownFeatures);
                set &= !status::FEATURES_OK;
            } else if self.driver_features & VIRTIO_F_VERSION_1 == 0 {
                self.refuse(Refusal::NoVersion1);
                set &= !status::FEATURES_OK;
            }
        }
        if set & status::DRIVER_OK != 0 && (old | set) & status::FEATURES_OK == 0 {
            self.refuse(Refusal::DriverOkWithoutFeaturesOk);
            set &= !status::DRIVER_OK;
        }
        self.status |= set;
        if set & status::DRIVER_OK != 0 {
            self.device.activate(self.driver_features);
        }
    }

    fn selected(&mut self) -> Option<&mut Virtqueue> {
        self.queues.get_mut(usize::from(self.queue_select))
    }

    fn queue_read(&self, f: impl Fn(&Virtqueue) -> u64) -> u64 {
        self.queues
            .get(usize::from(self.queue_select))
            .map(f)
            .unwrap_or(0)
    }

    /// A write to one of the selected queue's registers (size, addresses).
    fn queue_write(&mut self, f: impl FnOnce(&mut Virtqueue) -> bool) {
        match self.selected() {
            None => self.refuse(Refusal::NoSuchQueue),
            Some(q) => {
                if !f(q) {
                    self.refuse(Refusal::QueueConfigWhileEnabled);
                }
            }
        }
    }

    fn enable_queue(&mut self, mem: &GuestMemory<'_>, value: u64) {
        if value == 0 {
            self.refuse(Refusal::QueueDisable);
            return;
        }
        if self.status & status::FEATURES_OK == 0 {
            self.refuse(Refusal::QueueEnableBeforeFeaturesOk);
            return;
        }
        let indirect = self.driver_features & VIRTIO_F_INDIRECT_DESC != 0;
        let event_idx = self.driver_features & VIRTIO_F_RING_EVENT_IDX != 0;
        let (slot, name, qsel) = (self.slot, self.device.name(), self.queue_select);
        let Some(q) = self.selected() else {
            self.refuse(Refusal::NoSuchQueue);
            return;
        };
        let result = q.enable(mem, indirect, event_idx);
        if let Err(e) = result
            && self.log.first(Refusal::QueueEnableRefused as u8)
        {
            log::warn!("virtio-pci 00:{slot:02x}.0 ({name}): queue {qsel}: {e}: not enabled");
        }
    }

    fn common_read(&self, off: u64, size: AccessSize) -> Result<u64, MmioError> {
        use AccessSize::{Byte, Double, Half, Word};
        if !off.is_multiple_of(size.bytes()) {
            return Err(MmioError::BadWidth);
        }
        let v = match (off, size) {
            (0x00, Word) => u64::from(self.device_feature_select),
            (0x04, Word) => match self.device_feature_select {
                0 => self.offered() & 0xffff_ffff,
                1 => self.offered() >> 32,
                _ => 0,
            },
            (0x08, Word) => u64::from(self.driver_feature_select),
            (0x0c, Word) => match self.driver_feature_select {
                0 => self.driver_features & 0xffff_ffff,
                1 => self.driver_features >> 32,
                _ => 0,
            },
            (0x10, Half) | (0x1a, Half) => NO_VECTOR,
            (0x12, Half) => u64::from(self.device.num_queues()),
            (0x14, Byte) => u64::from(self.status),
            (0x15, Byte) => u64::from(self.config_generation),
            (0x16, Half) => u64::from(self.queue_select),
            (0x18, Half) => self.queue_read(|q| u64::from(q.size())),
            (0x1c, Half) => self.queue_read(|q| u64::from(q.enabled())),
            (0x1e, Half) => self.queue_read(|_| u64::from(self.queue_select)),
            (0x20..=0x37, Double) | (0x20..=0x37, Word) => {
                let base = off & !7;
                let hi = off & 4 != 0;
                if hi && size == Double {
                    return Err(MmioError::BadWidth);
                }
                let full = self.queue_read(|q| match base {
                    0x20 => q.desc_addr().0,
                    0x28 => q.avail_addr().0,
                    _ => q.used_addr().0,
                });
                match (size, hi) {
                    (Double, _) => full,
                    (_, false) => full & 0xffff_ffff,
                    (_, true) => full >> 32,
                }
            }
            (0..COMMON_LEN, _) => return Err(MmioError::BadWidth),
            _ => return Err(MmioError::NoRegister),
        };
        Ok(v)
    }

    fn common_write(
        &mut self,
        mem: &GuestMemory<'_>,
        off: u64,
        size: AccessSize,
        value: u64,
    ) -> Result<(), MmioError> {
        use AccessSize::{Byte, Double, Half, Word};
        if !off.is_multiple_of(size.bytes()) {
            return Err(MmioError::BadWidth);
        }
        match (off, size) {
            (0x00, Word) => self.device_feature_select = value as u32,
            (0x08, Word) => self.driver_feature_select = value as u32,
            (0x0c, Word) => {
                if self.status & status::FEATURES_OK != 0 {
                    self.refuse(Refusal::FeaturesAfterFeaturesOk);
                } else {
                    match self.driver_feature_select {
                        0 => self.driver_features = (self.driver_features & !0xffff_ffff) | value,
                        1 => {
                            self.driver_features =
                                (self.driver_features & 0xffff_ffff) | (value << 32)
                        }
                        // No feature bits up there: accepting none is all a driver may do.
                        _ if value == 0 => {}
                        _ => self.refuse(Refusal::UnknownFeatures),
                    }
                }
            }
            (0x10, Half) | (0x1a, Half) => {} // no MSI-X: stays NO_VECTOR
            (0x14, Byte) => self.write_status(value as u8),
            (0x16, Half) => self.queue_select = value as u16,
            (0x18, Half) => self.queue_write(|q| q.set_size(value as u16)),
            (0x1c, Half) => self.enable_queue(mem, value),
            (0x20..=0x37, Double) | (0x20..=0x37, Word) => {
                let base = off & !7;
                let hi = off & 4 != 0;
                if hi && size == Double {
                    return Err(MmioError::BadWidth);
                }
                self.queue_write(|q| {
                    let old = match base {
                        0x20 => q.desc_addr().0,
                        0x28 => q.avail_addr().0,
                        _ => q.used_addr().0,
                    };
                    let new = match (size, hi) {
                        (Double, _) => value,
                        (_, false) => (old & !0xffff_ffff) | value,
                        (_, true) => (old & 0xffff_ffff) | (value << 32),
                    };
                    let a = GuestPhysAddr(new);
                    match base {
                        0x20 => q.set_desc_addr(a),
                        0x28 => q.set_avail_addr(a),
                        _ => q.set_used_addr(a),
                    }
                });
            }
            (0x04, Word) | (0x12, Half) | (0x15, Byte) | (0x1e, Half) => {
                return Err(MmioError::ReadOnly);
            }
            (0..COMMON_LEN, _) => return Err(MmioError::BadWidth),
            _ => return Err(MmioError::NoRegister),
        }
        Ok(())
    }

    /// A read of the BAR at `off`.
    pub(crate) fn bar_read(&mut self, off: u64, size: AccessSize) -> Result<u64, MmioError> {
        if off < ISR_OFF {
            return self.common_read(off - COMMON_OFF, size);
        }
        if off < ISR_OFF + ISR_LEN {
            if off != ISR_OFF || size == AccessSize::Double {
                return Err(MmioError::BadWidth);
            }
            let v = self.isr;
            self.isr = 0;
            return Ok(u64::from(v));
        }
        if (DEVICE_OFF..DEVICE_OFF + DEVICE_MAX).contains(&off) {
            let rel = off.wrapping_sub(DEVICE_OFF); // off >= DEVICE_OFF
            if rel.saturating_add(size.bytes()) > self.device_cfg_len() {
                return Err(MmioError::NoRegister);
            }
            let mut buf = [0u8; 8];
            let n = size.bytes() as usize;
            if let Some(b) = buf.get_mut(..n) {
                self.device.read_config(rel as u32, b);
            }
            return Ok(u64::from_le_bytes(buf));
        }
        if (NOTIFY_OFF..NOTIFY_OFF.saturating_add(self.notify_len())).contains(&off) {
            return Ok(0);
        }
        Err(MmioError::NoRegister)
    }

    /// A write to the BAR at `off`.
    pub(crate) fn bar_write(
        &mut self,
        mem: &GuestMemory<'_>,
        off: u64,
        size: AccessSize,
        value: u64,
    ) -> Result<(), MmioError> {
        if off < ISR_OFF {
            return self.common_write(mem, off - COMMON_OFF, size, value);
        }
        if off < ISR_OFF + ISR_LEN {
            return Err(MmioError::ReadOnly);
        }
        if (DEVICE_OFF..DEVICE_OFF + DEVICE_MAX).contains(&off) {
            let rel = off.wrapping_sub(DEVICE_OFF); // off >= DEVICE_OFF
            if rel.saturating_add(size.bytes()) > self.device_cfg_len() {
                return Err(MmioError::NoRegister);
            }
            let bytes = value.to_le_bytes();
            let data = bytes.get(..size.bytes() as usize).unwrap_or(&[]);
            if !self.device.write_config(rel as u32, data) {
                self.refuse(Refusal::ConfigReadOnly);
                return Err(MmioError::ReadOnly);
            }
            return Ok(());
        }
        if (NOTIFY_OFF..NOTIFY_OFF.saturating_add(self.notify_len())).contains(&off) {
            let rel = off.wrapping_sub(NOTIFY_OFF); // off >= NOTIFY_OFF
            if !rel.is_multiple_of(NOTIFY_MULTIPLIER) || size == AccessSize::Byte {
                return Err(MmioError::BadWidth);
            }
            self.notify(mem, (rel / NOTIFY_MULTIPLIER) as u16);
            return Ok(());
        }
        Err(MmioError::NoRegister)
    }

    /// The driver notified queue `queue`.
    pub(crate) fn notify(&mut self, mem: &GuestMemory<'_>, queue: u16) {
        match self.queues.get(usize::from(queue)) {
            None => self.refuse(Refusal::NotifyUnknownQueue),
            Some(q) if !q.enabled() => self.refuse(Refusal::NotifyDisabledQueue),
            Some(_) => self.run(mem, Work::Notify(queue)),
        }
    }

    /// Outside work: queues whose last round ran out of budget, then the device's own poll.
    pub(crate) fn poll(&mut self, mem: &GuestMemory<'_>) {
        if self.status & status::DRIVER_OK != 0 && self.status & status::DEVICE_NEEDS_RESET == 0 {
            self.run(mem, Work::Poll);
        }
    }

    fn run(&mut self, mem: &GuestMemory<'_>, work: Work) {
        if self.status & status::DRIVER_OK == 0 {
            self.refuse(Refusal::NotifyBeforeDriverOk);
            return;
        }
        if self.status & status::DEVICE_NEEDS_RESET != 0 {
            self.refuse(Refusal::NotifyWhileNeedsReset);
            return;
        }
        // Queues whose last round ran out of budget, before this round starts (`run` is called
        // after every guest exit: no allocation when, as nearly always, there are none).
        let pending = |q: &Virtqueue| q.enabled() && q.pending();
        let any_pending = work == Work::Poll && self.queues.iter().any(pending);
        let pending: Vec<u16> = if any_pending {
            (0..self.device.num_queues())
                .filter(|&i| self.queues.get(usize::from(i)).is_some_and(pending))
                .collect()
        } else {
            Vec::new()
        };
        for q in &mut self.queues {
            q.begin_round();
        }
        let result = {
            let mut queues = Queues::new(&mut self.queues, mem, self.driver_features);
            match work {
                Work::Notify(q) => self.device.process_queue(q, &mut queues),
                Work::Poll => pending
                    .iter()
                    .try_for_each(|&q| self.device.process_queue(q, &mut queues))
                    .and_then(|()| self.device.poll(&mut queues)),
            }
        };
        if let Err(e) = result {
            self.fail(e);
        }
        let mut used = false;
        let mut error = None;
        for q in &mut self.queues {
            match q.needs_notification(mem) {
                Ok(n) => used |= n,
                Err(e) => error = Some(e),
            }
        }
        if used {
            self.isr |= ISR_QUEUE;
        }
        if let Some(e) = error {
            self.fail(DeviceError::Queue(e));
        }
    }
}
