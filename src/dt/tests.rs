//! Host tests against QEMU's real DTBs and the hand-written fixtures.
#![forbid(unsafe_code)]

use super::*;
use crate::addr::{Ipa, PhysAddr, Range};

const VIRT_V3: &[u8] = include_bytes!("../../tests/fixtures/virt-gicv3.dtb");
const VIRT_V2: &[u8] = include_bytes!("../../tests/fixtures/virt-gicv2.dtb");
const TWO_VMS: &[u8] = include_bytes!("../../tests/fixtures/virt-two-vms.dtb");
const DOM0LESS: &[u8] = include_bytes!("../../tests/fixtures/dom0less.dtb");
const RPI4: &[u8] = include_bytes!("../../tests/fixtures/rpi4-mini.dtb");

fn pa(a: u64, size: u64) -> Range<PhysAddr> {
    Range::new(PhysAddr(a), size)
}

fn ppi(n: u32, flags: u32) -> Irq {
    Irq {
        intid: 16 + n,
        flags,
    }
}

#[test]
fn virt_gicv3_machine() {
    let m = parse(VIRT_V3).unwrap();
    assert_eq!(m.model, Some("linux,dummy-virt"));
    assert!(m.compatible.contains("linux,dummy-virt"));
    assert_eq!(m.root_cells, (2, 2));
    assert_eq!(m.memory.as_slice(), &[pa(0x4000_0000, 1 << 30)]);
    assert_eq!(m.memory_size(), 1 << 30);
    assert!(m.reserved.is_empty());
    assert_eq!(m.cpus.len(), 4);
    for (i, cpu) in m.cpus.iter().enumerate() {
        assert_eq!(cpu.mpidr, i as u64);
        assert_eq!(cpu.enable_method, Some(EnableMethod::Psci));
        assert_eq!(cpu.compatible, Some("arm,cortex-a57"));
    }

    let gic = m.gic.as_ref().unwrap();
    assert_eq!(gic.version, GicVersion::V3);
    assert_eq!(gic.path, "/intc@8000000");
    assert_eq!(gic.phandle, Some(0x8005));
    assert_eq!(gic.distributor, pa(0x800_0000, 0x10000));
    assert_eq!(gic.redistributors.as_slice(), &[pa(0x80a_0000, 0xf6_0000)]);
    assert_eq!(
        (gic.cpu_interface, gic.hyp_interface, gic.vcpu_interface),
        (None, None, None)
    );
    assert_eq!(gic.maintenance_irq, Some(ppi(9, 4)));

    let t = m.timer.unwrap();
    assert_eq!(
        [
            t.secure_phys.intid,
            t.phys.intid,
            t.virt.intid,
            t.hyp_phys.intid
        ],
        [29, 30, 27, 26]
    );
    assert_eq!(t.hyp_virt.map(|i| i.intid), Some(28));
    assert!(t.always_on && t.virt.is_level());

    let psci = m.psci.unwrap();
    assert_eq!(psci.method, PsciMethod::Smc);
    assert_eq!(psci.version, (1, 0));
    assert_eq!(psci.cpu_on, Some(0xc400_0003));

    assert_eq!(m.uarts.len(), 2);
    let guest = m.resolve_alias("serial0").unwrap();
    let debug = m.resolve_alias("serial1").unwrap();
    assert_eq!(
        (guest.path.as_str(), guest.base, guest.size),
        ("/pl011@9000000", PhysAddr(0x900_0000), 0x1000)
    );
    assert_eq!(
        (debug.path.as_str(), debug.base),
        ("/pl011@9040000", PhysAddr(0x904_0000))
    );
    assert_eq!(
        guest.irq,
        Some(Irq {
            intid: 33,
            flags: 4
        })
    );
    assert_eq!(debug.irq.map(|i| i.intid), Some(40));
    assert_eq!(guest.kind, UartModel::Pl011);
    assert_eq!(guest.clock_hz, Some(24_000_000));
    assert!(guest.enabled);
    assert!(m.resolve_alias("serial2").is_none());
    assert_eq!(m.stdout_path, Some("/pl011@9000000"));
    assert_eq!(m.stdout_uart().map(|u| u.base), Some(PhysAddr(0x900_0000)));

    // guest-loader writes reg with the root's 2/2 cells under a /chosen without
    // #address-cells: sizes must come out as 6, not garbage.
    assert_eq!(m.modules.len(), 2);
    let k = m
        .modules
        .iter()
        .find(|m| m.kind == ModuleKind::Kernel)
        .unwrap();
    assert_eq!(
        (k.range, k.bootargs),
        (pa(0x5000_0000, 6), Some("console=ttyAMA0"))
    );
    let r = m
        .modules
        .iter()
        .find(|m| m.kind == ModuleKind::Ramdisk)
        .unwrap();
    assert_eq!((r.range, r.bootargs), (pa(0x5800_0000, 6), None));
    assert!(m.domains.is_empty());
}

#[test]
fn virt_gicv2_machine() {
    let m = parse(VIRT_V2).unwrap();
    assert_eq!(m.cpus.len(), 2);
    let gic = m.gic.as_ref().unwrap();
    assert_eq!(gic.version, GicVersion::V2);
    assert_eq!(gic.distributor, pa(0x800_0000, 0x10000));
    assert_eq!(gic.cpu_interface, Some(pa(0x801_0000, 0x10000)));
    assert_eq!(gic.hyp_interface, Some(pa(0x803_0000, 0x10000)));
    assert_eq!(gic.vcpu_interface, Some(pa(0x804_0000, 0x10000)));
    assert!(gic.redistributors.is_empty());
    assert_eq!(gic.maintenance_irq, Some(ppi(9, 4)));
    // GICv2 PPI flags carry a CPU mask (0x3 << 8 for two CPUs).
    let t = m.timer.unwrap();
    assert_eq!(
        [t.secure_phys, t.phys, t.virt, t.hyp_phys],
        [
            ppi(13, 0x304),
            ppi(14, 0x304),
            ppi(11, 0x304),
            ppi(10, 0x304)
        ]
    );
    assert_eq!(
        m.resolve_alias("serial1").unwrap().base,
        PhysAddr(0x904_0000)
    );
    assert_eq!(m.psci.unwrap().method, PsciMethod::Smc);
    assert_eq!(m.memory.as_slice(), &[pa(0x4000_0000, 1 << 30)]);
}

#[test]
fn guest_loader_grouping() {
    let m = parse(VIRT_V3).unwrap();
    let g = guests(&m).unwrap();
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].kernel, pa(0x5000_0000, 6));
    assert_eq!(g[0].ramdisk, Some(pa(0x5800_0000, 6)));
    assert_eq!(g[0].bootargs, Some("console=ttyAMA0"));
    assert_eq!(
        (g[0].vcpus, g[0].memory, g[0].dtb, g[0].name),
        (None, None, None, None)
    );
}

#[test]
fn two_vms_sorted_by_address() {
    let m = parse(TWO_VMS).unwrap();
    // QEMU lists the modules in reverse order.
    assert_eq!(m.modules[0].range.start, PhysAddr(0x6000_0000));
    let g = guests(&m).unwrap();
    assert_eq!(g.len(), 2);
    assert_eq!(
        (g[0].kernel.start, g[0].ramdisk, g[0].bootargs),
        (
            PhysAddr(0x5000_0000),
            Some(pa(0x5800_0000, 6)),
            Some("console=ttyAMA0 vm=0")
        )
    );
    assert_eq!(
        (g[1].kernel.start, g[1].ramdisk, g[1].bootargs),
        (PhysAddr(0x6000_0000), None, Some("console=ttyAMA0 vm=1"))
    );
}

fn module(kind: ModuleKind, addr: u64) -> Module<'static> {
    Module {
        kind,
        range: pa(addr, 0x1000),
        bootargs: None,
    }
}

#[test]
fn grouping_errors() {
    let mut m = MachineInfo::default();
    m.modules
        .push(module(ModuleKind::Ramdisk, 0x4000_0000))
        .unwrap();
    m.modules
        .push(module(ModuleKind::Kernel, 0x5000_0000))
        .unwrap();
    assert_eq!(
        guests(&m),
        Err(DtError::OrphanModule(PhysAddr(0x4000_0000)))
    );

    let mut m = MachineInfo::default();
    m.modules
        .push(module(ModuleKind::Kernel, 0x5000_0000))
        .unwrap();
    m.modules
        .push(module(ModuleKind::Ramdisk, 0x5100_0000))
        .unwrap();
    m.modules
        .push(module(ModuleKind::Ramdisk, 0x5200_0000))
        .unwrap();
    assert_eq!(
        guests(&m),
        Err(DtError::DuplicateModule(PhysAddr(0x5200_0000)))
    );

    let mut m = MachineInfo::default();
    m.modules
        .push(module(ModuleKind::Unknown, 0x5000_0000))
        .unwrap();
    assert_eq!(
        guests(&m),
        Err(DtError::UnknownModule(PhysAddr(0x5000_0000)))
    );

    // A device tree attaches like a ramdisk; an empty /chosen means no guests.
    let mut m = MachineInfo::default();
    assert!(guests(&m).unwrap().is_empty());
    m.modules
        .push(module(ModuleKind::DeviceTree, 0x5900_0000))
        .unwrap();
    m.modules
        .push(module(ModuleKind::Kernel, 0x5000_0000))
        .unwrap();
    assert_eq!(guests(&m).unwrap()[0].dtb, Some(pa(0x5900_0000, 0x1000)));
}

#[test]
fn dom0less_domains() {
    let m = parse(DOM0LESS).unwrap();
    assert_eq!(
        m.memory.as_slice(),
        &[pa(0x4000_0000, 0x4000_0000), pa(0x1_0000_0000, 0x1000_0000)]
    );
    assert_eq!(
        m.reserved.as_slice(),
        &[
            Reserved {
                range: pa(0x4800_0000, 0x10000),
                kind: ReservedKind::MemReserve
            },
            Reserved {
                range: pa(0x7f00_0000, 0x10_0000),
                kind: ReservedKind::Node { no_map: true }
            },
        ]
    );
    assert_eq!(
        m.cpus.iter().map(|c| c.mpidr).collect::<Vec<_>>(),
        [0, 0x100]
    );
    let gic = m.gic.as_ref().unwrap();
    assert_eq!(
        gic.redistributors.as_slice(),
        &[pa(0x80a_0000, 0x10_0000), pa(0x81a_0000, 0x10_0000)]
    );
    assert_eq!(m.psci.unwrap().method, PsciMethod::Hvc);
    assert_eq!(m.psci.unwrap().version, (0, 2));
    assert_eq!(m.stdout_path, Some("serial0:115200n8"));
    assert_eq!(m.stdout_uart().unwrap().base, PhysAddr(0x900_0000));
    assert_eq!(m.bootargs, Some("hypervisor-args"));
    assert!(m.modules.is_empty());
    assert_eq!(m.domains.len(), 2);

    let g = guests(&m).unwrap();
    assert_eq!(g.len(), 2);
    assert_eq!(g[0].name, Some("domU1"));
    assert_eq!((g[0].vcpus, g[0].memory), (Some(2), Some(256 << 20)));
    assert_eq!(g[0].kernel, pa(0x5000_0000, 0x10_0000));
    assert_eq!(g[0].ramdisk, Some(pa(0x5200_0000, 0x20_0000)));
    assert_eq!(g[0].dtb, Some(pa(0x5400_0000, 0x1000)));
    assert_eq!(g[0].bootargs, Some("console=ttyAMA0 domU1"));
    // domU2: 2 address cells, 1 size cell; memory in one cell; bootargs on the domain.
    assert_eq!((g[1].vcpus, g[1].memory), (Some(1), Some(128 << 20)));
    assert_eq!(g[1].kernel, pa(0x5800_0000, 0x8_0000));
    assert_eq!(g[1].bootargs, Some("console=ttyAMA0 domU2"));
}

#[test]
fn rpi4_ranges_and_mini_uart() {
    let m = parse(RPI4).unwrap();
    assert_eq!(
        m.memory.as_slice(),
        &[pa(0, 0x3b40_0000), pa(0x4000_0000, 0xbc00_0000)]
    );
    let gic = m.gic.as_ref().unwrap();
    assert_eq!(gic.version, GicVersion::V2);
    assert_eq!(gic.distributor, pa(0xff84_1000, 0x1000));
    assert_eq!(gic.cpu_interface, Some(pa(0xff84_2000, 0x2000)));
    assert_eq!(gic.hyp_interface, Some(pa(0xff84_4000, 0x2000)));
    assert_eq!(gic.vcpu_interface, Some(pa(0xff84_6000, 0x2000)));
    let mini = m.resolve_alias("serial0").unwrap();
    assert_eq!(
        (mini.kind, mini.base, mini.size),
        (UartModel::Bcm2835Aux, PhysAddr(0xfe21_5040), 0x40)
    );
    assert_eq!(mini.irq.map(|i| i.intid), Some(32 + 93));
    assert_eq!(mini.clock_hz, None); // the aux block is not a fixed clock
    let pl011 = m.resolve_alias("serial1").unwrap();
    assert_eq!(
        (pl011.kind, pl011.base, pl011.clock_hz),
        (UartModel::Pl011, PhysAddr(0xfe20_1000), Some(54_000_000))
    );
    assert_eq!(m.stdout_uart().unwrap().kind, UartModel::Bcm2835Aux);
    assert_eq!(m.cpus.len(), 4);
    assert_eq!(
        m.cpus[3].enable_method,
        Some(EnableMethod::SpinTable {
            release_addr: Some(PhysAddr(0xf0))
        })
    );
    assert_eq!(m.timer.unwrap().virt, ppi(11, 0xf08));
}

// ---- malformed input -------------------------------------------------------

fn small_blob() -> Vec<u8> {
    // The dom0less blob is small enough to mutate exhaustively.
    DOM0LESS.to_vec()
}

#[test]
fn malformed_header_errors() {
    assert_eq!(parse(&[]).unwrap_err(), DtError::Truncated);
    assert_eq!(parse(&[0u8; 64]).unwrap_err(), DtError::BadMagic);
    assert_eq!(parse(&VIRT_V3[..1000]).unwrap_err(), DtError::Truncated);
    let mut b = small_blob();
    b[20..24].copy_from_slice(&16u32.to_be_bytes());
    assert_eq!(parse(&b).unwrap_err(), DtError::BadVersion(16));
    let mut b = small_blob();
    b[8..12].copy_from_slice(&0xffff_fff0u32.to_be_bytes()); // off_dt_struct
    assert_eq!(parse(&b).unwrap_err(), DtError::BadHeader);
}

#[test]
fn truncated_blobs_never_panic() {
    let b = small_blob();
    for len in 0..b.len() {
        let mut t = b[..len].to_vec();
        assert!(parse(&t).is_err(), "len {len}");
        // Same bytes but the header claims the cut length: structure errors.
        if len >= 40 {
            t[4..8].copy_from_slice(&(len as u32).to_be_bytes());
            let _ = parse(&t);
        }
    }
}

#[test]
fn corrupted_blobs_never_panic() {
    corrupt_each_byte(&small_blob(), "/pl011@9000000");
    corrupt_each_byte(RPI4, "/soc/serial@7e201000");
}

fn corrupt_each_byte(b: &[u8], console_path: &str) {
    let hidden = ["/soc/serial@7e215040", "/pl011@9040000"];
    let p = GuestDtbParams {
        console_path,
        ..params(&hidden)
    };
    let mut outcomes = Outcomes::default();
    for i in 0..b.len() {
        // Zero, all-ones, and a token value (FDT_PROP) in every byte.
        for pattern in [0x00u8, 0xff, 0x03] {
            let mut c = b.to_vec();
            c[i] = pattern;
            outcomes.count(&c, &p);
        }
    }
    assert!(
        outcomes.written > 0 && outcomes.refused > 0,
        "{outcomes:?}: both paths must be exercised"
    );
}

/// What corrupted blobs led to; [`Outcomes::count`] checks each.
#[derive(Debug, Default)]
struct Outcomes {
    refused: usize,
    written: usize,
}

impl Outcomes {
    /// Parses `blob`, groups its modules and writes a guest DTB: an error must be
    /// words (no Rust debug output), a guest DTB must read back with `fdt` and with
    /// our own parser, with the VM's CPU count and RAM.
    fn count(&mut self, blob: &[u8], p: &GuestDtbParams<'_>) {
        let words = |e: DtError| {
            let msg = e.to_string();
            assert!(!msg.contains("Some(") && !msg.contains(" {"), "{msg}");
        };
        let m = match parse(blob) {
            Ok(m) => m,
            Err(e) => {
                words(e);
                self.refused += 1;
                return;
            }
        };
        if let Err(e) = guests(&m) {
            words(e);
        }
        match guest_dtb(blob, &m, p) {
            Ok(g) => {
                fdt::Fdt::new(&g).expect("fdt reads the guest DTB");
                let back = parse(&g).expect("the guest DTB parses");
                assert_eq!(back.cpus.len(), p.vcpus);
                assert_eq!(back.memory.as_slice(), &[pa(p.ram.start.0, p.ram.size)]);
                self.written += 1;
            }
            Err(e) => {
                words(e);
                self.refused += 1;
            }
        }
    }
}

#[test]
fn random_corruption_never_panics() {
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    // Random multi-byte corruption on a QEMU blob's structure block.
    let v3 = parse(VIRT_V3).map(|_| VIRT_V3.to_vec()).unwrap();
    let total = u32::from_be_bytes(v3[4..8].try_into().unwrap()) as usize;
    let used = u32::from_be_bytes(v3[12..16].try_into().unwrap()) as usize + 0x1000; // strings and a bit
    let mut outcomes = Outcomes::default();
    for _ in 0..2000 {
        let mut c = v3[..total].to_vec();
        for _ in 0..4 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let at = (rng as usize) % used.min(total);
            c[at] = (rng >> 32) as u8;
        }
        outcomes.count(&c, &params(&[]));
    }
    assert!(
        outcomes.written > 0 && outcomes.refused > 0,
        "{outcomes:?}: both paths must be exercised"
    );
}

#[test]
fn nop_and_bad_nesting_rejected() {
    let b = small_blob();
    let off = u32::from_be_bytes(b[8..12].try_into().unwrap()) as usize;
    // First token after the root's BEGIN_NODE + empty name (8 bytes).
    let mut c = b.clone();
    c[off + 8..off + 12].copy_from_slice(&4u32.to_be_bytes());
    assert!(matches!(parse(&c), Err(DtError::UnsupportedNop { .. })));
    let mut c = b.clone();
    c[off + 8..off + 12].copy_from_slice(&2u32.to_be_bytes()); // END_NODE, then junk
    assert!(matches!(parse(&c), Err(DtError::BadStructure { .. })));
}

// ---- guest DTB -------------------------------------------------------------

fn params<'p>(hidden: &'p [&'p str]) -> GuestDtbParams<'p> {
    GuestDtbParams {
        vcpus: 2,
        ram: Range::new(Ipa(0x4000_0000), 0x2000_0000),
        bootargs: Some("console=ttyAMA0 earlycon"),
        initrd: Some(Range::new(Ipa(0x4800_0000), 0x1234)),
        console_path: "/pl011@9000000",
        hidden_paths: hidden,
        uart: None,
        pmu: false,
    }
}

fn node_names(fdt: &fdt::Fdt<'_>) -> Vec<String> {
    fdt.all_nodes().map(|n| String::from(n.name)).collect()
}

#[test]
fn guest_dtb_from_virt() {
    for (host, gic_name) in [(VIRT_V3, "intc@8000000"), (VIRT_V2, "intc@8000000")] {
        let m = parse(host).unwrap();
        let debug = m.resolve_alias("serial1").unwrap().path.clone();
        let hidden = [debug.as_str()];
        let dtb = guest_dtb(host, &m, &params(&hidden)).unwrap();

        // It parses with our own parser too.
        let g = parse(&dtb).unwrap();
        assert_eq!(g.cpus.iter().map(|c| c.mpidr).collect::<Vec<_>>(), [0, 1]);
        assert!(g
            .cpus
            .iter()
            .all(|c| c.enable_method == Some(EnableMethod::Psci)));
        assert_eq!(g.memory.as_slice(), &[pa(0x4000_0000, 0x2000_0000)]);
        assert_eq!(g.psci.unwrap().method, PsciMethod::Hvc);
        assert_eq!(g.psci.unwrap().version, (1, 0));
        assert_eq!(g.bootargs, Some("console=ttyAMA0 earlycon"));
        assert!(g.modules.is_empty() && g.domains.is_empty() && g.reserved.is_empty());
        assert_eq!(g.uarts.len(), 1);
        let console = g.resolve_alias("serial0").unwrap();
        assert_eq!(
            (console.base, console.clock_hz),
            (PhysAddr(0x900_0000), Some(24_000_000))
        );
        assert!(g.resolve_alias("serial1").is_none());
        assert_eq!(
            g.gic.as_ref().map(|x| x.version),
            m.gic.as_ref().map(|x| x.version)
        );
        assert_eq!(
            g.gic.as_ref().unwrap().phandle,
            m.gic.as_ref().unwrap().phandle
        );
        assert_eq!(g.timer, m.timer);
        assert_eq!(g.model, m.model);

        // And with `fdt` directly.
        let f = fdt::Fdt::new(&dtb).unwrap();
        let chosen = f.find_node("/chosen").unwrap();
        let start = chosen.property("linux,initrd-start").unwrap().value;
        let end = chosen.property("linux,initrd-end").unwrap().value;
        assert_eq!(start, 0x4800_0000u64.to_be_bytes());
        assert_eq!(end, 0x4800_1234u64.to_be_bytes());
        assert_eq!(
            chosen.property("stdout-path").unwrap().as_str(),
            Some("/pl011@9000000")
        );
        let aliases: Vec<_> = f.aliases().unwrap().all().collect();
        assert_eq!(aliases, [("serial0", "/pl011@9000000")]);
        let names = node_names(&f);
        for gone in [
            "pl011@9040000",
            "module@0x50000000",
            "module@0x58000000",
            "cpu-map",
            "pcie@10000000",
            "fw-cfg@9020000",
            "platform-bus@c000000",
            "pl061@9030000",
            "pl031@9010000",
            "flash@0",
            "its@8080000",
            "v2m@8020000",
            "gpio-keys",
            "virtio_mmio@a000000",
        ] {
            assert!(!names.iter().any(|n| n == gone), "{gone} leaked");
        }
        for kept in [
            "cpus",
            "cpu@0",
            "cpu@1",
            "memory@40000000",
            "chosen",
            "aliases",
            "psci",
            "timer",
            "apb-pclk",
            "pl011@9000000",
            gic_name,
        ] {
            assert!(names.iter().any(|n| n == kept), "{kept} missing");
        }
        assert!(chosen.property("kaslr-seed").is_none());
        let psci = f.find_node("/psci").unwrap();
        assert!(psci.property("cpu_on").is_none());
    }
}

/// Issue 13: the host's PMU node (QEMU `virt`: `/pmu`, `arm,armv8-pmuv3`, PPI 7 =
/// INTID 23) reaches a VM given a PMU, and only such a VM.
#[test]
fn guest_dtb_has_the_pmu_node_only_for_a_vm_with_a_pmu() {
    let m = parse(VIRT_V3).unwrap();
    let host = fdt::Fdt::new(VIRT_V3).unwrap();
    let Some(host_pmu) = host.find_compatible(&["arm,armv8-pmuv3"]) else {
        panic!("the QEMU virt fixture has no PMU node");
    };
    assert_eq!(m.pmu_irq.map(|i| i.intid), Some(23));
    for pmu in [false, true] {
        let p = GuestDtbParams { pmu, ..params(&[]) };
        let dtb = guest_dtb(VIRT_V3, &m, &p).unwrap();
        let f = fdt::Fdt::new(&dtb).unwrap();
        let node = f.find_compatible(&["arm,armv8-pmuv3"]);
        assert_eq!(node.is_some(), pmu, "pmu = {pmu}");
        if let Some(n) = node {
            assert_eq!(
                n.property("interrupts").map(|p| p.value),
                host_pmu.property("interrupts").map(|p| p.value)
            );
            assert_eq!(parse(&dtb).unwrap().pmu_irq.map(|i| i.intid), Some(23));
        }
    }
}

#[test]
fn guest_dtb_cpu_count_and_no_initrd() {
    let m = parse(VIRT_V3).unwrap();
    let p = GuestDtbParams {
        vcpus: 4,
        initrd: None,
        bootargs: None,
        ..params(&[])
    };
    let dtb = guest_dtb(VIRT_V3, &m, &p).unwrap();
    let g = parse(&dtb).unwrap();
    assert_eq!(g.cpus.len(), 4);
    assert_eq!(g.bootargs, None);
    let f = fdt::Fdt::new(&dtb).unwrap();
    assert!(f
        .find_node("/chosen")
        .unwrap()
        .property("linux,initrd-start")
        .is_none());
    // Even with nothing hidden only the console UART stays: the others fall to the catch-all.
    assert_eq!(g.uarts.len(), 1);
}

#[test]
fn guest_dtb_rejects_bad_params() {
    let m = parse(VIRT_V3).unwrap();
    let bad = [
        GuestDtbParams {
            vcpus: 0,
            ..params(&[])
        },
        GuestDtbParams {
            console_path: "/nope@1",
            ..params(&[])
        },
        GuestDtbParams {
            initrd: Some(Range::new(Ipa(0x1000), 0x10)),
            ..params(&[])
        },
        GuestDtbParams {
            ram: Range::new(Ipa(0x4000_0000), 0),
            ..params(&[])
        },
    ];
    for p in bad {
        assert!(guest_dtb(VIRT_V3, &m, &p).is_err(), "{p:?}");
    }
}

#[test]
fn guest_dtb_keeps_bus_on_rpi4() {
    let m = parse(RPI4).unwrap();
    let p = GuestDtbParams {
        console_path: "/soc/serial@7e201000",
        hidden_paths: &["/soc/serial@7e215040"],
        ..params(&[])
    };
    let dtb = guest_dtb(RPI4, &m, &p).unwrap();
    let g = parse(&dtb).unwrap();
    assert_eq!(g.uarts.len(), 1);
    assert_eq!(g.uarts[0].base, PhysAddr(0xfe20_1000)); // /soc ranges kept
    assert_eq!(g.uarts[0].clock_hz, Some(54_000_000)); // clk-osc under /clocks kept
    assert_eq!(g.gic.as_ref().unwrap().distributor, pa(0xff84_1000, 0x1000));
    let f = fdt::Fdt::new(&dtb).unwrap();
    let names = node_names(&f);
    assert!(!names
        .iter()
        .any(|n| n == "aux@7e215000" || n == "serial@7e215040"));
    assert!(f
        .find_node("/soc/serial@7e201000")
        .unwrap()
        .property("pinctrl-0")
        .is_none());
}

/// Writes a guest DTB under target/ and has `dtc` decompile it: a second, independent
/// reader of what `vm-fdt` wrote. Without `dtc` the test fails and says what to
/// install (`cargo xtask setup` installs it).
#[test]
fn guest_dtb_accepted_by_dtc() {
    let m = parse(VIRT_V3).unwrap();
    let hidden = ["/pl011@9040000"];
    let dtb = guest_dtb(VIRT_V3, &m, &params(&hidden)).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dt-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("guest-virt-gicv3.dtb");
    std::fs::write(&path, &dtb).unwrap();
    let out = std::process::Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "dtc could not be run ({e}): install it with `apt-get install \
                 device-tree-compiler` (or run `cargo xtask setup`)"
            )
        });
    let dts = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dtc failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dts.contains("method = \"hvc\""), "{dts}");
    assert!(!dts.contains("9040000"), "{dts}");
    std::fs::write(dir.join("guest-virt-gicv3.dts"), dts.as_bytes()).unwrap();
}

#[test]
fn machine_info_fits_a_boot_stack() {
    // Parsing allocates nothing; the result lives on the stack or in a static.
    assert!(
        core::mem::size_of::<MachineInfo<'_>>() < 8192,
        "{}",
        core::mem::size_of::<MachineInfo<'_>>()
    );
}

#[test]
fn keep_rules_are_documented_and_end_with_a_catch_all() {
    assert!(KEEP_RULES.iter().all(|r| !r.why.is_empty()));
    assert_eq!(KEEP_RULES.last().unwrap().matches, Match::Any);
    assert_eq!(KEEP_RULES[0].matches, Match::Hidden);
}
