//! QEMU integration tests: the hypervisor boots on QEMU `virt` with guests given as
//! guest-loader modules, and the tests assert on what the guests and the hypervisor
//! really printed. Run them with `cargo xtask test` (it builds the images).

mod boards;
mod bundle;
mod common;
mod gdb_stub;
mod guestfuzz;
mod isolation;
mod latency;
mod load;
mod mte;
mod passthrough;
mod reboot;
mod sched;
mod snapshot_atomic;
mod snapshot_drop;
mod snapshot_images;
mod snapshot_linux;
mod soak;
mod timers_pmu_mte;
mod uart_rings;
mod uboot_virt;
mod vcounter;

use common::{guest, module, qemu};
use std::time::Duration;

/// The boot log every run must show on the debug console.
fn expect_boot_log(q: &mut common::Qemu, cpus: u32) {
    q.expect_debug("hv: hypervisor v")
        .expect_debug("(board qemu-virt) at EL2")
        .expect_debug("hv: memory: 0x40000000-0x7fffffff (1024 MiB)")
        .expect_debug(&format!("hv: {cpus} CPU(s) online"));
}

#[test]
fn demo_guest_boots_on_gicv3_with_4_cpus() {
    let mut q = qemu().smp(4).gic(3).vm(module(guest("demo"))).start();
    expect_boot_log(&mut q, 4);
    q.expect_debug("hv: gic: V3")
        .expect_debug("vm0: 4 vCPU(s)")
        .expect_guest("demo: hello from EL1")
        .expect_guest("demo: CurrentEL=EL1")
        .expect_guest("demo: cpus=4")
        .expect_guest("demo: psci version=1.1 conduit=hvc")
        .expect_guest("demo: cpu 3 (mpidr 0x3) online")
        .expect_guest("demo: cpus online=4/4")
        .expect_guest("demo: PASS")
        .expect_debug("vm0: powered off (system-off)")
        .expect_debug("hv: no VM is left: powering off");
    q.expect_clean_exit();
    q.check(
        !q.debug.contains("PANIC") && !q.debug.contains("CRASH"),
        "the hypervisor failed",
    );
}

#[test]
fn demo_guest_boots_on_gicv2_with_1_cpu() {
    let mut q = qemu().smp(1).gic(2).vm(module(guest("demo"))).start();
    expect_boot_log(&mut q, 1);
    q.expect_debug("hv: gic: V2")
        .expect_guest("demo: cpus=1")
        .expect_guest("demo: cpus online=1/1")
        .expect_guest("demo: PASS")
        .expect_debug("vm0: powered off (system-off)");
    q.expect_clean_exit();
}

#[test]
fn the_guest_sees_its_sanitised_cpu_and_no_el2() {
    let mut q = qemu().smp(2).vm(module(guest("demo"))).start();
    q.expect_guest("demo: PASS");
    let text = q.guest.text();
    let pfr0 = text
        .lines()
        .find_map(|l| l.strip_prefix("demo: ID_AA64PFR0_EL1=0x"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    let Some(pfr0) = pfr0 else {
        q.fail("demo printed no ID_AA64PFR0_EL1")
    };
    q.check((pfr0 >> 8) & 0xf == 0, "EL2 is visible to the guest");
    q.check((pfr0 >> 12) & 0xf == 0, "EL3 is visible to the guest");
    q.check(
        (pfr0 >> 32) & 0xf == 0,
        "SVE is visible to the guest (its state is not switched)",
    );
    q.expect_clean_exit();
}

#[test]
fn two_vms_run_side_by_side_on_2_cpus() {
    let mut q = qemu()
        .smp(2)
        .vm(module(guest("demo")))
        .vm(module(guest("demo")))
        .start();
    q.expect_debug("vm0: 2 vCPU(s)")
        .expect_debug("vm1: 2 vCPU(s)")
        .expect_guest("[vm0] demo: PASS")
        .expect_guest("[vm1] demo: PASS")
        .expect_debug("vm0: powered off (system-off)")
        .expect_debug("vm1: powered off (system-off)");
    q.expect_clean_exit();
    // Each VM sees half of the free memory, at the same IPA.
    q.check(
        q.guest.contains("[vm0] demo: memory region 0x40000000.."),
        "vm0's RAM is not at 0x40000000",
    );
    q.check(
        q.guest.contains("[vm1] demo: memory region 0x40000000.."),
        "vm1's RAM is not at 0x40000000",
    );
}

#[test]
fn more_vcpus_than_cpus_are_time_sliced() {
    // Two VMs with one vCPU each on one CPU; the spinner never yields, the demo
    // must still run to the end.
    let spin = module(guest("spin")).bootargs("console=ttyAMA0 count=3000000 every=1000000");
    let mut q = qemu().smp(1).vm(spin).vm(module(guest("demo"))).start();
    q.expect_guest("[vm1] demo: PASS")
        .expect_guest("[vm0] spin: PASS");
    q.expect_clean_exit();
}

#[test]
fn a_guest_reading_unmapped_memory_gets_an_abort_and_the_hypervisor_stays_up() {
    let mut q = qemu().smp(2).vm(module(guest("abort"))).start();
    q.expect_guest("abort: got EC=0x25")
        .expect_guest("abort: got EC=0x00 from UDF")
        .expect_guest("abort: PASS")
        .expect_debug("vm0: data abort: read of unmapped IPA")
        .expect_debug("external abort injected")
        .expect_debug("vm0: powered off (system-off)");
    q.expect_clean_exit();
}

#[test]
fn a_guest_reads_back_its_initrd_and_bootargs_from_its_device_tree() {
    let dir = std::env::temp_dir().join(format!("hv-initrd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let initrd = dir.join("initrd.txt");
    std::fs::write(&initrd, "hello-initrd\nsecond line\n").unwrap();
    let m = module(guest("bootinfo"))
        .initrd(&initrd)
        .bootargs("console=ttyAMA0 marker=xyz");
    let mut q = qemu().smp(2).vm(m).start();
    q.expect_debug("vm0: bootargs \"console=ttyAMA0 marker=xyz\"")
        .expect_debug("initrd at")
        .expect_guest("bootinfo: bootargs=console=ttyAMA0 marker=xyz")
        .expect_guest("bootinfo: initrd=hello-initrd")
        .expect_guest("bootinfo: PASS");
    q.expect_clean_exit();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn entered_at_el1_it_says_so_and_stops() {
    let mut q = qemu()
        .machine("virt")
        .smp(1)
        .vm(module(guest("demo")))
        .start();
    q.expect_debug("hv: entered at EL1: this hypervisor must be started at EL2")
        .expect_debug("hv: stopped");
    std::thread::sleep(Duration::from_millis(300));
    q.check(
        !q.guest.contains("demo:"),
        "a guest ran although the hypervisor was not at EL2",
    );
}

#[test]
fn no_guest_module_is_a_clear_error() {
    let mut q = qemu().smp(1).start();
    q.expect_debug("hv: cannot start guests: no guest kernel in /chosen")
        .expect_debug("hv: no VM is left: powering off");
    q.expect_clean_exit();
}

/// The virtual GIC and timer: Linux (Debian's cloud kernel) boots to its init on
/// both GIC versions, which needs the distributor, the redistributors or GICv2's
/// virtual CPU interface, IPIs between its two vCPUs and virtual timer interrupts.
#[test]
fn linux_reaches_its_init_on_the_virtual_gic_v2_and_v3() {
    let (kernel, initrd, _) = common::linux();
    for gic in [3, 2] {
        let m = module(&kernel).initrd(&initrd).bootargs("console=ttyAMA0");
        let mut q = qemu().smp(2).gic(gic).cpu("cortex-a72").vm(m).start();
        q.expect_debug("hv: vgic: ")
            .expect_guest("smp: Brought up 1 node, 2 CPUs")
            .expect_guest("Run /init as init process");
        q.check(
            !q.debug.contains("UNDEF injected") && !q.debug.contains("data abort"),
            "the guest faulted on something the hypervisor should emulate",
        );
    }
}

#[test]
fn debians_linux_kernel_boots_to_its_shell_as_a_guest() {
    let (kernel, initrd, version) = common::linux();
    let m = module(&kernel)
        .initrd(&initrd)
        .bootargs("console=ttyAMA0 panic=-1");
    let mut q = qemu().smp(2).cpu("cortex-a72").vm(m).start();
    q.expect_debug("vm0: 2 vCPU(s)")
        .expect_guest(&format!("Linux version {version}"))
        .expect_guest("linux-guest: init running")
        .expect_guest(&format!("linux-guest: uname: Linux (none) {version}"))
        .expect_guest("linux-guest: cpus=2")
        .expect_guest("linux-guest: PASS")
        .expect_debug("vm0: powered off (system-off)");
    q.expect_clean_exit();
    // Most of the machine's 1 GiB: what the hypervisor keeps and the modules aside.
    let text = q.guest.text();
    let kb = text
        .lines()
        .find_map(|l| l.strip_prefix("linux-guest: memtotal_kb="))
        .and_then(|v| v.trim().parse::<u64>().ok());
    q.check(
        kb.is_some_and(|kb| kb > 800 * 1024),
        &format!("the guest sees too little memory: {kb:?} KiB"),
    );
}

/// Two VMs with two vCPUs each on two CPUs, a 500 us slice: every vCPU checks its
/// trapped (TVM), untrapped and FP/SIMD registers across thousands of switches.
#[test]
fn registers_survive_thousands_of_world_switches() {
    // vm0 runs with its breakpoints and watchpoints enabled (MDSCR_EL1.MDE), so its
    // debug registers are switched with it; vm1 without, so they are switched only
    // when it touches them. Both use FP/SIMD in some slices only.
    let vm = |tag: u32| {
        module(guest("switch")).bootargs(&format!(
            "console=ttyAMA0 tag={tag} rounds=20000 debug={}",
            (tag == 1) as u32
        ))
    };
    let mut q = qemu()
        .smp(2)
        .arg("-append")
        .arg("hv.slice_us=100")
        .vm(vm(1))
        .vm(vm(2))
        .start();
    q.expect_debug("hv: scheduling slice 100 us");
    for id in 0..2 {
        for cpu in 0..2 {
            q.expect_guest(&format!("[vm{id}] switch: cpu {cpu} ok rounds=20000"));
        }
        q.expect_guest(&format!("[vm{id}] switch: PASS"));
    }
    q.expect_debug("vm0: powered off")
        .expect_debug("vm1: powered off");
    q.expect_clean_exit();
    let text = q.debug.text();
    for id in 0..2 {
        let n = text
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!("vm{id}: "))?
                    .strip_suffix(" world switches in")
            })
            .and_then(|n| n.parse::<u64>().ok());
        q.check(
            n.is_some_and(|n| n >= 1000),
            &format!("vm{id}: too few world switches: {n:?}"),
        );
    }
}

/// Issue 3: every trapped virtual-memory control reads back what was written, the
/// ID registers are sanitised, an IMPLEMENTATION DEFINED and an EL2 register UNDEF
/// in the guest (which continues), set/way operations complete, and the console's
/// `traps` counts match what the guest did.
#[test]
fn trapped_system_registers_behave_and_are_counted() {
    // Traced: the memory-control registers (TVM/TRVM) trap and are counted.
    let mut q = qemu()
        .smp(1)
        .arg("-append")
        .arg("hv.stay=1 hv.trace_vm_regs=vm0")
        .vm(module(guest("sysregs")))
        .start();
    for reg in [
        "SCTLR_EL1",
        "TTBR0_EL1",
        "TTBR1_EL1",
        "TCR_EL1",
        "ESR_EL1",
        "FAR_EL1",
        "MAIR_EL1",
        "CONTEXTIDR_EL1",
    ] {
        q.expect_guest(&format!("sysregs: {reg} wrote"));
    }
    q.expect_guest("sysregs: UNDEF mrs S3_0_C15_C0_0 (IMPLEMENTATION DEFINED) EC=0x00 ok")
        .expect_guest("sysregs: UNDEF msr HCR_EL2 EC=0x00 ok")
        .expect_guest("sysregs: DC CISW completed")
        .expect_guest("sysregs: CONTEXTIDR_EL1 total writes=101 reads=102")
        .expect_guest("sysregs: PASS")
        .expect_debug("vm0: UNDEF injected")
        .expect_debug("vm0: powered off (system-off)")
        .expect_debug("hv: no VM is left; staying up for the debug console");
    let text = q.guest.text();
    q.check(
        !text.contains("MISMATCH"),
        "a trapped register did not read back what was written",
    );
    let pfr0 = text
        .lines()
        .find_map(|l| l.strip_prefix("sysregs: ID ID_AA64PFR0_EL1=0x"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    q.check(
        pfr0.is_some_and(|v| (v >> 8) & 0xff == 0),
        "EL2/EL3 visible in ID_AA64PFR0_EL1",
    );
    // The console's counts: 101 writes and 102 reads of CONTEXTIDR_EL1 (the guest's
    // own tally), in the `traps` table as "NAME  ENCODING  READS  WRITES".
    q.debug.write(b"traps\r");
    q.expect_debug("S3_0_C13_C0_1");
    std::thread::sleep(Duration::from_millis(300));
    let debug = q.debug.text();
    let row = debug
        .lines()
        .find(|l| l.starts_with("CONTEXTIDR_EL1 "))
        .map(str::to_owned);
    let counts: Option<Vec<u64>> = row.as_deref().map(|r| {
        r.split_whitespace()
            .skip(2)
            .filter_map(|n| n.parse().ok())
            .collect()
    });
    q.check(
        counts == Some(vec![102, 101]),
        &format!("traps row for CONTEXTIDR_EL1: {row:?}"),
    );
}

/// Issue 3: an AArch32 EL1 guest's cp15 accesses land in the same state, through
/// the table's AArch32 views.
#[test]
fn an_aarch32_guest_programs_its_mmu_registers_through_cp15() {
    let mut q = qemu()
        .smp(1)
        .cpu("cortex-a72")
        .arg("-append")
        .arg("hv.stay=1")
        .vm(module(guest("aarch32")))
        .start();
    q.expect_guest("aarch32: hello from AArch32 mode=0x13");
    for reg in [
        "SCTLR",
        "TTBCR",
        "TTBR0",
        "TTBR0_64",
        "DACR",
        "CONTEXTIDR",
        "PRRR",
        "NMRR",
    ] {
        q.expect_guest(&format!("aarch32: {reg} wrote"));
    }
    q.expect_guest("aarch32: PASS")
        .expect_debug("vm0: powered off (system-off)");
    q.check(
        !q.guest.contains("MISMATCH"),
        "an AArch32 view did not read back",
    );
    // The AArch64 view of the same state, from the console.
    q.debug.write(b"sysregs vm0.0 CONTEXTIDR_EL1\r");
    q.expect_debug("CONTEXTIDR_EL1       0x0000000012345678");
    q.debug.write(b"sysregs vm0.0 TTBR0_EL1\r");
    q.expect_debug("TTBR0_EL1            0x00ab000045678000");
}

/// Issues 4 and 5: the console lists VMs and vCPUs, pauses and resumes a VM, shows
/// registers, and refuses bad input with a clear error.
#[test]
fn the_debug_console_answers_and_refuses_bad_input() {
    let spin =
        module(guest("spin")).bootargs("console=ttyAMA0 count=1000000000000 every=100000000");
    let mut q = qemu().smp(2).vm(spin).start();
    q.expect_debug("hv: debug console: type 'help' for commands")
        .expect_guest("spin: progress 100000000/");
    q.debug.write(b"help\r");
    q.expect_debug("snapshot save VM [SLOT]");
    q.debug.write(b"vms\r");
    q.expect_debug("vm0: running, 2 vCPU(s), ");
    q.debug.write(b"pause vm0\r");
    q.expect_debug("vm0: paused");
    std::thread::sleep(Duration::from_millis(500));
    let paused_at = q.guest.text().len();
    std::thread::sleep(Duration::from_millis(1500));
    q.check(
        q.guest.text().len() == paused_at,
        "a paused VM kept printing",
    );
    q.debug.write(b"regs vm0.0\r");
    q.expect_debug("pstate 0x");
    q.debug.write(b"sysregs vm0.0 SCTLR\r");
    q.expect_debug("SCTLR_EL1 ");
    q.debug.write(b"resume vm0\r");
    q.expect_debug("vm0: resumed");
    q.debug.write(b"frobnicate\r");
    q.expect_debug("error: unknown command 'frobnicate': type 'help'");
    q.debug.write(b"regs vm9.0\r");
    q.expect_debug("error: no VM vm9");
    q.debug.write(b"snapshot restore vm0 nosuch\r");
    q.expect_debug("error: no snapshot slot named 'nosuch'");
    // Running again: the guest prints its next progress line (waited for with the
    // harness's deadline, not a wall-clock guess: QEMU may run slowly).
    let last = q
        .guest
        .text()
        .lines()
        .filter_map(|l| {
            l.strip_prefix("spin: progress ")?
                .split('/')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    q.expect_guest(&format!("spin: progress {}/", last + 100_000_000));
}

fn progress_values(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| {
            l.strip_prefix("spin: progress ")?
                .split('/')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// Issue 4: a checkpoint taken while the guest counts, then restored, makes the
/// guest resume from the saved count.
#[test]
fn a_restored_checkpoint_resumes_the_guest_from_the_saved_count() {
    let every = 100_000_000u64;
    let spin = module(guest("spin")).bootargs(&format!(
        "console=ttyAMA0 count=1000000000000 every={every}"
    ));
    let mut q = qemu().smp(1).vm(spin).start();
    q.expect_guest(&format!("spin: progress {}/", 2 * every));
    q.debug.write(b"snapshot save vm0 c\r");
    q.expect_debug("vm0: saved to slot 'c'");
    std::thread::sleep(Duration::from_millis(200));
    // Only complete lines: a line still being printed ("spin: progress 3000")
    // would read as a smaller count.
    let at_save = *progress_values(complete_lines(&q.guest.text()))
        .last()
        .unwrap();
    q.expect_guest(&format!("spin: progress {}/", at_save + 4 * every));
    let before = complete_lines(&q.guest.text()).to_string();
    let max_before = *progress_values(&before).last().unwrap();
    q.debug.write(b"snapshot restore vm0 c\r");
    q.expect_debug("vm0: restored from slot 'c'");
    // The next progress lines after the restore count on from the checkpoint.
    let start = std::time::Instant::now();
    let after = loop {
        let t = q.guest.text();
        let new: Vec<u64> = progress_values(complete_lines(&t[before.len()..]));
        // Lines printed after the restore go back below what was reached before it.
        if let Some(&v) = new.iter().find(|&&v| v < max_before) {
            break v;
        }
        if start.elapsed() > common::DEADLINE {
            q.fail(&format!("no progress line went back after the restore (saved at {at_save}, reached {max_before}, then {new:?})"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    q.check(
        after > at_save - every && after <= at_save + 2 * every,
        &format!("resumed at {after}, the checkpoint was at {at_save}"),
    );
}

/// `sweep: ok S<op0>_<op1>_C<n>_C<m> r=0x.. w=0x..` lines: per encoding, whether the
/// read and the write completed.
fn sweep_outcomes(text: &str) -> std::collections::BTreeMap<(String, char), bool> {
    let mut m = std::collections::BTreeMap::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("sweep: ok ") else {
            continue;
        };
        let mut it = rest.split_whitespace();
        let (Some(group), Some(r), Some(w)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let mask = |s: &str, p: &str| {
            u8::from_str_radix(s.strip_prefix(p).unwrap_or("0"), 16).unwrap_or(0)
        };
        let (r, w) = (mask(r, "r=0x"), mask(w, "w=0x"));
        for op2 in 0..8 {
            m.insert((format!("{group}_{op2}"), 'r'), r >> op2 & 1 == 1);
            m.insert((format!("{group}_{op2}"), 'w'), w >> op2 & 1 == 1);
        }
    }
    m
}

/// Issue 3: MRS and MSR of every op0 2/3 encoding (65,536 instructions) at EL1. The
/// hypervisor survives all of them, and where its guest's results differ from bare
/// QEMU on the same CPU model, each difference is a documented decision
/// (tests/sweep-decisions.txt).
#[test]
fn sweep_matches_bare_qemu_except_documented_decisions() {
    let mut bare = qemu().bare(guest("sweep")).smp(1).cpu("cortex-a72").start();
    bare.expect_guest("sweep: PASS");
    let mut hv = qemu()
        .smp(1)
        .cpu("cortex-a72")
        .vm(module(guest("sweep")))
        .start();
    hv.expect_guest("sweep: PASS")
        .expect_debug("vm0: powered off (system-off)");
    hv.check(
        !hv.debug.contains("PANIC") && !hv.debug.contains("CRASH"),
        "the hypervisor failed",
    );
    let (b, h) = (
        sweep_outcomes(&bare.guest.text()),
        sweep_outcomes(&hv.guest.text()),
    );
    let decisions: Vec<(String, String)> = include_str!("sweep-decisions.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut it = l.split_whitespace();
            (it.next().unwrap().to_owned(), it.next().unwrap().to_owned())
        })
        .collect();
    let mut used = vec![false; decisions.len()];
    let mut undocumented = Vec::new();
    let keys: std::collections::BTreeSet<_> = b.keys().chain(h.keys()).cloned().collect();
    for key in keys {
        let (in_bare, in_hv) = (
            b.get(&key).copied().unwrap_or(false),
            h.get(&key).copied().unwrap_or(false),
        );
        if in_bare == in_hv {
            continue;
        }
        // A difference is acceptable only if documented, and only as the hypervisor
        // hiding something: a guest must never reach a register bare EL1 cannot.
        let found = decisions.iter().position(|(prefix, access)| {
            key.0.starts_with(prefix.as_str()) && access.contains(key.1)
        });
        match (found, in_hv) {
            (Some(i), false) => used[i] = true,
            _ => undocumented.push(format!(
                "{} {}: bare {}, hypervisor {}",
                key.0, key.1, in_bare, in_hv
            )),
        }
    }
    hv.check(
        undocumented.is_empty(),
        &format!("undocumented differences: {undocumented:#?}"),
    );
    let stale: Vec<_> = decisions
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(d, _)| d.0.clone())
        .collect();
    hv.check(
        stale.is_empty(),
        &format!("decisions no difference needs (remove them): {stale:?}"),
    );
}

/// What one run of `cargo xtask` did: its status and both outputs.
struct Run {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\nstdout:\n{}\nstderr:\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cargo xtask ARGS` as a user would (`common::xtask()`: the executable
/// `cargo xtask test` runs as), and says on standard error how long it took.
fn run_xtask<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let mut cmd = common::xtask();
    cmd.args(args);
    let start = std::time::Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let run = Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!(
        "{cmd:?}: {} in {:.1} s",
        run.status,
        start.elapsed().as_secs_f64()
    );
    run
}

/// Types `command` on the debug console and waits for `answer` in what it prints
/// from then on (not in what came before); returns that output.
fn ask(q: &mut common::Qemu, command: &str, answer: &str) -> String {
    let mark = q.debug.text().len();
    q.debug.write(format!("{command}\r").as_bytes());
    let start = std::time::Instant::now();
    loop {
        let t = q.debug.text()[mark..].to_owned();
        if t.contains(answer) {
            return t;
        }
        if start.elapsed() > common::DEADLINE {
            q.fail(&format!("'{command}' was not answered with {answer:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `text` up to its last newline: without a line still being printed.
fn complete_lines(text: &str) -> &str {
    &text[..text.rfind('\n').map_or(0, |i| i + 1)]
}

/// Waits until the guest console has printed `n` progress lines after byte `from`,
/// and returns their values.
fn progress_after(q: &mut common::Qemu, from: usize, n: usize, what: &str) -> Vec<u64> {
    let start = std::time::Instant::now();
    loop {
        let v = progress_values(complete_lines(&q.guest.text()[from..]));
        if v.len() >= n {
            return v;
        }
        if start.elapsed() > common::DEADLINE {
            q.fail(&format!(
                "{what}: the guest printed {v:?}, not {n} progress lines"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Issue 4: a snapshot saved to a host file by `cargo xtask snapshot save` is
/// restored by `cargo xtask snapshot restore` into a fresh boot, and the guest goes
/// on from the saved count. Both commands run as a user runs them, on QEMU's TCP
/// debug console, while the harness lets go of it; `cargo xtask snapshot show`
/// prints the file's registers by name; and a copy with one byte flipped is
/// refused with a message, the guest carrying on untouched.
#[test]
fn a_snapshot_saved_to_a_file_by_xtask_restores_into_a_fresh_boot() {
    let every = 100_000_000u64;
    let spin = || {
        module(guest("spin")).bootargs(&format!(
            "console=ttyAMA0 count=1000000000000 every={every}"
        ))
    };
    let dir = common::Scratch::new("snapcli");
    let file = dir.0.join("vm0.snap");
    let corrupt = dir.0.join("corrupt.snap");
    let last = |q: &common::Qemu| {
        progress_values(complete_lines(&q.guest.text()))
            .last()
            .copied()
    };

    // Save, from a guest that has counted a while.
    let mut a = qemu().smp(1).vm(spin()).start();
    a.expect_debug("hv: debug console: type 'help' for commands")
        .expect_guest(&format!("spin: progress {}/", 5 * every));
    a.disconnect_debug();
    let port = a.debug_port().to_string();
    // The snapshot is taken after the last progress line printed before the
    // command, and before the first one printed after the command's end.
    let lo = last(&a).unwrap();
    let save = run_xtask(&[
        "snapshot".as_ref(),
        "save".as_ref(),
        "--port".as_ref(),
        port.as_ref(),
        "--vm".as_ref(),
        "0".as_ref(),
        file.as_os_str(),
    ]);
    let hi = last(&a).unwrap();
    a.check(
        save.status.success(),
        &format!("cargo xtask snapshot save failed: {save}"),
    );
    let size = std::fs::metadata(&file).map_or(0, |m| m.len());
    a.check(size > 0, &format!("{} is missing or empty", file.display()));
    a.check(
        save.stdout.contains(&format!(
            "saved vm0 to {} ({size} bytes, 1 vCPU(s), ",
            file.display()
        )),
        &format!("cargo xtask snapshot save did not report the file: {save}"),
    );
    // The console is the harness's again, and the VM was resumed after the save.
    a.reconnect_debug();
    ask(&mut a, "vms", "vm0: running, 1 vCPU(s)");
    eprintln!("saved {size} bytes with the guest between progress {lo} and {hi}");
    drop(a);

    // What the file holds, by name.
    let show = run_xtask(&["snapshot".as_ref(), "show".as_ref(), file.as_os_str()]);
    assert!(
        show.status.success(),
        "cargo xtask snapshot show failed: {show}"
    );
    for text in [
        "format version ",
        ", 1 vCPU(s)",
        "RAM: ",
        " data pages, ",
        "vCPU 0: on, pc 0x",
        "  x0  0x",
        "  SCTLR_EL1 ",
        "  VBAR_EL1 ",
        "  TTBR0_EL1 ",
    ] {
        assert!(
            show.stdout.contains(text),
            "cargo xtask snapshot show did not print {text:?}: {show}"
        );
    }

    // A copy with one byte flipped, in the middle of the file.
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&corrupt, &bytes).unwrap();

    // Restore into a fresh boot of the same machine.
    let mut b = qemu().smp(1).vm(spin()).start();
    b.expect_debug("hv: debug console: type 'help' for commands")
        .expect_guest(&format!("spin: progress {every}/"));
    b.disconnect_debug();
    let port = b.debug_port().to_string();
    // The progress line matched above may not be complete yet: wait for it.
    let (before, prev) = loop {
        let t = b.guest.text();
        let t = complete_lines(&t);
        if let Some(&v) = progress_values(t).last() {
            break (t.len(), v);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let restore = run_xtask(&[
        "snapshot".as_ref(),
        "restore".as_ref(),
        "--port".as_ref(),
        port.as_ref(),
        "--vm".as_ref(),
        "0".as_ref(),
        file.as_os_str(),
    ]);
    b.check(
        restore.status.success(),
        &format!("cargo xtask snapshot restore failed: {restore}"),
    );
    b.check(
        restore
            .stdout
            .contains(&format!("restored vm0 from {}", file.display())),
        &format!("cargo xtask snapshot restore did not report the restore: {restore}"),
    );
    b.reconnect_debug();
    // The guest's own count goes on in steps of `every` until the restore; then the
    // count jumps to where the snapshot was taken: the line after it.
    let start = std::time::Instant::now();
    let resumed = loop {
        let mut own = prev;
        let jump = progress_values(complete_lines(&b.guest.text()[before..]))
            .into_iter()
            .find(|&v| {
                let next = v == own + every;
                own = v;
                !next
            });
        if let Some(v) = jump {
            break v;
        }
        if start.elapsed() > common::DEADLINE {
            b.fail(&format!(
                "the count did not jump to the snapshot's (taken between {lo} and {hi})"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    b.check(
        resumed >= lo + every && resumed <= hi + every,
        &format!("the guest went on at {resumed}; the snapshot was taken between {lo} and {hi}"),
    );
    // And it keeps counting from there.
    b.expect_guest(&format!("spin: progress {}/", resumed + 2 * every));
    ask(&mut b, "vms", "vm0: running, 1 vCPU(s)");
    eprintln!("restored: the guest went on at {resumed} (snapshot between {lo} and {hi})");

    // The corrupted copy: refused with a message, and the guest does not notice.
    b.disconnect_debug();
    let (from, from_count) = {
        let t = b.guest.text();
        let t = complete_lines(&t);
        (t.len(), *progress_values(t).last().unwrap())
    };
    let bad = run_xtask(&[
        "snapshot".as_ref(),
        "restore".as_ref(),
        "--port".as_ref(),
        port.as_ref(),
        "--vm".as_ref(),
        "0".as_ref(),
        corrupt.as_os_str(),
    ]);
    b.check(
        !bad.status.success(),
        &format!("cargo xtask snapshot restore took a corrupted file: {bad}"),
    );
    b.check(
        bad.stderr
            .contains(&format!("xtask: {}: frame ", corrupt.display()))
            && bad
                .stderr
                .contains(" is damaged: its contents do not match its CRC-32"),
        &format!("cargo xtask snapshot restore of a corrupted file did not say why: {bad}"),
    );
    b.reconnect_debug();
    let after = progress_after(&mut b, from, 2, "after the refused restore");
    let expected: Vec<u64> = (1..=after.len() as u64)
        .map(|i| from_count + i * every)
        .collect();
    b.check(
        after == expected,
        &format!("after the refused restore the guest printed {after:?}, not {expected:?}"),
    );
    let answer = ask(&mut b, "vms", "vm0: running, 1 vCPU(s)");
    b.check(
        !answer.contains("restored"),
        "the refused restore reached the hypervisor",
    );
}

/// Issue 4: a vCPU blocked in WFI wakes on its virtual timer, on time, even with
/// another VM spinning on the same CPU; and it blocks (one wake-up per wait), it
/// does not spin. Under `-icount` the guest's clock counts instructions, so "on
/// time" is the hypervisor's doing and not the host's load (without it, a busy
/// host once made a 10 ms wait take 31 ms).
#[test]
fn a_vcpu_blocked_in_wfi_wakes_on_its_timer() {
    let spin =
        module(guest("spin")).bootargs("console=ttyAMA0 count=1000000000000 every=1000000000");
    let mut q = qemu()
        .smp(1)
        .arg("-icount")
        .arg("shift=0,sleep=off,align=off")
        .vm(module(guest("wfi")))
        .vm(spin)
        .start();
    q.expect_guest("[vm0] wfi: PASS");
    let text = q.guest.text();
    let waits: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("[vm0] wfi: wait "))
        .collect();
    q.check(
        waits.len() == 5,
        &format!("5 waits reported, not {}", waits.len()),
    );
    eprintln!("wfi waits: {waits:?}");
    for line in waits {
        // "N: woke after T us (W wake-ups)"
        let words: Vec<&str> = line.split_whitespace().collect();
        let us: u64 = words[3].parse().unwrap();
        let wakeups: u64 = words[5].trim_start_matches('(').parse().unwrap();
        q.check(us <= 25_000, &format!("woke late: {line}"));
        q.check(wakeups <= 3, &format!("WFI did not block: {line}"));
    }
}

/// Issue 5 (console half): `vtop` and `mem` translate a guest virtual address through
/// the vCPU's live stage-1 state: Linux's vector base (a kernel high address,
/// TTBR1, 4K pages) walks through four levels to guest RAM and reads back kernel
/// code; an unmapped address reports the level that faulted.
#[test]
fn the_console_translates_a_linux_kernel_address() {
    let (kernel, initrd, _) = common::linux();
    let m = module(&kernel).initrd(&initrd).bootargs("console=ttyAMA0");
    let mut q = qemu().smp(2).cpu("cortex-a72").vm(m).start();
    q.expect_guest("Memory:");
    q.debug.write(b"pause vm0\r");
    q.expect_debug("vm0: paused");
    q.debug.write(b"sysregs vm0.0 VBAR_EL1\r");
    q.expect_debug("VBAR_EL1             0xffff");
    let text = q.debug.text();
    let vbar = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("VBAR_EL1             0x"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap();
    q.debug.write(format!("vtop vm0.0 {vbar:#x}\r").as_bytes());
    q.expect_debug("stage 1 level 3: table IPA")
        .expect_debug(&format!("VA {vbar:#x} -> IPA 0x"));
    q.debug
        .write(format!("mem vm0.0 {vbar:#x} 16\r").as_bytes());
    q.expect_debug(&format!("{vbar:016x}: "));
    q.debug.write(b"vtop vm0.0 0x1234\r");
    q.expect_debug("error: VA 0x1234: translation fault at level 0");
    q.debug.write(b"resume vm0\r");
    q.expect_debug("vm0: resumed")
        .expect_guest("linux-guest: PASS");
}

/// Issue 13: slots live in the snapshot pool reserved at boot
/// (`hv.snapshot_pool=SIZE`): a checkpoint saved there restores, `snapshot list`
/// shows the pool's use, a full pool says so by name, and a deleted slot frees
/// its room.
#[test]
fn snapshot_slots_live_in_the_pool_and_a_full_pool_says_so() {
    let every = 100_000_000u64;
    let spin = module(guest("spin")).bootargs(&format!(
        "console=ttyAMA0 count=1000000000000 every={every}"
    ));
    let mut q = qemu()
        .smp(1)
        .memory("512M")
        .append("hv.snapshot_pool=2M")
        .vm(spin)
        .start();
    q.expect_debug("hv: snapshot pool: 2 MiB at ")
        .expect_guest(&format!("spin: progress {}/", 2 * every));
    q.debug.write(b"snapshot save vm0 first\r");
    q.expect_debug("vm0: saved to slot 'first'");
    q.debug.write(b"snapshot list\r");
    q.expect_debug("pool: 1 of 2 MiB used");
    // Fill the pool: each save of this VM takes a part of it, until one does not fit.
    let mut full = false;
    for i in 0..64 {
        q.debug
            .write(format!("snapshot save vm0 s{i}\r").as_bytes());
        let start = std::time::Instant::now();
        loop {
            let t = q.debug.text();
            if t.contains(&format!("saved to slot 's{i}'")) {
                break;
            }
            if t.contains("error: the snapshot pool is full: ") {
                full = true;
                break;
            }
            if start.elapsed() > common::DEADLINE {
                q.fail(&format!("snapshot save s{i} did not answer"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if full {
            break;
        }
    }
    q.check(full, "64 saves of the VM fit a 2 MiB pool");
    q.expect_debug("free one with 'snapshot delete SLOT', or boot with a larger hv.snapshot_pool");
    // The first slot is still whole and restores; deleting slots frees room.
    q.debug.write(b"snapshot restore vm0 first\r");
    q.expect_debug("vm0: restored from slot 'first'");
    q.debug.write(b"snapshot delete s0\r");
    q.expect_debug("deleted slot 's0'");
    q.debug.write(b"snapshot save vm0 again\r");
    q.expect_debug("vm0: saved to slot 'again'");
    q.debug.write(b"snapshot delete nosuch\r");
    q.expect_debug("error: no snapshot slot named 'nosuch'");
}
