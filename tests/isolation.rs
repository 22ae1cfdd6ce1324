//! Isolation, shown: the `isolation` guest reads and writes, as intermediate
//! physical addresses, what the hypervisor keeps from every guest: its debug
//! UART, the GIC's hypervisor interface (GICH) and virtual CPU interface
//! frame (GICV), the SMMU, the other VM's RAM, and its own image, stacks and
//! heap. Each access must end in an injected synchronous external abort (the
//! hypervisor's own memory lies inside every VM's RAM window, as RAM starts
//! there: those addresses must be the VM's own RAM instead), while the
//! `checker` VM next to it keeps beating, undisturbed.
//!
//! The addresses come from the hypervisor's boot log of a first boot of the
//! same machine (`hv: image ...: stacks ..., heap ...`, the debug console's
//! line, `vm1: RAM in host memory at ...`) and from QEMU virt's fixed map (GICH
//! 0x08030000, GICV 0x08040000, SMMUv3 0x09050000); the second boot, with the
//! probes on the guest's command line, must place everything the same.

use crate::common::{guest, module, qemu, Qemu};

const MACHINE: &str = "virt,virtualization=on,iommu=smmuv3";
const GICH: u64 = 0x0803_0000;
const GICV: u64 = 0x0804_0000;
const SMMU: u64 = 0x0905_0000;

fn hex(s: &str) -> u64 {
    let s = s.trim().trim_end_matches([',', ':', ')']);
    u64::from_str_radix(s.trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| panic!("not a hex number: {s}"))
}

fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line '{prefix}...' in:\n{text}"))
}

/// (start, end inclusive) ranges in "0xA-0xB, 0xC-0xD".
fn ranges(s: &str) -> Vec<(u64, u64)> {
    s.split(", ")
        .map(|r| {
            let (a, b) = r.split_once('-').unwrap();
            (hex(a), hex(b))
        })
        .collect()
}

fn boot(args: &str) -> Qemu {
    boot_loading(args, &[])
}

/// [`boot`], with `loads` (file, host address) put into RAM by QEMU's loader
/// before the machine starts.
fn boot_loading(args: &str, loads: &[(&std::path::Path, u64)]) -> Qemu {
    let iso = module(guest("isolation")).bootargs(&format!("console=ttyAMA0 {args}"));
    let checker = module(guest("checker")).bootargs("console=ttyAMA0 tag=9");
    let mut b = qemu().machine(MACHINE).gic(2).smp(2).vm(iso).vm(checker);
    for &(file, addr) in loads {
        b = b.load(file, addr);
    }
    let mut q = b.start();
    q.expect_debug("VM(s) ready");
    q
}

#[test]
fn isolation_every_probe_of_hypervisor_memory_devices_and_the_other_vm_aborts() {
    // First boot: where everything is.
    let first = boot("");
    let log = first.debug.text();
    drop(first);
    let image = line(&log, "hv: image ");
    let (img, rest) = image.split_once(": stacks ").unwrap();
    let (stacks, heap) = rest.split_once(", heap ").unwrap();
    let (img, stacks, heap) = (ranges(img)[0], ranges(stacks)[0], ranges(heap)[0]);
    let debug_uart = hex(line(&log, "hv: board qemu-virt")
        .split_once("debug console: ")
        .and_then(|(_, r)| r.split_once(" at "))
        .map(|(_, r)| r.split_whitespace().next().unwrap())
        .expect("the debug console's address"));
    let vm1_ram = line(&log, "vm1: RAM in host memory at ").to_string();
    let vm0_line = log
        .lines()
        .find(|l| l.starts_with("vm0: ") && l.contains(" MiB RAM at IPA 0x40000000"))
        .expect("vm0's RAM line");
    let mib: u64 = vm0_line
        .split(" MiB RAM")
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let window = (0x4000_0000u64, 0x4000_0000 + (mib << 20));
    let inside = |a: u64| a >= window.0 && a < window.1;

    let mut args = vec![
        format!("probe=debug-uart:{debug_uart:#x}"),
        format!("probe=gich:{GICH:#x}"),
        format!("probe=gicv:{GICV:#x}"),
        format!("probe=smmu:{SMMU:#x}"),
    ];
    let mut own = Vec::new();
    for (name, (a, b)) in [("hv-image", img), ("hv-stacks", stacks), ("hv-heap", heap)] {
        for (what, addr) in [("start", a), ("end", (b - 63) & !3)] {
            let n = format!("{name}-{what}");
            if inside(addr) {
                args.push(format!("own={n}:{addr:#x}"));
                own.push(n);
            } else {
                args.push(format!("probe={n}:{addr:#x}"));
            }
        }
    }
    let mut other = 0;
    for (i, (a, b)) in ranges(&vm1_ram).into_iter().enumerate() {
        for (what, addr) in [
            ("start", a),
            ("middle", (a + (b - a) / 2) & !3),
            ("end", (b - 3) & !3),
        ] {
            if !inside(addr) {
                args.push(format!("probe=vm1-ram{i}-{what}:{addr:#x}"));
                other += 1;
            }
        }
    }
    assert!(
        other > 0,
        "none of vm1's RAM ({vm1_ram}) is outside vm0's window {window:x?}"
    );

    // Second boot: the probes.
    let mut q = boot(&args.join(" "));
    let log2 = q.debug.text();
    q.check(
        line(&log2, "vm1: RAM in host memory at ") == vm1_ram && line(&log2, "hv: image ") == image,
        "the second boot placed the hypervisor or vm1 elsewhere",
    );
    q.expect_guest("[vm1] checker: heartbeat 1 ")
        .expect_guest("[vm0] isolation: PASS")
        .expect_debug("vm0: data abort: read of unmapped IPA")
        .expect_debug("external abort injected");
    let g = q.guest.text();
    for a in args.iter().filter_map(|a| a.strip_prefix("probe=")) {
        let (name, addr) = a.split_once(':').unwrap();
        for dir in ["read", "write"] {
            let want = format!("[vm0] isolation: {dir} {name} {addr}: abort ESR=");
            q.check(g.contains(&want), &format!("no '{want}'"));
        }
    }
    for n in &own {
        q.check(
            g.lines().any(|l| {
                l.contains(&format!("isolation: {n} ")) && l.contains("is this VM's own RAM")
            }),
            &format!("{n}: not shown to be the VM's own RAM"),
        );
    }
    let probes = args.iter().filter(|a| a.starts_with("probe=")).count();
    q.check(
        g.contains(&format!("isolation: probes={probes} aborts={}", 2 * probes)),
        "not every probe aborted",
    );
    // The other VM is undisturbed and keeps running.
    let beats = |t: &str| {
        t.lines()
            .filter_map(|l| {
                l.split_once("[vm1] checker: heartbeat ")?
                    .1
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap_or(0)
    };
    let now = beats(&g);
    q.expect_guest(&format!("[vm1] checker: heartbeat {} ", now + 2));
    let (g, d) = (q.guest.text(), q.debug.text());
    q.check(
        !g.contains("MISMATCH") && !g.contains("checker: FAIL"),
        "the checker VM was disturbed",
    );
    q.check(
        !d.contains("PANIC") && !d.contains("CRASH") && !d.contains("vm1: powered off"),
        "the hypervisor or vm1 failed",
    );
}

#[test]
fn isolation_ram_a_vm_has_not_used_reads_as_zeros_not_what_was_there_before() {
    // On a board, guest RAM holds whatever the firmware and boot loader left
    // (another VM's kernel from the bundle, say). QEMU's generic loader plays
    // that part: 64 KiB of 0xa5 at a host address inside each VM's RAM. vm0
    // reads its copy (its first access: a stage-2 access-flag fault), the debug
    // console shows vm1's, and both must read as zeros.
    let first = boot("");
    let log = first.debug.text();
    drop(first);
    // (host address, IPA) of 64 KiB in the middle of the VM's largest chunk of
    // RAM: far from its kernel and device tree.
    let fresh = |vm: usize| {
        let chunks = ranges(line(&log, &format!("vm{vm}: RAM in host memory at ")));
        let (i, &(a, b)) = chunks
            .iter()
            .enumerate()
            .max_by_key(|(_, (a, b))| b - a)
            .unwrap();
        let pa = (a + (b - a) / 2) & !0xffff;
        let before: u64 = chunks[..i].iter().map(|(a, b)| b + 1 - a).sum();
        (pa, 0x4000_0000 + before + (pa - a))
    };
    let ((pa0, ipa0), (pa1, ipa1)) = (fresh(0), fresh(1));
    let dir = crate::common::Scratch::new("fresh");
    let junk = dir.path("leftovers.bin");
    std::fs::write(&junk, vec![0xa5u8; 64 << 10]).unwrap();

    let mut q = boot_loading(
        &format!("fresh=leftovers:{ipa0:#x}"),
        &[(&junk, pa0), (&junk, pa1)],
    );
    let log2 = q.debug.text();
    for vm in 0..2 {
        let l = format!("vm{vm}: RAM in host memory at ");
        q.check(
            line(&log2, &l) == line(&log, &l),
            "the second boot placed the VMs' RAM elsewhere",
        );
    }
    q.expect_guest("[vm0] isolation: PASS");
    let want = format!("isolation: leftovers {ipa0:#x} reads as zeros (65536 bytes of fresh RAM)");
    q.check(q.guest.contains(&want), &format!("no '{want}'"));
    // The debug console's view of vm1's copy (the checker runs with its MMU
    // off: VA = IPA): zeros too.
    q.expect_guest("[vm1] checker: heartbeat 1 ");
    q.debug.write(b"pause vm1\r");
    q.expect_debug("vm1: paused");
    q.debug
        .write(format!("mem vm1.0 {ipa1:#x} 32\r").as_bytes());
    q.expect_debug(&format!("{:016x}: 00 00 00 00", ipa1 + 16));
    q.check(
        !q.debug.contains(" a5 a5 a5 a5"),
        "the console showed leftovers",
    );
}
