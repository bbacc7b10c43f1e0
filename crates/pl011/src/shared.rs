//! A PL011 shared between the MMIO bus and the VMM's console input path.

use crate::Pl011;
use alloc::boxed::Box;
use alloc::rc::Rc;
use console::ConsoleSink;
use core::cell::RefCell;
use mmio_bus::{AccessSize, DeviceCtx, IrqLines, MmioDevice, MmioError};

/// A handle to a [`Pl011`] that the bus and the VMM both hold: the bus owns its devices
/// (`Box<dyn MmioDevice>`), but the VMM must still push console input into the UART and
/// flush its output. Clones are the same UART. Single-threaded (`Rc`), like the event loop.
///
/// ```ignore
/// let uart = SharedPl011::new(Pl011::new(layout.spi.intid(), LineWriter::guest("ttyAMA0", DebugOut)));
/// bus.add("pl011", GuestRange::new(layout.base.0, pl011::REGION_SIZE), uart.device())?;
/// // later, when the user typed something (after the escape filter):
/// let stored = uart.push_input(&bytes[..uart.rx_space().min(bytes.len())], &mut irq_lines);
/// ```
pub struct SharedPl011<S>(Rc<RefCell<Pl011<S>>>);

impl<S> Clone for SharedPl011<S> {
    fn clone(&self) -> Self {
        SharedPl011(Rc::clone(&self.0))
    }
}

impl<S: ConsoleSink> SharedPl011<S> {
    /// Shares `uart`.
    pub fn new(uart: Pl011<S>) -> Self {
        SharedPl011(Rc::new(RefCell::new(uart)))
    }

    /// A handle for [`mmio_bus::MmioBus::add`].
    pub fn device(&self) -> Box<dyn MmioDevice>
    where
        S: 'static,
    {
        Box::new(self.clone())
    }

    /// Runs `f` on the UART; `None` if it is already borrowed (called from inside one of its
    /// own accesses, which the single-threaded event loop never does).
    pub fn with<R>(&self, f: impl FnOnce(&mut Pl011<S>) -> R) -> Option<R> {
        let mut uart = self.0.try_borrow_mut().ok()?;
        Some(f(&mut uart))
    }

    /// [`Pl011::push_input`]; 0 if the UART is busy.
    pub fn push_input(&self, bytes: &[u8], irq: &mut dyn IrqLines) -> usize {
        self.with(|u| u.push_input(bytes, irq)).unwrap_or(0)
    }

    /// [`Pl011::push_break`]; false if the UART is busy.
    pub fn push_break(&self, irq: &mut dyn IrqLines) -> bool {
        self.with(|u| u.push_break(irq)).unwrap_or(false)
    }

    /// [`Pl011::rx_space`]; 0 if the UART is busy.
    pub fn rx_space(&self) -> usize {
        self.with(|u| u.rx_space()).unwrap_or(0)
    }

    /// Flushes the output sink (a partial line of a [`console::LineWriter`]).
    pub fn flush(&self) {
        self.with(|u| u.sink_mut().flush());
    }
}

impl<S: ConsoleSink> MmioDevice for SharedPl011<S> {
    fn read(
        &mut self,
        ctx: &mut DeviceCtx<'_>,
        offset: u64,
        size: AccessSize,
    ) -> Result<u64, MmioError> {
        let mut uart = self.0.try_borrow_mut().map_err(|_| MmioError::Busy)?;
        uart.read(ctx, offset, size)
    }

    fn write(
        &mut self,
        ctx: &mut DeviceCtx<'_>,
        offset: u64,
        size: AccessSize,
        value: u64,
    ) -> Result<(), MmioError> {
        let mut uart = self.0.try_borrow_mut().map_err(|_| MmioError::Busy)?;
        uart.write(ctx, offset, size, value)
    }
}
