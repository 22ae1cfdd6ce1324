//! `fuzz`: the random guest. From `seed=N` it executes random operations
//! (`fuzzgen.rs`: system-register accesses of every encoding with random
//! values, HVC/SMC with random function ids and arguments, PSCI calls with
//! random targets, loads and stores at random addresses of the device space and
//! outside RAM, GIC distributor/redistributor accesses, random instruction
//! words) and recovers from every exception in its own vectors. The hypervisor
//! under it must neither crash, nor hang, nor disturb another VM
//! (`cargo xtask fuzz-guest`).
//!
//! Every operation is one instruction word run in a *sandbox*: the sandbox
//! saves the callee-saved registers, SP, d8-d15 and FPCR, switches to SP_EL0
//! (a 2 MiB scratch buffer), loads all 31 general registers from the
//! operation, and runs the word, written into the sandbox's own code (the
//! `fuzz_slot`), followed by a branch back. Any exception (synchronous or not,
//! from either stack) lands in this guest's vectors, which record it and
//! return to the sandbox's exit with everything masked; the exit restores what
//! was saved. What the operations must never do (write the guest's RAM or its
//! vectors, stop its CPU, ...) is excluded by the generator: its module docs
//! are the list.
//!
//! Bootargs: `seed=N` (decimal or 0x hex; default 1), `iters=N` (default 10000;
//! 0 runs for ever), `every=N` (a progress line every N operations; default
//! 500), `trace=N` (print every operation from number N on, and its outcome).
//!
//! Lines:
//! ```text
//! fuzz: seed=<S> iters=<N> every=<E>
//! fuzz: layout ram=0x..-0x.. uart=0x.. gic=3 gicd=0x.. gicr=0x.. gicc=0x0 conduit=hvc cpus=0x0,0x1
//! fuzz: progress <i> sysreg=.. insn=.. mem=.. gic=.. hvc=.. psci=.. exceptions=..
//! fuzz: op <i> <operation>                    (trace only)
//! fuzz: op <i> -> ok | -> <vector> ESR=0x.. EC=0x.. ELR=0x.. FAR=0x..   (trace only)
//! fuzz: done seed=<S> iterations=<N> sysreg=.. ... exceptions=..
//! fuzz: EC 0x<ec>=<count> ...                 (synchronous exceptions by class)
//! fuzz: async irq=.. fiq=.. serror=..
//! fuzz: PASS
//! ```

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[path = "../fuzzgen.rs"]
mod fuzzgen;

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU64, Ordering};
use fuzzgen::{Fix, Gen, KINDS, Kind, Layout, MEM_TEMPLATES, Op};
use rt::{Boot, Fail, dt, fail, say};

rt::guest!("fuzz", main);

/// The registers an operation runs with, as the sandbox loads them.
#[repr(C)]
struct Regs {
    x: [u64; 31],
    sp_el0: u64,
}

/// What the vectors record: armed (1 while an operation runs), vector index,
/// ESR, ELR, FAR, taken (1 if an exception was taken).
#[unsafe(no_mangle)]
static FUZZ_REC: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];
const ARMED: usize = 0;
const VECTOR: usize = 1;
const ESR: usize = 2;
const ELR: usize = 3;
const FAR: usize = 4;
const TAKEN: usize = 5;

/// The sandbox's save area: x19-x30, SP, FPCR, d8-d15.
#[unsafe(no_mangle)]
static FUZZ_SAVE: [AtomicU64; 24] = [const { AtomicU64::new(0) }; 24];

/// The sandbox's stack (SP_EL0): random instructions address up to 2^20 + 2^16
/// bytes above it (a register offset below 2^16, shifted by up to 4) and a few
/// KiB below.
const SANDBOX_SIZE: usize = 2 << 20;
const SANDBOX_SP_OFFSET: usize = 64 << 10;
static SANDBOX: [AtomicU64; SANDBOX_SIZE / 8] = [const { AtomicU64::new(0) }; SANDBOX_SIZE / 8];

global_asm!(
    ".section .text.fuzz, \"ax\"",
    ".balign 16",
    // fuzz_exec(x0 = &Regs): run the word in fuzz_slot with the registers of Regs.
    ".global fuzz_exec",
    "fuzz_exec:",
    "    adrp    x9, {save}",
    "    add     x9, x9, :lo12:{save}",
    "    stp     x19, x20, [x9, #0]",
    "    stp     x21, x22, [x9, #16]",
    "    stp     x23, x24, [x9, #32]",
    "    stp     x25, x26, [x9, #48]",
    "    stp     x27, x28, [x9, #64]",
    "    stp     x29, x30, [x9, #80]",
    "    mov     x10, sp",
    "    mrs     x11, fpcr",
    "    stp     x10, x11, [x9, #96]",
    "    stp     d8, d9, [x9, #112]",
    "    stp     d10, d11, [x9, #128]",
    "    stp     d12, d13, [x9, #144]",
    "    stp     d14, d15, [x9, #160]",
    "    ldr     x10, [x0, #248]",
    "    msr     sp_el0, x10",
    "    msr     spsel, #0",
    "    mov     x30, x0",
    "    ldp     x0, x1, [x30, #0]",
    "    ldp     x2, x3, [x30, #16]",
    "    ldp     x4, x5, [x30, #32]",
    "    ldp     x6, x7, [x30, #48]",
    "    ldp     x8, x9, [x30, #64]",
    "    ldp     x10, x11, [x30, #80]",
    "    ldp     x12, x13, [x30, #96]",
    "    ldp     x14, x15, [x30, #112]",
    "    ldp     x16, x17, [x30, #128]",
    "    ldp     x18, x19, [x30, #144]",
    "    ldp     x20, x21, [x30, #160]",
    "    ldp     x22, x23, [x30, #176]",
    "    ldp     x24, x25, [x30, #192]",
    "    ldp     x26, x27, [x30, #208]",
    "    ldp     x28, x29, [x30, #224]",
    "    ldr     x30, [x30, #240]",
    ".global fuzz_slot",
    "fuzz_slot:",
    "    nop",
    "    b       fuzz_exec_return",
    // Also the vectors' return address.
    ".global fuzz_exec_return",
    "fuzz_exec_return:",
    "    msr     daifset, #0xf",
    "    msr     spsel, #1",
    "    adrp    x9, {save}",
    "    add     x9, x9, :lo12:{save}",
    "    ldp     x10, x11, [x9, #96]",
    "    mov     sp, x10",
    "    msr     fpcr, x11",
    "    ldp     d8, d9, [x9, #112]",
    "    ldp     d10, d11, [x9, #128]",
    "    ldp     d12, d13, [x9, #144]",
    "    ldp     d14, d15, [x9, #160]",
    "    ldp     x19, x20, [x9, #0]",
    "    ldp     x21, x22, [x9, #16]",
    "    ldp     x23, x24, [x9, #32]",
    "    ldp     x25, x26, [x9, #48]",
    "    ldp     x27, x28, [x9, #64]",
    "    ldp     x29, x30, [x9, #80]",
    "    isb",
    "    ret",
    "",
    // A CPU started by CPU_ON of one of our own: it turns itself off again.
    ".global fuzz_park",
    "fuzz_park:",
    "    msr     daifset, #0xf",
    "    movz    x0, #0x0002",
    "    movk    x0, #0x8400, lsl #16",
    "    hvc     #0",
    "    b       fuzz_park",
    "",
    // The vectors: every exception while armed goes to the sandbox's exit.
    ".macro fuzz_ventry kind",
    "    .balign 0x80",
    "    mov     x0, #\\kind",
    "    b       fuzz_vector",
    ".endm",
    ".balign 2048",
    ".global fuzz_vectors",
    "fuzz_vectors:",
    ".irp k, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
    "    fuzz_ventry \\k",
    ".endr",
    "fuzz_vector:",
    "    adrp    x1, {rec}",
    "    add     x1, x1, :lo12:{rec}",
    "    mrs     x3, esr_el1",
    "    mrs     x4, elr_el1",
    "    mrs     x5, far_el1",
    "    ldr     x2, [x1, #0]",
    "    cbz     x2, 1f",
    "    str     xzr, [x1, #0]",
    "    stp     x0, x3, [x1, #8]",
    "    stp     x4, x5, [x1, #24]",
    "    mov     x2, #1",
    "    str     x2, [x1, #40]",
    "    adrp    x4, fuzz_exec_return",
    "    add     x4, x4, :lo12:fuzz_exec_return",
    "    msr     elr_el1, x4",
    "    mov     x5, #0x3c5", // EL1h, D A I F masked
    "    msr     spsr_el1, x5",
    "    eret",
    // Not armed: an exception of the guest's own code. SP_EL1 is its stack.
    "1:  mov     x1, x3",
    "    mov     x2, x4",
    "    mov     x3, x5",
    "    msr     spsel, #1",
    "    b       {unexpected}",
    "",
    // The load/store templates as the assembler encodes them (checked at start).
    ".balign 4",
    ".global fuzz_templates",
    "fuzz_templates:",
    "    ldrb    w1, [x0]",
    "    ldrh    w1, [x0]",
    "    ldr     w1, [x0]",
    "    ldr     x1, [x0]",
    "    strb    w1, [x0]",
    "    strh    w1, [x0]",
    "    str     w1, [x0]",
    "    str     x1, [x0]",
    "    ldp     x1, x2, [x0]",
    "    stp     x1, x2, [x0]",
    "    ldr     q1, [x0]",
    "    str     q1, [x0]",
    "    ldr     x1, [x0], #8",
    "    str     x1, [x0, #8]!",
    "    ldxr    x1, [x0]",
    "    stxr    w3, x1, [x0]",
    "    .inst   0xf8210002", // ldadd x1, x2, [x0] (LSE: not in the base target)
    "    .inst   0xf8218002", // swp x1, x2, [x0]
    "    .inst   0xc8a17c02", // cas x1, x2, [x0]
    "    ldar    x1, [x0]",
    "    stlr    x1, [x0]",
    "    dc      zva, x0",
    "    ld1     {{v1.16b}}, [x0]",
    "    st1     {{v1.16b}}, [x0]",
    save = sym FUZZ_SAVE,
    rec = sym FUZZ_REC,
    unexpected = sym fuzz_unexpected,
);

unsafe extern "C" {
    fn fuzz_exec(regs: *const Regs);
    static mut fuzz_slot: u32;
    fn fuzz_park();
    static fuzz_vectors: u8;
    static fuzz_templates: [u32; MEM_TEMPLATES.len()];
}

/// An exception of the guest's own code (not an operation's): the end.
extern "C" fn fuzz_unexpected(vector: u64, esr: u64, elr: u64, far: u64) -> ! {
    say!(
        "unexpected exception outside an operation: vector {vector} ESR=0x{esr:x} ELR=0x{elr:x} FAR=0x{far:x}"
    );
    rt::boot::fatal(fail!(
        "unexpected exception EC=0x{:02x} at ELR=0x{elr:x}",
        (esr >> 26) & 0x3f
    ))
}

const VECTOR_NAMES: [&str; 4] = ["sync", "irq", "fiq", "serror"];

/// The registers an operation may change that the guest's own code relies on,
/// read at the start and put back after each operation.
struct Saved {
    sctlr: u64,
    cpacr: u64,
    mdscr: u64,
}

macro_rules! mrs {
    ($r:literal) => {{
        let v: u64;
        // SAFETY: reading a system register the guest owns has no side effect.
        unsafe { asm!(concat!("mrs {}, ", $r), out(reg) v, options(nomem, nostack)) };
        v
    }};
}
macro_rules! msr {
    ($r:literal, $v:expr) => {{
        // SAFETY: writes back a value this guest read from the same register
        // (or its own vectors' address): the state it runs with.
        unsafe { asm!(concat!("msr ", $r, ", {}"), "isb", in(reg) $v, options(nostack)) };
    }};
}

impl Saved {
    fn read() -> Saved {
        Saved {
            sctlr: mrs!("sctlr_el1"),
            cpacr: mrs!("cpacr_el1"),
            mdscr: mrs!("mdscr_el1"),
        }
    }
    fn restore(&self) {
        if mrs!("sctlr_el1") != self.sctlr {
            msr!("sctlr_el1", self.sctlr);
        }
        if mrs!("cpacr_el1") != self.cpacr {
            msr!("cpacr_el1", self.cpacr);
        }
        if mrs!("mdscr_el1") != self.mdscr {
            msr!("mdscr_el1", self.mdscr);
        }
    }
}

/// An exception an operation took: (vector index, ESR, ELR, FAR).
type Outcome = Option<(u64, u64, u64, u64)>;

fn exec(op: &Op, saved: &Saved) -> Outcome {
    let sandbox = SANDBOX.as_ptr() as u64;
    let mut regs = Regs {
        x: op.regs,
        sp_el0: sandbox + SANDBOX_SP_OFFSET as u64,
    };
    match op.fix {
        Fix::None => {}
        Fix::Sctlr(r) => {
            let r = r as usize;
            regs.x[r] = (regs.x[r] & !fuzzgen::SCTLR_KEEP) | (saved.sctlr & fuzzgen::SCTLR_KEEP);
        }
        Fix::Cpacr(r) => regs.x[r as usize] |= fuzzgen::CPACR_FPEN,
        Fix::Park(r) => regs.x[r as usize] = fuzz_park as *const () as u64,
    }
    // SAFETY: fuzz_slot is a word of this guest's own code that only this CPU
    // runs; with the MMU off the write needs no mapping. The cache maintenance
    // makes the instruction fetch see it.
    unsafe {
        let slot = &raw mut fuzz_slot;
        core::ptr::write_volatile(slot, op.insn);
        asm!(
            "dc cvau, {a}", "dsb ish", "ic ivau, {a}", "dsb ish", "isb",
            a = in(reg) slot as u64, options(nostack)
        );
    }
    FUZZ_REC[TAKEN].store(0, Ordering::SeqCst);
    FUZZ_REC[ARMED].store(1, Ordering::SeqCst);
    // SAFETY: the sandbox saves and restores everything the AAPCS64 asks a
    // callee to keep (x19-x30, SP, d8-d15, FPCR) and returns to its caller
    // whatever the word does: an exception comes back through the vectors to
    // the same exit. The generator excludes every word that could write this
    // guest's memory (other than the sandbox's stack) or the registers its
    // exit relies on (VBAR_EL1, SPSel): see fuzzgen.rs.
    unsafe { fuzz_exec(&regs) };
    FUZZ_REC[ARMED].store(0, Ordering::SeqCst);
    if matches!(op.kind, Kind::SysReg | Kind::Insn) {
        saved.restore();
    }
    (FUZZ_REC[TAKEN].load(Ordering::SeqCst) != 0).then(|| {
        (
            FUZZ_REC[VECTOR].load(Ordering::SeqCst),
            FUZZ_REC[ESR].load(Ordering::SeqCst),
            FUZZ_REC[ELR].load(Ordering::SeqCst),
            FUZZ_REC[FAR].load(Ordering::SeqCst),
        )
    })
}

fn number(boot: &Boot, key: &str, default: u64) -> Result<u64, Fail> {
    match boot.bootarg(key) {
        None => Ok(default),
        Some(t) => match t.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16),
            None => t.parse(),
        }
        .map_err(|_| fail!("bad {key}={t}: a number, decimal or 0x hex")),
    }
}

fn layout(boot: &Boot) -> Result<Layout, Fail> {
    let fdt = boot.fdt();
    let mut l = Layout {
        ram_start: boot
            .memory()
            .map(|r| r.base)
            .min()
            .ok_or_else(|| fail!("no memory in the DTB"))?,
        ram_end: boot.memory().map(|r| r.end()).max().unwrap_or(0),
        uart: dt::console_uart(fdt).ok_or_else(|| fail!("no console UART"))?,
        smc: rt::psci::conduit() == Some(rt::psci::Conduit::Smc),
        ..Layout::default()
    };
    if let Some(n) = fdt.find_compatible(&["arm,gic-v3"]) {
        let mut r = dt::regs(n);
        l.gic = 3;
        l.gicd = r.next().map_or(0, |r| r.base);
        l.gicr = r.next().map_or(0, |r| r.base);
    } else if let Some(n) =
        fdt.find_compatible(&["arm,cortex-a15-gic", "arm,gic-400", "arm,cortex-a9-gic"])
    {
        let mut r = dt::regs(n);
        l.gic = 2;
        l.gicd = r.next().map_or(0, |r| r.base);
        l.gicc = r.next().map_or(0, |r| r.base);
    }
    for c in boot.cpus().take(l.cpus.len()) {
        l.cpus[l.ncpus] = c;
        l.ncpus += 1;
    }
    Ok(l)
}

struct Counts {
    kinds: [u64; KINDS.len()],
    exceptions: u64,
    ec: [u64; 64],
    asynchronous: [u64; 4],
}

impl Counts {
    fn line(&self) -> impl core::fmt::Display + '_ {
        struct L<'a>(&'a Counts);
        impl core::fmt::Display for L<'_> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                for k in KINDS {
                    write!(f, "{}={} ", k.name(), self.0.kinds[k.index()])?;
                }
                write!(f, "exceptions={}", self.0.exceptions)
            }
        }
        L(self)
    }
}

fn main(boot: &Boot) -> Result<(), Fail> {
    let seed = number(boot, "seed", 1)?;
    let iters = number(boot, "iters", 10_000)?;
    let every = number(boot, "every", 500)?.max(1);
    let trace = boot
        .bootarg("trace")
        .map(|_| number(boot, "trace", 0))
        .transpose()?;
    say!("seed={seed} iters={iters} every={every}");
    // SAFETY: the assembler's table, code bytes nothing writes.
    let assembled = unsafe { &fuzz_templates };
    for (i, (t, a)) in MEM_TEMPLATES.iter().zip(assembled).enumerate() {
        if t.0 != *a {
            return Err(fail!(
                "template {i} ({}): fuzzgen says 0x{:08x}, the assembler 0x{a:08x}",
                t.1,
                t.0
            ));
        }
    }
    let layout = layout(boot)?;
    say!("layout {layout}");
    let mut line = Line::new();
    line.push(format_args!("{layout}"));
    if Layout::parse(line.as_str()) != Some(layout) {
        return Err(fail!("the layout line does not read back"));
    }

    let saved = Saved::read();
    let rt_vectors = mrs!("vbar_el1");
    let vectors = (&raw const fuzz_vectors) as u64;
    msr!("vbar_el1", vectors);

    let mut g = Gen::new(seed, layout);
    let mut c = Counts {
        kinds: [0; KINDS.len()],
        exceptions: 0,
        ec: [0; 64],
        asynchronous: [0; 4],
    };
    let mut i: u64 = 0;
    while iters == 0 || i < iters {
        let op = g.next();
        let tracing = trace.is_some_and(|t| i >= t);
        if tracing {
            say!("op {i} {op}");
        }
        let outcome = exec(&op, &saved);
        c.kinds[op.kind.index()] += 1;
        if let Some((vector, esr, elr, far)) = outcome {
            c.exceptions += 1;
            match vector & 3 {
                0 => c.ec[((esr >> 26) & 0x3f) as usize] += 1,
                a => c.asynchronous[a as usize] += 1,
            }
            if tracing {
                say!(
                    "op {i} -> {} ESR=0x{esr:x} EC=0x{:02x} ELR=0x{elr:x} FAR=0x{far:x}",
                    VECTOR_NAMES[(vector & 3) as usize],
                    (esr >> 26) & 0x3f
                );
            }
        } else if tracing {
            say!("op {i} -> ok");
        }
        i += 1;
        if i.is_multiple_of(every) {
            say!("progress {i} {}", c.line());
        }
    }
    msr!("vbar_el1", rt_vectors);
    say!("done seed={seed} iterations={i} {}", c.line());
    let mut line = Line::new();
    for (ec, n) in c.ec.iter().enumerate().filter(|(_, n)| **n != 0) {
        line.push(format_args!(" 0x{ec:02x}={n}"));
    }
    say!("EC{}", line.as_str());
    say!(
        "async irq={} fiq={} serror={}",
        c.asynchronous[1],
        c.asynchronous[2],
        c.asynchronous[3]
    );
    Ok(())
}

/// A fixed-size line buffer (no allocator in the guests).
struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            buf: [0; 512],
            len: 0,
        }
    }
    fn push(&mut self, args: core::fmt::Arguments<'_>) {
        let _ = core::fmt::write(self, args);
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}
