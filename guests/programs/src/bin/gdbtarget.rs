//! `gdbtarget`: a guest for the GDB stub's tests, with its MMU on and its code at
//! a kernel-style high address, so a debugger must translate through live stage-1
//! tables (TTBR1) to read memory, set breakpoints and step.
//!
//! CPU 0 builds stage-1 tables (4 KiB granule, 48-bit VAs, 2 MiB blocks reached
//! through three levels of tables): TTBR0 maps RAM and the console UART one to
//! one, TTBR1 maps RAM again at [`HIGH_BASE`] + (PA - RAM base). It starts one
//! secondary with PSCI `CPU_ON` while its own MMU is still off (so everything that
//! CPU reads with its MMU off was written uncached), then both CPUs turn their
//! MMU and caches on and branch to the high alias of a function, their stack
//! pointer moved to the high alias of their stack. From there all Rust code runs
//! at the high alias (it is PC-relative: `adrp`); only pointers stored in data
//! (the `fmt` vtables, the console's name) and `VBAR_EL1` (the runtime's vectors,
//! set with the MMU off) still lead to the identity mapping.
//!
//! CPU 0 writes `hv-gdb-pattern!\0` into a static and prints the high addresses
//! of that pattern, of [`tick`] and of its counter; the secondary prints that it
//! is up and spins incrementing a counter of its own; CPU 0 says `ready` and then
//! calls [`tick`] forever, printing a line every 2^22 ticks. The guest never
//! ends (no PASS line): a test stops QEMU. Interrupts stay masked throughout.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use rt::{Boot, Fail, fail, say, smp, sysreg};

rt::guest!("gdbtarget", main);

/// Where TTBR1 maps the start of RAM (the bottom of Linux's 48-bit kernel half).
const HIGH_BASE: u64 = 0xffff_8000_0000_0000;
/// Size of a level-2 block with the 4 KiB granule.
const BLOCK: u64 = 2 << 20;
/// What CPU 0 writes into [`PATTERN`].
const PATTERN_TEXT: &[u8; 16] = b"hv-gdb-pattern!\0";
/// CPU 0 prints a `tick` line whenever the counter is a multiple of this.
const TICKS_PER_LINE: u64 = 1 << 22;
/// How long CPU 0 waits for the secondary to say it is up.
const CPU1_TIMEOUT_MS: u64 = 10_000;

/// MAIR_EL1: attribute 0 Normal write-back (inner and outer, read/write
/// allocate), attribute 1 Device-nGnRnE.
const MAIR: u64 = 0x00_ff;
/// Descriptor bits: a level-2 block (0b01) or a table (0b11), AttrIndx (bits
/// 4:2, a MAIR attribute), SH (9:8, 0b11 inner shareable), AF (10), PXN (53),
/// UXN (54). AP = 0: read/write at EL1, no access at EL0; nG = 0: global.
const BLOCK_DESC: u64 = 0b01;
const TABLE_DESC: u64 = 0b11;
const ATTR_INDEX_DEVICE: u64 = 1 << 2;
const SH_INNER: u64 = 0b11 << 8;
const AF: u64 = 1 << 10;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
/// RAM: Normal (AttrIndx 0), executable at EL1.
const ATTR_NORMAL: u64 = SH_INNER | AF | UXN;
/// The UART: Device, never executable.
const ATTR_DEVICE: u64 = ATTR_INDEX_DEVICE | AF | PXN | UXN;
/// Output address bits of a table descriptor (4 KiB granule, 48-bit OA).
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;
/// TCR_EL1 without IPS: T0SZ = T1SZ = 16 (48-bit VAs), both halves walked
/// write-back cacheable (IRGN/ORGN = 0b01) and inner shareable, TG0 = 4 KiB
/// (0b00), TG1 = 4 KiB (0b10).
const TCR: u64 = 16
    | (0b01 << 8)
    | (0b01 << 10)
    | (0b11 << 12)
    | (16 << 16)
    | (0b01 << 24)
    | (0b01 << 26)
    | (0b11 << 28)
    | (0b10 << 30);
/// SCTLR_EL1 bits set: M (MMU), C (data cache), I (instruction cache).
const SCTLR_ON: u64 = (1 << 0) | (1 << 2) | (1 << 12);
/// SCTLR_EL1 bits cleared: WXN (our RAM is writable and executable).
const SCTLR_OFF: u64 = 1 << 19;

/// One translation table: 512 descriptors, 4 KiB aligned. Atomics so that
/// filling it needs no `unsafe`; with the MMU off they are plain stores.
#[repr(C, align(4096))]
struct Table([AtomicU64; 512]);

/// The tables, handed out in order by [`alloc`]; in `.bss`, so zeroed (invalid).
const POOL_TABLES: usize = 16;
static POOL: [Table; POOL_TABLES] =
    [const { Table([const { AtomicU64::new(0) }; 512]) }; POOL_TABLES];
static POOL_USED: AtomicUsize = AtomicUsize::new(0);

/// The MMU registers both CPUs load, set by CPU 0 before either turns its MMU on.
static TCR_VALUE: AtomicU64 = AtomicU64::new(0);
static TTBR0: AtomicU64 = AtomicU64::new(0);
static TTBR1: AtomicU64 = AtomicU64::new(0);
/// HIGH_BASE - RAM base: what turns an identity address into its high alias.
static HIGH_OFFSET: AtomicU64 = AtomicU64::new(0);

/// The buffer the debugger reads: [`PATTERN_TEXT`] once CPU 0 is up high.
#[repr(C, align(16))]
struct Pattern([AtomicU8; 16]);
static PATTERN: Pattern = Pattern([const { AtomicU8::new(0) }; 16]);

/// Incremented by [`tick`] (CPU 0) and by the secondary's loop. Load then store,
/// never a read-modify-write atomic: those are LDXR/STXR loops, which a debugger
/// single-stepping through them never gets out of.
static COUNTER: AtomicU64 = AtomicU64::new(0);
static CPU1_COUNTER: AtomicU64 = AtomicU64::new(0);

/// CPU 0 has printed its lines: the secondary may print.
static CPU1_TURN: AtomicBool = AtomicBool::new(false);
/// The secondary has printed `cpu1 up`.
static CPU1_UP: AtomicBool = AtomicBool::new(false);

/// Takes a zeroed table from the pool; returns its index.
fn alloc() -> Result<usize, Fail> {
    let n = POOL_USED.load(Ordering::SeqCst);
    if n == POOL_TABLES {
        return Err(fail!("out of page tables ({POOL_TABLES})"));
    }
    POOL_USED.store(n + 1, Ordering::SeqCst);
    Ok(n)
}

/// The address of table `n`. Only called with the MMU off, where the address
/// `adrp` computes is the physical (intermediate physical) one the walker wants.
fn table_pa(n: usize) -> u64 {
    (&raw const POOL[n]) as u64
}

/// Maps the 2 MiB block at `va` to `pa` with `attrs`, through a level-0, a
/// level-1 and a level-2 table under `root`, allocating tables on the way.
fn map_block(root: usize, va: u64, pa: u64, attrs: u64) -> Result<(), Fail> {
    let mut table = root;
    for shift in [39, 30] {
        let entry = &POOL[table].0[((va >> shift) & 511) as usize];
        let desc = entry.load(Ordering::SeqCst);
        table = if desc == 0 {
            let next = alloc()?;
            entry.store(table_pa(next) | TABLE_DESC, Ordering::SeqCst);
            next
        } else {
            ((desc & ADDR_MASK) - table_pa(0)) as usize / size_of::<Table>()
        };
    }
    POOL[table].0[((va >> 21) & 511) as usize].store(pa | attrs | BLOCK_DESC, Ordering::SeqCst);
    Ok(())
}

unsafe extern "C" {
    /// Loads MAIR/TCR/TTBR0/TTBR1 (x0-x3), turns the MMU and caches on, adds
    /// `offset` (x4) to the stack pointer and to `cont` (x5), and branches there.
    fn gdbtarget_mmu_on(mair: u64, tcr: u64, ttbr0: u64, ttbr1: u64, offset: u64, cont: u64) -> !;
}

core::arch::global_asm!(
    ".section .text.gdbtarget_mmu_on, \"ax\"",
    ".global gdbtarget_mmu_on",
    "gdbtarget_mmu_on:",
    "    msr     mair_el1, x0",
    "    msr     tcr_el1, x1",
    "    msr     ttbr0_el1, x2",
    "    msr     ttbr1_el1, x3",
    "    isb",
    "    tlbi    vmalle1",
    "    ic      iallu",
    "    dsb     nsh",
    "    isb",
    "    mrs     x0, sctlr_el1",
    "    mov     x1, #{on}",
    "    orr     x0, x0, x1",
    "    bic     x0, x0, #{off}",
    "    msr     sctlr_el1, x0",
    "    isb",
    // MMU on, still at the identity address: move the stack and jump high.
    "    add     sp, sp, x4",
    "    add     x5, x5, x4",
    // No frame to unwind into: a debugger's backtrace ends at `cont`.
    "    mov     x29, xzr",
    "    mov     x30, xzr",
    "    br      x5",
    on = const SCTLR_ON,
    off = const SCTLR_OFF,
);

/// Turns this CPU's MMU on with CPU 0's tables and continues in `cont` at its
/// high alias, on the high alias of the current stack. Called with the MMU off.
fn mmu_on_and_go_high(cont: extern "C" fn() -> !) -> ! {
    // SAFETY: the tables map all of RAM (this code, its stack, its data) one to
    // one, so the instructions after the SCTLR write run where they are; the high
    // alias of `cont` and of the stack is the same RAM. Nothing on the abandoned
    // frames is used again (`cont` never returns).
    unsafe {
        gdbtarget_mmu_on(
            MAIR,
            TCR_VALUE.load(Ordering::SeqCst),
            TTBR0.load(Ordering::SeqCst),
            TTBR1.load(Ordering::SeqCst),
            HIGH_OFFSET.load(Ordering::SeqCst),
            cont as *const () as u64,
        )
    }
}

/// TCR_EL1.IPS: the CPU's physical address size (ID_AA64MMFR0_EL1.PARange),
/// at most 48 bits (0b101) since the tables use 48-bit output addresses.
fn ips() -> u64 {
    let mmfr0: u64;
    // SAFETY: reading an ID register has no side effects.
    unsafe {
        core::arch::asm!("mrs {}, id_aa64mmfr0_el1", out(reg) mmfr0, options(nomem, nostack))
    };
    (mmfr0 & 0xf).min(0b101)
}

/// What CPU 0 calls on every iteration of its loop: the GDB tests break and
/// step here.
#[inline(never)]
fn tick() {
    COUNTER.store(
        COUNTER.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

fn main(boot: &Boot) -> Result<(), Fail> {
    // Stage-1 tables: RAM identity and high, the console UART identity.
    let ram_base = boot
        .memory()
        .map(|r| r.base)
        .min()
        .ok_or_else(|| fail!("no memory in the DTB"))?;
    if !ram_base.is_multiple_of(BLOCK) {
        return Err(fail!("RAM base 0x{ram_base:x} is not 2 MiB aligned"));
    }
    let uart = rt::dt::console_uart(boot.fdt()).ok_or_else(|| fail!("no console UART"))?;
    let (low, high) = (alloc()?, alloc()?);
    for region in boot.memory() {
        // Whole blocks only: a partial one would map what is not RAM.
        let mut pa = region.base.next_multiple_of(BLOCK);
        while pa + BLOCK <= region.end() {
            map_block(low, pa, pa, ATTR_NORMAL)?;
            map_block(high, HIGH_BASE + (pa - ram_base), pa, ATTR_NORMAL)?;
            pa += BLOCK;
        }
    }
    let uart_block = uart & !(BLOCK - 1);
    map_block(low, uart_block, uart_block, ATTR_DEVICE)?;
    TCR_VALUE.store(TCR | (ips() << 32), Ordering::SeqCst);
    TTBR0.store(table_pa(low), Ordering::SeqCst);
    TTBR1.store(table_pa(high), Ordering::SeqCst);
    HIGH_OFFSET.store(HIGH_BASE.wrapping_sub(ram_base), Ordering::SeqCst);

    // The secondary: the first CPU in the DTB that is not us.
    let me = sysreg::affinity();
    let (index, mpidr) = boot
        .cpus()
        .enumerate()
        .find(|&(_, m)| m != me)
        .ok_or_else(|| fail!("needs 2 CPUs, the DTB lists 1"))?;
    smp::start(index, mpidr, secondary).map_err(|e| fail!("CPU_ON cpu {index}: {e}"))?;

    mmu_on_and_go_high(cpu0_high)
}

/// Fails unless `addr` is a high alias.
fn check_high(what: &str, addr: u64) {
    if addr < HIGH_BASE {
        rt::boot::fatal(fail!("{what} at 0x{addr:x}, not at the high alias"));
    }
}

/// CPU 0 at the high alias.
extern "C" fn cpu0_high() -> ! {
    for (byte, &b) in PATTERN.0.iter().zip(PATTERN_TEXT) {
        byte.store(b, Ordering::SeqCst);
    }
    let pattern = (&raw const PATTERN) as u64;
    let loop_at = tick as *const () as u64;
    let counter = (&raw const COUNTER) as u64;
    check_high("pattern", pattern);
    check_high("tick", loop_at);
    check_high("counter", counter);
    say!("pattern at 0x{pattern:x}");
    say!("loop at 0x{loop_at:x}");
    say!("counter at 0x{counter:x}");

    // The secondary waits for its turn so the two never print at once.
    CPU1_TURN.store(true, Ordering::SeqCst);
    let start = sysreg::counter();
    let timeout = sysreg::counter_frequency() * CPU1_TIMEOUT_MS / 1000;
    while !CPU1_UP.load(Ordering::SeqCst) {
        if sysreg::counter().wrapping_sub(start) > timeout {
            rt::boot::fatal(fail!("cpu1 did not come up"));
        }
        core::hint::spin_loop();
    }
    say!("ready");

    let mut lines: u64 = 0;
    loop {
        tick();
        if COUNTER
            .load(Ordering::Relaxed)
            .is_multiple_of(TICKS_PER_LINE)
        {
            lines += 1;
            say!("tick {lines}");
        }
    }
}

/// The secondary, entered with its MMU off at its identity address.
fn secondary(_index: usize) {
    mmu_on_and_go_high(cpu1_high)
}

/// The secondary at the high alias.
extern "C" fn cpu1_high() -> ! {
    while !CPU1_TURN.load(Ordering::SeqCst) {
        core::hint::spin_loop();
    }
    check_high("cpu1", cpu1_high as *const () as u64);
    say!("cpu1 up");
    CPU1_UP.store(true, Ordering::SeqCst);
    loop {
        CPU1_COUNTER.store(
            CPU1_COUNTER.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }
}
