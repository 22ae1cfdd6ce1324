//! One serial cable for everything (issue 10 item 4): on a board with one
//! wired UART (the Raspberry Pi's mini-UART on GPIO 14/15, the i.MX 8M Plus
//! EVK's UART2), the hypervisor's console and every guest's console share the
//! line. This is the portable state machine; `hv::console` drives it.
//!
//! **Input.** Typed bytes go to one *target* at a time: the hypervisor's
//! console (where a GDB packet or `Ctrl-C` still hands the line to the GDB
//! stub, as on a line of its own) or one VM's emulated UART. Pressing
//! **`Ctrl-]` three times** ([`SWITCH_KEY`] × [`SWITCH_PRESSES`]) moves input to
//! the next target: hypervisor, vm0, vm1, ..., and back. This is Xen's scheme
//! (three `Ctrl-A`) with another key: `picocom`, `minicom`, `screen` and
//! QEMU's own mux all take `Ctrl-A` as their escape, and pass `Ctrl-]`
//! through. Fewer than three `Ctrl-]` followed by another byte are delivered
//! to the target as typed, so a guest still receives `Ctrl-]`. While GDB owns
//! the line nothing is interpreted (a binary packet may carry 0x1d): every
//! byte is GDB's.
//!
//! **Output.** Guest output passes through (the VMs prefix their lines with
//! `[vmN]` when several print, `hv::vm`). While GDB owns the line, guest output
//! is held ([`OutputMux`]) and released when GDB detaches, so it never lands
//! inside a packet. When the writer changes in the middle of a line (a guest's
//! half line, then a hypervisor message), a line break is put in between.
#![forbid(unsafe_code)]

/// `Ctrl-]` (ASCII GS).
pub const SWITCH_KEY: u8 = 0x1d;
/// How many in a row switch the input.
pub const SWITCH_PRESSES: u8 = 3;

/// Where typed input goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The hypervisor's console (and through it, GDB).
    Hypervisor,
    /// VM `n`'s emulated UART.
    Vm(usize),
}

/// What one typed byte turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A byte for the hypervisor's console.
    Hypervisor(u8),
    /// A byte for VM `n`.
    Vm(usize, u8),
    /// Input now goes here (say so on the line).
    Switched(Target),
}

/// The input side: the current target and how many `Ctrl-]` are pending.
#[derive(Debug, Clone)]
pub struct InputMux {
    target: Target,
    pending: u8,
    vms: usize,
    gdb: bool,
}

impl Default for InputMux {
    fn default() -> Self {
        Self::new()
    }
}

impl InputMux {
    /// Input starts at the hypervisor's console, with no VMs.
    pub const fn new() -> Self {
        Self {
            target: Target::Hypervisor,
            pending: 0,
            vms: 0,
            gdb: false,
        }
    }

    /// Where input goes now.
    pub fn target(&self) -> Target {
        self.target
    }

    /// How many VMs input can go to.
    pub fn vms(&self) -> usize {
        self.vms
    }

    /// How many VMs there are to switch to. A target beyond them falls back to
    /// the hypervisor.
    pub fn set_vms(&mut self, vms: usize) {
        self.vms = vms;
        if matches!(self.target, Target::Vm(n) if n >= vms) {
            self.target = Target::Hypervisor;
        }
    }

    /// GDB owns the line (every byte is the hypervisor's, nothing switches) or
    /// gave it back. Taking it also moves input to the hypervisor, where it is.
    pub fn set_gdb(&mut self, on: bool) {
        self.gdb = on;
        self.pending = 0;
        if on {
            self.target = Target::Hypervisor;
        }
    }

    fn deliver(&self, b: u8, out: &mut impl FnMut(Event)) {
        out(match self.target {
            Target::Hypervisor => Event::Hypervisor(b),
            Target::Vm(n) => Event::Vm(n, b),
        });
    }

    fn next(&self) -> Target {
        match self.target {
            Target::Hypervisor if self.vms > 0 => Target::Vm(0),
            Target::Vm(n) if n + 1 < self.vms => Target::Vm(n + 1),
            _ => Target::Hypervisor,
        }
    }

    /// Feeds one typed byte; `out` gets what it turns into, in order (at most
    /// [`SWITCH_PRESSES`] events).
    pub fn input(&mut self, b: u8, mut out: impl FnMut(Event)) {
        if self.gdb {
            out(Event::Hypervisor(b));
            return;
        }
        if b == SWITCH_KEY {
            self.pending += 1;
            if self.pending == SWITCH_PRESSES {
                self.pending = 0;
                self.target = self.next();
                out(Event::Switched(self.target));
            }
            return;
        }
        for _ in 0..core::mem::take(&mut self.pending) {
            self.deliver(SWITCH_KEY, &mut out);
        }
        self.deliver(b, &mut out);
    }
}

/// Who wrote to the shared line last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// The hypervisor's own messages and console.
    Hypervisor,
    /// Guest output.
    Guest,
}

/// Capacity of the guest output held while GDB owns the line.
pub const HELD: usize = 4096;

/// The output side: line breaks between writers, and guest output held while
/// GDB owns the line.
#[derive(Debug)]
pub struct OutputMux {
    last: Writer,
    mid_line: bool,
    gdb: bool,
    held: heapless::Vec<u8, HELD>,
    dropped: usize,
}

impl Default for OutputMux {
    fn default() -> Self {
        Self::new()
    }
}

impl OutputMux {
    pub const fn new() -> Self {
        Self {
            last: Writer::Hypervisor,
            mid_line: false,
            gdb: false,
            held: heapless::Vec::new(),
            dropped: 0,
        }
    }

    /// Writes `bytes` for `who` through `write`, with a line break first if the
    /// other writer left a line unfinished. Guest output while GDB owns the line
    /// is held instead (and counted when it does not fit).
    pub fn write(&mut self, who: Writer, bytes: &[u8], mut write: impl FnMut(&[u8])) {
        if bytes.is_empty() {
            return;
        }
        if who == Writer::Guest && self.gdb {
            for &b in bytes {
                if self.held.push(b).is_err() {
                    self.dropped += 1;
                }
            }
            return;
        }
        if who != self.last && self.mid_line {
            write(b"\n");
        }
        write(bytes);
        self.last = who;
        self.mid_line = bytes.last() != Some(&b'\n');
    }

    /// GDB takes the line (guest output is held from now on) or gives it back:
    /// then the held output and how much was dropped are written (after
    /// `heading`, if there is any), and guest output flows again.
    pub fn set_gdb(&mut self, on: bool, heading: &[u8], mut write: impl FnMut(&[u8])) {
        self.gdb = on;
        if on {
            return;
        }
        let held = core::mem::take(&mut self.held);
        let dropped = core::mem::take(&mut self.dropped);
        if !held.is_empty() {
            // After GDB's last packet, on a line of its own.
            if self.mid_line {
                write(b"\n");
                self.mid_line = false;
            }
            self.write(Writer::Hypervisor, heading, &mut write);
            self.write(Writer::Guest, &held, &mut write);
        }
        if dropped > 0 {
            let mut msg = heapless::String::<96>::new();
            let _ = core::fmt::write(
                &mut msg,
                format_args!("\nhv: ({dropped} more bytes of guest output were dropped)\n"),
            );
            self.write(Writer::Hypervisor, msg.as_bytes(), &mut write);
        }
    }
}

#[cfg(test)]
mod tests;
