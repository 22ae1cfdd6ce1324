//! The device-tree layer (`src/dt/`) as boot uses it: arbitrary bytes as the host
//! DTB go through `dt::parse`, `dt::guests` and, with the parameters boot would
//! derive (the board's consoles: the guests' line behind an emulated PL011, the
//! debug UART hidden; the first memory range as the VM's RAM, the first guest's command line and
//! initrd), `dt::guest_dtb`.
//!
//! Invariants:
//! * no panic and no hang (the `fdt` crate panics on malformed blobs: `dt::blob`
//!   must stop every one it would panic on);
//! * every refusal is an error in words (no Rust debug output);
//! * the guests use only the modules the DTB lists, at most `MAX_GUESTS`;
//! * a guest DTB is read back by `fdt` (every node and property walked, one CPU
//!   node per vCPU) and, when it has at most `dt::MAX_CPUS` CPUs (the reader's
//!   limit for a host), by `dt::parse`, with exactly the VM's CPUs, RAM, command
//!   line and initrd, PSCI over HVC, the emulated PL011 (or, with none, the
//!   host's console) as `serial0`, no boot module, no dom0less domain and no debug
//!   UART; writing it twice gives the same bytes.
#![no_main]

use hypervisor::addr::{Ipa, PhysAddr, Range};
use hypervisor::board;
use hypervisor::dt::{self, DtError, GuestDtbParams, MachineInfo, PsciMethod};
use libfuzzer_sys::fuzz_target;

fn in_words(e: DtError) {
    let msg = e.to_string();
    for debug in ["Some(", "None", "{ ", "DtError", "BadStructure", "TooMany"] {
        assert!(!msg.contains(debug), "debug output in '{msg}'");
    }
}

/// The RAM a VM gets: the first memory range (as IPA = PA, as on `virt`), at most
/// 1 GiB.
fn vm_ram(info: &MachineInfo) -> Range<Ipa> {
    match info.memory.first() {
        Some(m) if m.size >= 0x20_0000 => Range::new(Ipa(m.start.0), m.size.min(1 << 30)),
        _ => Range::new(Ipa(0x4000_0000), 0x1000_0000),
    }
}

fn guest(host: &[u8], info: &MachineInfo) {
    let specs = match dt::guests(info) {
        Ok(s) => s,
        Err(e) => return in_words(e),
    };
    assert!(specs.len() <= dt::MAX_GUESTS);
    let listed: Vec<Range<PhysAddr>> = info
        .modules
        .iter()
        .chain(info.domains.iter().flat_map(|d| d.modules.iter()))
        .map(|m| m.range)
        .collect();
    for s in &specs {
        for r in [Some(s.kernel), s.ramdisk, s.dtb].into_iter().flatten() {
            assert!(
                listed.contains(&r),
                "a guest uses a module the DTB does not list"
            );
        }
    }
    // The consoles as boot picks them: the board's choice, then stdout-path.
    let (board, _) = board::select(info.compatible.iter());
    let consoles = board::consoles(board, info);
    let Some(console) = consoles.guest else {
        return; // boot stops: no guest console
    };
    let debug = consoles.debug;
    let hidden: Vec<&str> = debug.map(|d| d.path.as_str()).into_iter().collect();
    let uart = board::emulated_uart(&consoles);
    let ram = vm_ram(info);
    let first = specs.first();
    let vcpus = first
        .and_then(|s| s.vcpus)
        .unwrap_or(info.cpus.len())
        .clamp(1, dt::MAX_VCPUS);
    let initrd = first
        .and_then(|s| s.ramdisk)
        .filter(|r| r.size > 0 && r.size <= ram.size / 2)
        .map(|r| Range::new(Ipa(ram.start.0 + ram.size / 2), r.size));
    let params = GuestDtbParams {
        vcpus,
        ram,
        bootargs: first.and_then(|s| s.bootargs),
        initrd,
        console_path: console.path.as_str(),
        hidden_paths: &hidden,
        uart,
        pmu: vcpus % 2 == 0,
    };
    let g = match dt::guest_dtb(host, info, &params) {
        Ok(g) => g,
        Err(e) => return in_words(e),
    };
    assert!(
        dt::guest_dtb(host, info, &params).is_ok_and(|again| again == g),
        "the guest DTB differs when written twice"
    );

    // `fdt` reads it all.
    let f = fdt::Fdt::new(&g).expect("fdt reads the guest DTB");
    for node in f.all_nodes() {
        for p in node.properties() {
            let _ = (p.name, p.value.len());
        }
    }
    // The CPUs, as `fdt` sees them.
    let cpu_nodes = f
        .find_node("/cpus")
        .expect("/cpus")
        .children()
        .filter(|c| c.name.starts_with("cpu@"))
        .count();
    assert_eq!(cpu_nodes, vcpus);
    let chosen = f.find_node("/chosen").expect("/chosen");
    let start = chosen
        .property("linux,initrd-start")
        .map(|p| p.value.to_vec());
    let end = chosen
        .property("linux,initrd-end")
        .map(|p| p.value.to_vec());
    match initrd {
        Some(r) => {
            assert_eq!(start, Some(r.start.0.to_be_bytes().to_vec()));
            assert_eq!(end, Some((r.start.0 + r.size).to_be_bytes().to_vec()));
        }
        None => assert!(start.is_none() && end.is_none()),
    }
    // And our parser, with the VM's parameters. It reads host machines of at most
    // dt::MAX_CPUS CPUs (its result lives on the boot stack); a guest may have up to
    // dt::MAX_VCPUS, which only the guest reads.
    let back = match dt::parse(&g) {
        Err(DtError::TooMany("cpus")) if vcpus > dt::MAX_CPUS => return,
        other => other.expect("dt::parse reads the guest DTB"),
    };
    assert_eq!(back.cpus.len(), vcpus);
    assert_eq!(
        back.memory.as_slice(),
        &[Range::new(PhysAddr(ram.start.0), ram.size)]
    );
    assert_eq!(back.bootargs, params.bootargs);
    assert_eq!(back.psci.map(|p| p.method), Some(PsciMethod::Hvc));
    assert!(back.modules.is_empty() && back.domains.is_empty());
    let shown = back
        .resolve_alias("serial0")
        .expect("the console is serial0");
    match uart {
        // Every guest's console is the emulated PL011, at the IPA the board says.
        Some(u) => {
            assert_eq!(shown.path.as_str(), dt::emulated_uart_path(&u).as_str());
            assert_eq!(shown.base.0, u.ipa);
        }
        None => assert_eq!(shown.path.as_str(), console.path.as_str()),
    }
    if let Some(d) = debug {
        // The debug UART never reaches a guest (unless it is the guests' line
        // too, one cable, and what the guest sees is the emulated PL011).
        assert!(
            uart.is_some_and(|u| u.ipa == d.base.0 & !0xfff)
                || back
                    .uarts
                    .iter()
                    .all(|u| u.path.as_str() != d.path.as_str()),
            "the debug UART {} reached the guest",
            d.path.as_str()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    match dt::parse(data) {
        Ok(info) => guest(data, &info),
        Err(e) => in_words(e),
    }
});
