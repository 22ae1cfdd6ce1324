//! Host tests: option parsing, the assignment rules on QEMU `virt`'s real
//! device trees and on a hand-written machine, dom0less partial trees, and
//! the guest device trees that result.

use super::*;
use crate::addr::{Ipa, PhysAddr, Range};
use crate::dt::{self, DtError};
use alloc::string::String;
use alloc::vec::Vec;

const VIRT_V3: &[u8] = include_bytes!("../../tests/fixtures/virt-gicv3.dtb");
const VIRT_V2: &[u8] = include_bytes!("../../tests/fixtures/virt-gicv2.dtb");
const MACHINE: &[u8] = include_bytes!("../../tests/fixtures/passthrough.dtb");
const PARTIAL: &[u8] = include_bytes!("../../tests/fixtures/passthrough-partial.dtb");

const LIMITS: Limits = Limits {
    intid_end: 160,
    ipa_bits: 40,
};

/// A resolved plan for `host` with `vms` VMs and `cmdline`'s options, plus
/// partial trees per VM.
fn plan_with(host: &[u8], vms: usize, cmdline: &str, partials: &[&[u8]]) -> Plan {
    let info = dt::parse(host).unwrap();
    let tree = HostTree::new(host, &info).unwrap();
    let (requests, errors) = parse_cmdline(cmdline);
    assert!(errors.is_empty(), "{errors:?}");
    let ram: Vec<Range<PhysAddr>> = info.memory.iter().copied().collect();
    let m = Machine {
        tree: &tree,
        ram: &ram,
        keep: Keep {
            debug_uart: Some("/pl011@9040000"),
            console_uart: Some("/pl011@9000000"),
            gic: info.gic.as_ref().map(|g| g.path.as_str()),
        },
        limits: LIMITS,
        dma_trusted: cmdline.contains("hv.passthrough_dma=trusted"),
    };
    let partials: Vec<Vec<PartialDevice<'_>>> = (0..vms)
        .map(|vm| {
            partials
                .get(vm)
                .filter(|p| !p.is_empty())
                .map_or_else(Vec::new, |p| partial_devices(p).unwrap())
        })
        .collect();
    resolve(&m, vms, &requests, &partials)
}

fn plan(host: &[u8], vms: usize, cmdline: &str) -> Plan {
    plan_with(host, vms, cmdline, &[])
}

fn paths(v: &VmDevices) -> Vec<&str> {
    v.devices.iter().map(|d| d.path.as_str()).collect()
}

fn refusals(p: &Plan) -> Vec<&str> {
    p.messages
        .iter()
        .filter(|m| m.refusal)
        .map(|m| m.text.as_str())
        .collect()
}

fn map(pa: u64, size: u64) -> Mapping {
    Mapping {
        pa: PhysAddr(pa),
        ipa: Ipa(pa),
        size,
    }
}

// ---- options ---------------------------------------------------------------

#[test]
fn command_line_options_are_parsed_in_order() {
    let (r, e) = parse_cmdline(
        "console=x hv.slice_us=100 hv.passthrough=vm0:/virtio_mmio@a003e00 \
         hv.passthrough=vm1:all hv.passthrough=vm12:serial2 hv.passthrough_x=1",
    );
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(
        r,
        [
            Request {
                vm: 0,
                target: Target::Node("/virtio_mmio@a003e00")
            },
            Request {
                vm: 1,
                target: Target::All
            },
            Request {
                vm: 12,
                target: Target::Node("serial2")
            },
        ]
    );
}

#[test]
fn malformed_options_are_errors_that_quote_them() {
    for bad in [
        "hv.passthrough",
        "hv.passthrough=",
        "hv.passthrough=vm0",
        "hv.passthrough=vm0:",
        "hv.passthrough=vmx:all",
        "hv.passthrough=0:all",
        "hv.passthrough=vm0/all",
        "hv.passthrough=vm0:a%b",
        "hv.passthrough=vm99999:all",
    ] {
        let (r, e) = parse_cmdline(bad);
        assert!(r.is_empty(), "{bad}: {r:?}");
        assert_eq!(e.len(), 1, "{bad}");
        assert_eq!(e[0].text, bad);
        let text = alloc::format!("{}", e[0]);
        assert!(text.contains(bad) && text.contains("vmN:PATH"), "{text}");
    }
    // The good ones around a bad one still count.
    let (r, e) = parse_cmdline("hv.passthrough=vm0:all hv.passthrough=oops");
    assert_eq!((r.len(), e.len()), (1, 1));
}

#[test]
fn config_values_list_paths_or_say_all() {
    assert_eq!(
        parse_config(2, "/a@1, /b@2,serial0").unwrap(),
        [
            Request {
                vm: 2,
                target: Target::Node("/a@1")
            },
            Request {
                vm: 2,
                target: Target::Node("/b@2")
            },
            Request {
                vm: 2,
                target: Target::Node("serial0")
            },
        ]
    );
    assert_eq!(
        parse_config(0, " all ").unwrap(),
        [Request {
            vm: 0,
            target: Target::All
        }]
    );
    assert!(parse_config(0, "").unwrap().is_empty());
    assert!(parse_config(0, "all,/a").is_err());
    assert!(parse_config(0, "/a,,/b").is_err());
    let e = parse_config(0, "/a b").unwrap_err();
    assert!(alloc::format!("{e}").contains("passthrough=PATH"));
}

// ---- the host tree ---------------------------------------------------------

#[test]
fn host_tree_reads_virt_devices() {
    let info = dt::parse(VIRT_V3).unwrap();
    let t = HostTree::new(VIRT_V3, &info).unwrap();
    let v = &t.nodes[t.find("/virtio_mmio@a003e00").unwrap()];
    assert_eq!(
        v.reg.as_deref().unwrap(),
        [tree::Reg {
            addr: 0xa003e00,
            size: 0x200
        }]
    );
    let irqs = v.irqs.as_ref().unwrap();
    assert_eq!(irqs.len(), 1);
    assert_eq!(irqs[0].intid, 32 + 47);
    assert!(!irqs[0].is_level(), "virtio-mmio is edge-triggered on virt");

    let pcie = &t.nodes[t.find("/pcie@10000000").unwrap()];
    assert_eq!(
        pcie.reg.as_deref().unwrap(),
        [tree::Reg {
            addr: 0x40_1000_0000,
            size: 0x1000_0000
        }]
    );
    assert_eq!(
        pcie.windows,
        [
            tree::Reg {
                addr: 0x3eff_0000,
                size: 0x1_0000
            },
            tree::Reg {
                addr: 0x1000_0000,
                size: 0x2eff_0000
            },
            tree::Reg {
                addr: 0x80_0000_0000,
                size: 0x80_0000_0000
            },
        ]
    );
    let mut spis: Vec<u32> = pcie
        .irqs
        .as_ref()
        .unwrap()
        .iter()
        .map(|i| i.intid)
        .collect();
    spis.sort();
    assert_eq!(spis, [35, 36, 37, 38], "INTx through interrupt-map");

    let keys = &t.nodes[t.find("/gpio-keys").unwrap()];
    assert!(!keys.has_reg && !keys.has_irqs && !keys.provider);
    let poweroff = &t.nodes[t.find("/gpio-keys/poweroff").unwrap()];
    let pl061 = t.find("/pl061@9030000").unwrap();
    assert_eq!(poweroff.refs, [("gpios", t.nodes[pl061].phandle.unwrap())]);
    assert_eq!(t.lookup("serial1"), t.find("/pl011@9040000"));
    assert_eq!(t.lookup("/nonexistent"), None);
    assert_eq!(t.lookup("nonexistent"), None);
}

// ---- the rules on QEMU virt ------------------------------------------------

#[test]
fn all_takes_every_device_the_hypervisor_does_not_keep() {
    for host in [VIRT_V3, VIRT_V2] {
        let p = plan(host, 1, "hv.passthrough=vm0:all");
        assert!(refusals(&p).is_empty(), "{:?}", p.messages);
        let v = &p.vms[0];
        assert!(!v.refused);
        let got = paths(v);
        for want in [
            "/virtio_mmio@a000000",
            "/virtio_mmio@a003e00",
            "/pl031@9010000",
            "/pl061@9030000",
            "/fw-cfg@9020000",
            "/flash@0",
            "/pcie@10000000",
            "/gpio-keys",
        ] {
            assert!(got.contains(&want), "{want} missing from {got:?}");
        }
        assert_eq!(
            got.iter()
                .filter(|p| p.starts_with("/virtio_mmio@"))
                .count(),
            32
        );
        for kept in [
            "/pl011@9000000",
            "/pl011@9040000",
            "/intc@8000000",
            "/timer",
            "/pmu",
            "/psci",
            "/apb-pclk",
            "/platform-bus@c000000",
            "/memory@40000000",
        ] {
            assert!(!got.contains(&kept), "{kept} must not be given: {got:?}");
        }
        // The 32 transports (0x200 each) are one 16 KiB mapping.
        assert!(v.maps.contains(&map(0xa00_0000, 0x4000)), "{:?}", v.maps);
        assert!(v.maps.contains(&map(0x901_0000, 0x1000)));
        assert!(v.maps.contains(&map(0x80_0000_0000, 0x80_0000_0000)));
        let spis: Vec<u32> = v.spis().map(|s| s.intid).collect();
        for want in [34, 39, 35, 38, 48, 79] {
            assert!(spis.contains(&want), "SPI {want} missing: {spis:?}");
        }
        assert!(!spis.contains(&33) && !spis.contains(&40), "UART SPIs kept");
        assert!(v.needs_direct_map(), "virtio masters the bus");
        let rtc = v
            .devices
            .iter()
            .find(|d| d.path == "/pl031@9010000")
            .unwrap();
        assert_eq!(
            rtc.spis,
            [Spi {
                intid: 34,
                level: true
            }]
        );
        assert!(!rtc.dma);
    }
}

#[test]
fn a_single_node_by_path_or_alias() {
    let p = plan(VIRT_V3, 2, "hv.passthrough=vm1:/pl031@9010000");
    assert!(p.messages.is_empty(), "{:?}", p.messages);
    assert!(p.vms[0].devices.is_empty() && p.vms[0].maps.is_empty());
    assert_eq!(paths(&p.vms[1]), ["/pl031@9010000"]);
    assert_eq!(p.vms[1].maps, [map(0x901_0000, 0x1000)]);
    assert!(!p.vms[1].needs_direct_map(), "a PL031 does no DMA");

    let p = plan(MACHINE, 1, "hv.passthrough=vm0:ethernet0");
    assert!(refusals(&p).is_empty(), "{:?}", p.messages);
    let eth = &p.vms[0].devices[0];
    assert_eq!(eth.path, "/soc/ethernet@2000000");
    // Translated through /soc's ranges, with the sub-block's page; the PHY's
    // MDIO address is not MMIO.
    assert_eq!(p.vms[0].maps, [map(0x1200_0000, 0x11000)]);
    let spis: Vec<(u32, bool)> = eth.spis.iter().map(|s| (s.intid, s.level)).collect();
    assert_eq!(spis, [(72, true), (73, false), (74, true)]);
    assert!(eth.dma);
}

#[test]
fn a_sub_page_device_maps_its_page_and_says_who_else_is_there() {
    let p = plan(VIRT_V3, 1, "hv.passthrough=vm0:/virtio_mmio@a003e00");
    assert!(refusals(&p).is_empty());
    assert_eq!(p.vms[0].maps, [map(0xa00_3000, 0x1000)]);
    let note = &p.messages[0].text;
    assert!(
        note.contains("/virtio_mmio@a003e00 is mapped by whole pages")
            && note.contains("/virtio_mmio@a003000")
            && note.contains("given to no VM"),
        "{note}"
    );
}

#[test]
fn two_vms_each_with_their_own_device() {
    let p = plan(
        VIRT_V3,
        2,
        "hv.passthrough=vm0:/virtio_mmio@a003e00 hv.passthrough=vm1:/virtio_mmio@a002e00",
    );
    assert!(refusals(&p).is_empty(), "{:?}", p.messages);
    assert_eq!(paths(&p.vms[0]), ["/virtio_mmio@a003e00"]);
    assert_eq!(paths(&p.vms[1]), ["/virtio_mmio@a002e00"]);
    assert_eq!(p.vms[1].maps, [map(0xa00_2000, 0x1000)]);
    assert_eq!(p.vms[0].spis().next().unwrap().intid, 79);
    assert_eq!(p.vms[1].spis().next().unwrap().intid, 71);
}

#[test]
fn conflicts_refuse_every_vm_involved_and_name_the_node() {
    // One node, two VMs; vm2 is not involved and keeps its device.
    let p = plan(
        VIRT_V3,
        3,
        "hv.passthrough=vm0:/pl031@9010000 hv.passthrough=vm1:/pl031@9010000 \
         hv.passthrough=vm2:/pl061@9030000",
    );
    assert!(p.vms[0].refused && p.vms[1].refused && !p.vms[2].refused);
    assert!(p.vms[0].devices.is_empty() && p.vms[1].devices.is_empty());
    assert_eq!(paths(&p.vms[2]), ["/pl061@9030000"]);
    let r = refusals(&p);
    assert!(r
        .iter()
        .any(|t| t.contains("/pl031@9010000") && t.contains("both vm0 and vm1")));

    // Two nodes in one page, two VMs.
    let p = plan(
        VIRT_V3,
        2,
        "hv.passthrough=vm0:/virtio_mmio@a003e00 hv.passthrough=vm1:/virtio_mmio@a003c00",
    );
    assert!(p.vms[0].refused && p.vms[1].refused, "{:?}", p.messages);
    assert!(refusals(&p)
        .iter()
        .any(|t| t.contains("shares a page") && t.contains("/virtio_mmio@a003e00")));

    // The same node twice for one VM is fine.
    let p = plan(
        VIRT_V3,
        1,
        "hv.passthrough=vm0:/pl031@9010000 hv.passthrough=vm0:/pl031@9010000",
    );
    assert!(p.messages.is_empty() && p.vms[0].devices.len() == 1);
}

#[test]
fn bad_paths_and_the_hypervisors_own_nodes_are_refused() {
    for (opt, words) in [
        ("vm0:/nonexistent@0", "no such node"),
        ("vm0:serial9", "no such alias"),
        ("vm0:serial1", "the hypervisor's debug console"),
        ("vm0:/pl011@9000000", "the guest console UART"),
        ("vm0:/intc@8000000", "the interrupt controller"),
        ("vm0:/intc@8000000/its@8080000", "the interrupt controller"),
        ("vm0:/timer", "the architected timer"),
        ("vm0:/psci", "PSCI"),
        ("vm0:/memory@40000000", "RAM"),
        ("vm0:/cpus", "not a device"),
        ("vm0:/gpio-keys", "no reg"),
    ] {
        let p = plan(VIRT_V3, 2, &alloc::format!("hv.passthrough={opt}"));
        assert!(p.vms[0].refused, "{opt}");
        assert!(!p.vms[1].refused, "{opt}: vm1 is not involved");
        let r = refusals(&p);
        assert_eq!(r.len(), 1, "{opt}: {r:?}");
        assert!(
            r[0].starts_with("vm0: ") && r[0].contains(words),
            "{opt}: {}",
            r[0]
        );
    }
    let p = plan(VIRT_V3, 1, "hv.passthrough=vm3:/pl031@9010000");
    assert!(!p.vms[0].refused);
    assert!(refusals(&p)[0].contains("there is no vm3"));
}

#[test]
fn all_yields_to_explicit_requests_and_only_one_vm_gets_it() {
    let p = plan(
        VIRT_V3,
        3,
        "hv.passthrough=vm0:all hv.passthrough=vm1:/virtio_mmio@a002e00 hv.passthrough=vm2:all",
    );
    assert!(p.vms[2].refused);
    assert!(refusals(&p)[0].contains("vm0 already gets all"));
    assert_eq!(paths(&p.vms[1]), ["/virtio_mmio@a002e00"]);
    let all = paths(&p.vms[0]);
    assert!(!all.contains(&"/virtio_mmio@a002e00"));
    // Its page-mates cannot go to vm0: they are left out, with a note each.
    assert!(!all.contains(&"/virtio_mmio@a002c00"));
    assert!(all.contains(&"/virtio_mmio@a003e00"));
    assert!(p.messages.iter().any(|m| !m.refusal
        && m.text.contains("/virtio_mmio@a002c00 left out")
        && m.text.contains("vm1")));
    for m in &p.vms[0].maps {
        assert!(!(m.pa.0..m.pa.0 + m.size).contains(&0xa00_2000), "{m:?}");
    }
}

// ---- the rules on a hand-written machine ------------------------------------

#[test]
fn devices_that_cannot_be_assigned_say_why() {
    for (node, words) in [
        ("/watchdog@9040800", "shares a page with /pl011@9040000"),
        ("/bogus@40001000", "is RAM"),
        ("/irq-only", "no reg"),
        ("/ppi-user@9100000", "PPI"),
        ("/behind-l2@9300000", "not the GIC"),
        ("/disabled@9400000", "disabled"),
    ] {
        let p = plan(MACHINE, 1, &alloc::format!("hv.passthrough=vm0:{node}"));
        let r = refusals(&p);
        assert!(p.vms[0].refused, "{node}");
        assert!(r[0].contains(node) && r[0].contains(words), "{node}: {r:?}");
    }
}

#[test]
fn all_leaves_out_what_it_cannot_take_without_refusing() {
    let p = plan(MACHINE, 1, "hv.passthrough=vm0:all");
    assert!(refusals(&p).is_empty(), "{:?}", p.messages);
    let got = paths(&p.vms[0]);
    for want in [
        "/rtc@9010000",
        "/soc/ethernet@2000000",
        "/soc/gpio@2011000",
        "/soc/timer@3000000",
        "/soc/timer@3000100",
        "/soc/leds",
        "/soc/clock-controller@1000000",
        "/interrupt-controller@9200000",
    ] {
        assert!(got.contains(&want), "{want} missing: {got:?}");
    }
    for left in [
        "/watchdog@9040800",
        "/bogus@40001000",
        "/ppi-user@9100000",
        "/behind-l2@9300000",
        "/disabled@9400000",
        "/irq-only",
        "/regulator-eth",
    ] {
        assert!(!got.contains(&left), "{left}: {got:?}");
    }
    let notes: Vec<&str> = p.messages.iter().map(|m| m.text.as_str()).collect();
    for noted in ["/watchdog@9040800", "/bogus@40001000", "/behind-l2@9300000"] {
        assert!(
            notes.iter().any(|n| n.contains(noted)),
            "{noted}: {notes:?}"
        );
    }
}

#[test]
fn dom0less_partial_trees_assign_their_devices() {
    let devices = partial_devices(PARTIAL).unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0].host_path, Some("/rtc@9010000"));
    assert_eq!(devices[0].regs, [(0x901_0000, 0x1000, 0x901_0000)]);
    assert_eq!(devices[0].irqs[0].intid, 34);
    assert_eq!(devices[1].host_path, None);
    assert_eq!(devices[1].regs, [(0x1300_0000, 0x100, 0x2000_0000)]);

    let p = plan_with(MACHINE, 2, "", &[&[], PARTIAL]);
    assert!(refusals(&p).is_empty(), "{:?}", p.messages);
    let v = &p.vms[1];
    assert_eq!(paths(v), ["/rtc@9010000", "/passthrough/timer@20000000"]);
    assert!(v.devices.iter().all(|d| d.from_partial));
    assert!(v.maps.contains(&map(0x901_0000, 0x1000)));
    assert!(v.maps.contains(&Mapping {
        pa: PhysAddr(0x1300_0000),
        ipa: Ipa(0x2000_0000),
        size: 0x1000
    }));
    // Its xen,path is claimed: nobody else gets the RTC.
    let p = plan_with(
        MACHINE,
        2,
        "hv.passthrough=vm0:/rtc@9010000",
        &[&[], PARTIAL],
    );
    assert!(p.vms[0].refused && p.vms[1].refused);

    assert_eq!(
        partial_devices(VIRT_V3).unwrap_err(),
        PartialError::NoPassthrough
    );
    assert!(matches!(
        partial_devices(&PARTIAL[..64]),
        Err(PartialError::Blob(_))
    ));
}

#[test]
fn interrupts_beyond_the_vgic_or_shared_between_vms_are_refused() {
    let info = dt::parse(VIRT_V3).unwrap();
    let tree = HostTree::new(VIRT_V3, &info).unwrap();
    let ram: Vec<Range<PhysAddr>> = info.memory.iter().copied().collect();
    let m = Machine {
        tree: &tree,
        ram: &ram,
        keep: Keep::default(),
        limits: Limits {
            intid_end: 64,
            ipa_bits: 40,
        },
        dma_trusted: false,
    };
    let (r, _) = parse_cmdline("hv.passthrough=vm0:/virtio_mmio@a003e00");
    let p = resolve(&m, 1, &r, &[]);
    assert!(refusals(&p)[0].contains("beyond the virtual GIC"));
}

// ---- guest device trees ---------------------------------------------------

/// The guest tree the boot path builds: the console is the emulated PL011
/// (with its own clock node), as on every board.
fn guest_base(host: &[u8]) -> Vec<u8> {
    let info = dt::parse(host).unwrap();
    let (board, _) = crate::board::select(info.compatible.iter());
    let uart = crate::board::emulated_uart(&crate::board::consoles(board, &info));
    assert_eq!(uart.map(|u| u.ipa), Some(0x900_0000));
    let hidden = ["/pl011@9040000"];
    dt::guest_dtb(
        host,
        &info,
        &dt::GuestDtbParams {
            vcpus: 2,
            ram: Range::new(Ipa(0x4000_0000), 0x1000_0000),
            bootargs: Some("console=ttyAMA0"),
            initrd: None,
            console_path: "/pl011@9000000",
            hidden_paths: &hidden,
            uart,
            pmu: false,
        },
    )
    .unwrap()
}

fn guest_with(
    host: &[u8],
    v: &VmDevices,
    partial: Option<&[u8]>,
    memory: &[Range<Ipa>],
) -> (Vec<u8>, Vec<String>) {
    let info = dt::parse(host).unwrap();
    let tree = HostTree::new(host, &info).unwrap();
    add_devices(
        &guest_base(host),
        host,
        &tree,
        &Additions {
            devices: v,
            partial,
            memory,
        },
    )
    .unwrap()
}

fn node_paths(dtb: &[u8]) -> Vec<String> {
    let fdt = fdt::Fdt::new(dtb).unwrap();
    let mut out = Vec::new();
    dt::props::walk(&fdt, &mut |v| {
        out.push(String::from(v.path));
        Ok(true)
    })
    .unwrap();
    out
}

fn prop_of(dtb: &[u8], path: &str, name: &str) -> Option<Vec<u8>> {
    let fdt = fdt::Fdt::new(dtb).unwrap();
    let n = dt::props::find_path(&fdt, path)?;
    let v = n.properties().find(|p| p.name == name)?.value.to_vec();
    Some(v)
}

#[test]
fn the_guest_tree_for_all_has_the_devices_and_nothing_kept() {
    let p = plan(VIRT_V3, 1, "hv.passthrough=vm0:all");
    let (dtb, notes) = guest_with(VIRT_V3, &p.vms[0], None, &[]);
    assert!(notes.is_empty(), "{notes:?}");
    let nodes = node_paths(&dtb);
    for want in [
        "/virtio_mmio@a003e00",
        "/pl031@9010000",
        "/pl061@9030000",
        "/gpio-keys/poweroff",
        "/pcie@10000000",
        "/flash@0",
        "/fw-cfg@9020000",
        "/apb-pclk",
        "/pl011@9000000",
    ] {
        assert!(nodes.iter().any(|n| n == want), "{want} missing: {nodes:?}");
    }
    for gone in ["/pl011@9040000", "/intc@8000000/its@8080000", "/pmu"] {
        assert!(!nodes.iter().any(|n| n == gone), "{gone} leaked");
    }
    assert_eq!(nodes.iter().filter(|n| *n == "/apb-pclk").count(), 1);
    // It is the host's clock the devices name, beside the emulated console's own.
    assert_eq!(
        prop_of(&dtb, "/apb-pclk", "phandle"),
        prop_of(VIRT_V3, "/apb-pclk", "phandle")
    );
    let clock = alloc::format!("/{}", dt::EMULATED_UART_CLOCK);
    assert!(nodes.contains(&clock), "{clock} missing: {nodes:?}");
    // Linux registers clocks by output name: the two must differ.
    assert_ne!(
        prop_of(&dtb, "/apb-pclk", "clock-output-names"),
        prop_of(&dtb, &clock, "clock-output-names")
    );
    // MSIs would go to the ITS, which the guest does not have.
    assert!(prop_of(&dtb, "/pcie@10000000", "msi-map").is_none());
    assert!(prop_of(&dtb, "/pcie@10000000", "interrupt-map").is_some());
    // Properties are copied byte for byte.
    assert_eq!(
        prop_of(&dtb, "/virtio_mmio@a003e00", "interrupts").unwrap(),
        prop_of(VIRT_V3, "/virtio_mmio@a003e00", "interrupts").unwrap()
    );
    // Our own parser reads it, with the GIC and the console as before.
    let g = dt::parse(&dtb).unwrap();
    assert!(g.gic.is_some() && g.resolve_alias("serial0").is_some());
}

#[test]
fn the_guest_tree_for_one_node_has_only_that_node() {
    let p = plan(VIRT_V3, 2, "hv.passthrough=vm1:/virtio_mmio@a002e00");
    let base = node_paths(&guest_base(VIRT_V3));
    let (dtb, _) = guest_with(VIRT_V3, &p.vms[1], None, &[]);
    let mut added: Vec<String> = node_paths(&dtb)
        .into_iter()
        .filter(|n| !base.contains(n))
        .collect();
    added.sort();
    assert_eq!(added, ["/virtio_mmio@a002e00"]);
    // vm0's tree is untouched.
    let (dtb0, _) = guest_with(VIRT_V3, &p.vms[0], None, &[]);
    assert_eq!(dtb0, guest_base(VIRT_V3));
}

#[test]
fn the_guest_tree_closes_over_phandles_copying_or_stubbing_providers() {
    let p = plan(MACHINE, 1, "hv.passthrough=vm0:/soc/ethernet@2000000");
    let (dtb, notes) = guest_with(MACHINE, &p.vms[0], None, &[]);
    let nodes = node_paths(&dtb);
    for want in [
        "/soc",
        "/soc/ethernet@2000000",
        "/soc/ethernet@2000000/mdio@2010000/phy@1",
        "/regulator-eth",
        "/soc/clock-controller@1000000",
    ] {
        assert!(nodes.iter().any(|n| n == want), "{want} missing: {nodes:?}");
    }
    assert!(!nodes.iter().any(|n| n == "/soc/gpio@2011000"));
    // The bus shell keeps its translation.
    assert_eq!(
        prop_of(&dtb, "/soc", "ranges"),
        prop_of(MACHINE, "/soc", "ranges")
    );
    // The clock controller is somebody's device: a disabled stub with its
    // phandle and cell counts, and a note saying so.
    let cru = "/soc/clock-controller@1000000";
    assert_eq!(prop_of(&dtb, cru, "status").unwrap(), b"disabled\0");
    assert_eq!(
        prop_of(&dtb, cru, "phandle"),
        prop_of(MACHINE, cru, "phandle")
    );
    assert!(prop_of(&dtb, cru, "#clock-cells").is_some());
    assert!(prop_of(&dtb, cru, "reg").is_none());
    assert!(notes
        .iter()
        .any(|n| n.contains(cru) && n.contains("stubbed")));
    // The fixed regulator is copied whole; the SMMU-ish reference is dropped.
    assert_eq!(
        prop_of(&dtb, "/regulator-eth", "regulator-name").unwrap(),
        b"vdd-eth\0"
    );
    assert!(prop_of(&dtb, "/soc/ethernet@2000000", "iommus").is_none());
    let g = dt::parse(&dtb).unwrap();
    assert!(g.gic.is_some());

    // A consumer brings its GPIO controller only when the VM has it: `all`.
    let p = plan(MACHINE, 1, "hv.passthrough=vm0:all");
    let (dtb, _) = guest_with(MACHINE, &p.vms[0], None, &[]);
    let nodes = node_paths(&dtb);
    assert!(nodes.iter().any(|n| n == "/soc/leds/led0"));
    assert!(nodes.iter().any(|n| n == "/soc/gpio@2011000"));
}

#[test]
fn the_memory_node_lists_every_ram_range() {
    let ranges = [
        Range::new(Ipa(0x4000_0000), 0x20_0000),
        Range::new(Ipa(0x4800_0000), 0x800_0000),
    ];
    let (dtb, _) = guest_with(VIRT_V3, &VmDevices::default(), None, &ranges);
    let g = dt::parse(&dtb).unwrap();
    assert_eq!(
        g.memory.as_slice(),
        [
            Range::new(PhysAddr(0x4000_0000), 0x20_0000),
            Range::new(PhysAddr(0x4800_0000), 0x800_0000)
        ]
    );
}

#[test]
fn the_guest_tree_gets_a_partial_trees_passthrough_node() {
    let p = plan_with(MACHINE, 1, "", &[PARTIAL]);
    let (dtb, notes) = guest_with(MACHINE, &p.vms[0], Some(PARTIAL), &[]);
    assert!(notes.is_empty(), "{notes:?}");
    let nodes = node_paths(&dtb);
    assert!(nodes.iter().any(|n| n == "/passthrough/rtc@9010000"));
    assert!(nodes.iter().any(|n| n == "/passthrough/timer@20000000"));
    // Not also the host's node.
    assert!(!nodes.iter().any(|n| n == "/rtc@9010000"));
    let rtc = "/passthrough/rtc@9010000";
    assert!(prop_of(&dtb, rtc, "xen,reg").is_none() && prop_of(&dtb, rtc, "xen,path").is_none());
    // interrupt-parent 65000 became the guest's GIC; the clock phandle was
    // renumbered above every phandle of the tree, consistently.
    let gic = prop_of(&dtb, "/", "interrupt-parent").unwrap();
    assert_eq!(prop_of(&dtb, rtc, "interrupt-parent").unwrap(), gic);
    let clk = prop_of(&dtb, "/passthrough/clk24", "phandle").unwrap();
    assert_eq!(prop_of(&dtb, rtc, "clocks").unwrap(), clk);
    assert_ne!(clk, 3u32.to_be_bytes());
    let info = dt::parse(&dtb).unwrap();
    assert!(info.gic.is_some());
}

#[test]
fn broken_inputs_are_errors_not_panics() {
    let info = dt::parse(VIRT_V3).unwrap();
    let tree = HostTree::new(VIRT_V3, &info).unwrap();
    let empty = VmDevices::default();
    let add = Additions {
        devices: &empty,
        partial: None,
        memory: &[],
    };
    assert!(matches!(
        add_devices(&VIRT_V3[..100], VIRT_V3, &tree, &add),
        Err(DtError::Truncated | DtError::BadHeader | DtError::BadStructure { .. })
    ));
    // Every truncation of the partial tree is refused cleanly.
    for n in (0..PARTIAL.len()).step_by(7) {
        let _ = partial_devices(&PARTIAL[..n]);
    }
}

// ---- DMA masters behind an SMMU -------------------------------------------------

const ZCU102: &[u8] = include_bytes!("../../tests/fixtures/zynqmp-zcu102-rev1.0.dtb");

/// The hypervisor does not program SMMUs: a device whose DMA goes through one
/// (ZynqMP's DMA controllers, `iommus` to the MMU-500) is refused by name, so
/// its DMA can never reach the hypervisor or another VM unless the user says
/// the VM is trusted; `all` skips it with a note; a device without `iommus`
/// is unaffected.
#[test]
fn a_dma_master_behind_an_smmu_is_refused_unless_trusted() {
    let dma = "/axi/dma-controller@fd500000";
    let p = plan_with(ZCU102, 1, &format!("hv.passthrough=vm0:{dma}"), &[]);
    let r = refusals(&p);
    assert_eq!(r.len(), 1, "{:?}", p.messages);
    assert!(
        r[0].contains(dma)
            && r[0].contains("the SMMU /axi/iommu@fd800000")
            && r[0].contains("hv.passthrough_dma=trusted"),
        "{}",
        r[0]
    );
    assert!(p.vms[0].refused && p.vms[0].devices.is_empty());

    let p = plan_with(
        ZCU102,
        1,
        &format!("hv.passthrough=vm0:{dma} hv.passthrough_dma=trusted"),
        &[],
    );
    assert!(refusals(&p).is_empty(), "{:?}", p.messages);
    assert_eq!(paths(&p.vms[0]), [dma]);

    let p = plan_with(ZCU102, 1, "hv.passthrough=vm0:all", &[]);
    let given = paths(&p.vms[0]);
    assert!(!given.contains(&dma), "{given:?}");
    assert!(
        p.messages
            .iter()
            .any(|m| !m.refusal && m.text.contains(dma) && m.text.contains("SMMU")),
        "{:?}",
        p.messages
    );
    // The serial ports have no `iommus`: `all` still gives them.
    assert!(
        given.iter().any(|g| g.contains("serial@ff010000")),
        "{given:?}"
    );
}

#[test]
fn the_dma_option_is_trusted_or_confined() {
    use crate::passthrough::dma_option;
    assert_eq!(dma_option("console=ttyAMA0"), Ok(false));
    assert_eq!(dma_option("hv.passthrough_dma=trusted"), Ok(true));
    assert_eq!(
        dma_option("hv.passthrough_dma=trusted hv.passthrough_dma=confined"),
        Ok(false)
    );
    let e = dma_option("hv.passthrough_dma=yes").unwrap_err();
    assert!(
        e.contains("use hv.passthrough_dma=trusted or =confined"),
        "{e}"
    );
}
