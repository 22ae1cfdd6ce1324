//! Register and delivery tests for the virtual GIC model.

use super::dist::reg as d;
use super::redist::reg as r;
use super::*;

fn v3(n: usize) -> Vgic {
    let mpidrs: Vec<u64> = (0..n as u64).collect();
    Vgic::new(Version::V3, &mpidrs, 64)
}

fn v2(n: usize) -> Vgic {
    let mpidrs: Vec<u64> = (0..n as u64).collect();
    Vgic::new(Version::V2, &mpidrs, 64)
}

fn lrs(g: &mut Vgic, vcpu: usize, n: usize) -> (Vec<Lr>, Flush) {
    let mut out = vec![Lr::INVALID; n];
    let f = g.flush(vcpu, &mut out);
    (out, f)
}

#[test]
fn gicd_v3_identification_and_reset() {
    let g = v3(2);
    let typer = g.dist_read(0, d::TYPER, 4);
    assert_eq!(typer & 0x1f, 2, "ITLinesNumber: 96 INTIDs");
    assert_eq!((typer >> 19) & 0x1f, 9, "IDbits");
    assert_ne!(typer & (1 << 25), 0, "No1N");
    assert_eq!(typer & (1 << 17), 0, "no LPIs");
    assert_eq!(g.dist_read(0, d::CTLR, 4), (1 << 4) | (1 << 6), "ARE, DS");
    assert_eq!(g.dist_read(0, d::IIDR, 4), 0x43b);
    assert_eq!((g.dist_read(0, d::PIDR2_V3, 4) >> 4) & 0xf, 3, "ArchRev 3");
    assert_eq!(g.dist_read(0, 0x1234, 4), 0, "reserved RAZ");
    assert_eq!(g.lines(), 96);
    // Reset: group 1 (KVM's choice for v3), disabled, priority 0.
    assert_eq!(g.dist_read(0, d::IGROUPR + 4, 4), 0xffff_ffff);
    assert_eq!(g.dist_read(0, d::ISENABLER + 4, 4), 0);
}

#[test]
fn gicd_v3_private_words_are_raz_wi() {
    let mut g = v3(1);
    g.dist_write(0, d::ISENABLER, 4, 0xffff_ffff);
    assert_eq!(g.dist_read(0, d::ISENABLER, 4), 0);
    assert!(!g.irq(0, 27).unwrap().enabled);
    g.dist_write(0, d::IPRIORITYR, 4, 0xa0a0_a0a0);
    assert_eq!(g.irq(0, 0).unwrap().priority, 0);
}

#[test]
fn gicd_ctlr_keeps_enable_bits_only() {
    let mut g = v3(1);
    g.dist_write(0, d::CTLR, 4, 0xffff_ffff);
    assert_eq!(g.dist_read(0, d::CTLR, 4), 3 | (1 << 4) | (1 << 6));
    let mut g = v2(1);
    g.dist_write(0, d::CTLR, 4, 3);
    assert_eq!(g.dist_read(0, d::CTLR, 4), 1);
}

#[test]
fn enable_pending_active_set_clear() {
    let mut g = v3(1);
    g.dist_write(0, d::ISENABLER + 4, 4, 0b101);
    assert_eq!(g.dist_read(0, d::ISENABLER + 4, 4), 0b101);
    assert_eq!(g.dist_read(0, d::ICENABLER + 4, 4), 0b101);
    g.dist_write(0, d::ICENABLER + 4, 4, 0b1);
    assert_eq!(g.dist_read(0, d::ISENABLER + 4, 4), 0b100);
    g.dist_write(0, d::ISPENDR + 4, 4, 0b10);
    assert_eq!(g.dist_read(0, d::ISPENDR + 4, 4), 0b10);
    g.dist_write(0, d::ICPENDR + 4, 4, 0b10);
    assert_eq!(g.dist_read(0, d::ICPENDR + 4, 4), 0);
    g.dist_write(0, d::ISACTIVER + 4, 4, 1 << 31);
    assert_eq!(g.dist_read(0, d::ICACTIVER + 4, 4), 1 << 31);
    g.dist_write(0, d::ICACTIVER + 4, 4, 1 << 31);
    assert_eq!(g.dist_read(0, d::ISACTIVER + 4, 4), 0);
    // Beyond the implemented lines: RAZ/WI.
    g.dist_write(0, d::ISENABLER + 12, 4, !0);
    assert_eq!(g.dist_read(0, d::ISENABLER + 12, 4), 0);
}

#[test]
fn level_pending_follows_the_line_but_a_latch_stays() {
    let mut g = v3(1);
    g.set_line(0, 40, true);
    assert!(g.irq(0, 40).unwrap().pending());
    g.dist_write(0, d::ICPENDR + 4, 4, 1 << 8);
    assert!(g.irq(0, 40).unwrap().pending(), "line still high");
    g.set_line(0, 40, false);
    assert!(!g.irq(0, 40).unwrap().pending());
    g.dist_write(0, d::ISPENDR + 4, 4, 1 << 8);
    assert!(g.irq(0, 40).unwrap().pending(), "software latch");
}

#[test]
fn priorities_bytewise_and_masked() {
    let mut g = v3(1);
    g.dist_write(0, d::IPRIORITYR + 33, 1, 0xa7);
    assert_eq!(g.dist_read(0, d::IPRIORITYR + 33, 1), 0xa0);
    g.dist_write(0, d::IPRIORITYR + 36, 4, 0x1020_3040);
    assert_eq!(g.dist_read(0, d::IPRIORITYR + 36, 4), 0x1020_3040);
    assert_eq!(g.irq(0, 38).unwrap().priority, 0x20);
}

#[test]
fn icfgr_spis_configurable_private_fixed() {
    let mut g = v3(1);
    g.dist_write(0, d::ICFGR + 8, 4, 0b10 << 2);
    assert_eq!(g.dist_read(0, d::ICFGR + 8, 4), 0b10 << 2);
    assert!(g.irq(0, 33).unwrap().edge);
    // Redistributor: SGIs edge, PPIs level, read-only.
    assert_eq!(g.redist_read(r::SGI_BASE + d::ICFGR, 4), 0xaaaa_aaaa);
    assert_eq!(g.redist_read(r::SGI_BASE + d::ICFGR + 4, 4), 0);
    g.redist_write(r::SGI_BASE + d::ICFGR + 4, 4, !0);
    assert_eq!(g.redist_read(r::SGI_BASE + d::ICFGR + 4, 4), 0);
}

#[test]
fn irouter_routes_spis_by_affinity() {
    let mut g = Vgic::new(Version::V3, &[0x0, 0x1, 0x100], 32);
    g.dist_write(0, d::IROUTER + 8 * 40, 8, 0x100 | (1 << 31));
    assert_eq!(g.dist_read(0, d::IROUTER + 8 * 40, 8), 0x100, "IRM RAZ/WI");
    g.dist_write(0, d::CTLR, 4, 2);
    g.dist_write(0, d::ISENABLER + 4, 4, 1 << 8);
    let k = g.set_line(0, 40, true);
    assert!(k.contains(2) && !k.contains(0));
    assert!(g.has_pending(2));
    assert!(!g.has_pending(0));
    // 32-bit halves.
    g.dist_write(0, d::IROUTER + 8 * 41 + 4, 4, 0x7);
    g.dist_write(0, d::IROUTER + 8 * 41, 4, 0x0102_0304);
    assert_eq!(g.dist_read(0, d::IROUTER + 8 * 41, 8), 0x7_0002_0304);
    assert_eq!(g.dist_read(0, d::IROUTER + 8 * 41 + 4, 4), 0x7);
}

#[test]
fn gicr_frames_typer_last_and_waker() {
    let mut g = Vgic::new(Version::V3, &[0x0, 0x1, 0x1_0000_0002], 32);
    assert_eq!(g.redist_read(r::TYPER, 8), 0);
    assert_eq!(
        g.redist_read(GICR_STRIDE + r::TYPER, 8),
        (1 << 32) | (1 << 8)
    );
    let t2 = g.redist_read(2 * GICR_STRIDE + r::TYPER, 8);
    assert_eq!(t2 >> 32, 0x0100_0002, "Aff3 in bits 63:56");
    assert_eq!(t2 & (1 << 4), 1 << 4, "Last");
    assert_eq!(g.redist_read(2 * GICR_STRIDE + 0xc, 4), 0x0100_0002);
    assert_eq!(
        g.redist_read(3 * GICR_STRIDE + r::TYPER, 8),
        0,
        "past the end: RAZ"
    );
    assert_eq!(g.redist_read(r::WAKER, 4), 0b110, "asleep at reset");
    g.redist_write(r::WAKER, 4, 0);
    assert_eq!(g.redist_read(r::WAKER, 4), 0);
    assert_eq!((g.redist_read(r::PIDR2, 4) >> 4) & 0xf, 3);
    assert_eq!(g.redist_read(r::IIDR, 4), 0x43b);
}

#[test]
fn gicr_sgi_frame_banks_private_interrupts() {
    let mut g = v3(2);
    g.redist_write(GICR_STRIDE + r::SGI_BASE + d::ISENABLER, 4, 1 << 27);
    g.redist_write(GICR_STRIDE + r::SGI_BASE + d::IPRIORITYR + 27, 1, 0x80);
    assert!(g.irq(1, 27).unwrap().enabled);
    assert!(!g.irq(0, 27).unwrap().enabled);
    assert_eq!(
        g.redist_read(GICR_STRIDE + r::SGI_BASE + d::ISENABLER, 4),
        1 << 27
    );
    assert_eq!(g.redist_read(r::SGI_BASE + d::ISENABLER, 4), 0);
    assert_eq!(
        g.redist_read(GICR_STRIDE + r::SGI_BASE + d::IPRIORITYR + 24, 4),
        0x80 << 24
    );
    g.redist_write(r::SGI_BASE + d::IGROUPR, 4, 0);
    assert_eq!(g.redist_read(r::SGI_BASE + d::IGROUPR, 4), 0);
    assert_eq!(
        g.redist_read(GICR_STRIDE + r::SGI_BASE + d::IGROUPR, 4),
        0xffff_ffff
    );
}

#[test]
fn v2_gicd_identification_and_banking() {
    let mut g = v2(2);
    let typer = g.dist_read(0, d::TYPER, 4);
    assert_eq!(typer & 0x1f, 2);
    assert_eq!((typer >> 5) & 7, 1, "two CPU interfaces");
    assert_eq!((g.dist_read(0, d::PIDR2_V2, 4) >> 4) & 0xf, 2);
    // ITARGETSR0-7: the reader's own interface, read-only.
    assert_eq!(g.dist_read(0, d::ITARGETSR, 4), 0x0101_0101);
    assert_eq!(g.dist_read(1, d::ITARGETSR + 28, 4), 0x0202_0202);
    g.dist_write(0, d::ITARGETSR, 4, 0);
    assert_eq!(g.dist_read(0, d::ITARGETSR, 4), 0x0101_0101);
    // SPI targets, masked to existing CPUs.
    g.dist_write(0, d::ITARGETSR + 32, 1, 0xff);
    assert_eq!(g.dist_read(0, d::ITARGETSR + 32, 1), 0x3);
    // Word 0 of the bitmaps is banked.
    g.dist_write(1, d::ISENABLER, 4, 1 << 27);
    assert_eq!(g.dist_read(1, d::ISENABLER, 4) & (1 << 27), 1 << 27);
    assert_eq!(g.dist_read(0, d::ISENABLER, 4) & (1 << 27), 0);
    // SGIs always enabled; groups RAZ/WI.
    assert_eq!(g.dist_read(0, d::ISENABLER, 4) & 0xffff, 0xffff);
    g.dist_write(0, d::IGROUPR + 4, 4, !0);
    assert_eq!(g.dist_read(0, d::IGROUPR + 4, 4), 0);
}

#[test]
fn v2_sgir_filters_and_sources() {
    let mut g = v2(3);
    g.dist_write(0, d::CTLR, 4, 1);
    // List: CPUs 1 and 2, SGI 5.
    let k = g.dist_write(0, d::SGIR, 4, (0b110 << 16) | 5);
    assert!(k.contains(1) && k.contains(2) && !k.contains(0));
    assert_eq!(g.irq(1, 5).unwrap().sgi_sources, 1);
    // All but self, from CPU 2.
    g.dist_write(2, d::SGIR, 4, (1 << 24) | 5);
    assert_eq!(g.irq(1, 5).unwrap().sgi_sources, 0b101);
    assert_eq!(g.irq(2, 5).unwrap().sgi_sources, 0b001);
    // Self.
    g.dist_write(0, d::SGIR, 4, (2 << 24) | 3);
    assert_eq!(g.irq(0, 3).unwrap().sgi_sources, 1);
    // S/CPENDSGIR: one byte per SGI.
    assert_eq!(g.dist_read(1, d::SPENDSGIR + 4, 4), 0b101 << 8);
    g.dist_write(1, d::CPENDSGIR + 5, 1, 0b1);
    assert_eq!(g.irq(1, 5).unwrap().sgi_sources, 0b100);
    g.dist_write(1, d::SPENDSGIR + 15, 1, 0b10);
    assert_eq!(g.irq(1, 15).unwrap().sgi_sources, 0b10);
}

#[test]
fn v2_sgi_sources_go_out_one_at_a_time() {
    let mut g = v2(3);
    g.dist_write(0, d::CTLR, 4, 1);
    g.dist_write(0, d::SGIR, 4, (1 << 16) | 1);
    g.dist_write(2, d::SGIR, 4, (1 << 16) | 1);
    let (out, f) = lrs(&mut g, 0, 4);
    assert_eq!(f.count, 1);
    assert!(f.overflow, "another source still pending");
    assert_eq!(out[0].source, 0);
    assert_eq!(Lr::from_v2(out[0].to_v2()), out[0]);
    // The guest acknowledges and completes it: the other source comes next.
    let done = [Lr::INVALID];
    g.fold(0, &done);
    let (out, f) = lrs(&mut g, 0, 4);
    assert_eq!((f.count, out[0].source, out[0].intid), (1, 2, 1));
    g.fold(0, &done);
    assert!(!g.has_pending(0));
}

#[test]
fn v3_sgi_generation() {
    let mut g = Vgic::new(Version::V3, &[0x0, 0x1, 0x100, 0x111], 32);
    for v in 0..4 {
        g.redist_write(
            v as u64 * GICR_STRIDE + r::SGI_BASE + d::ISENABLER,
            4,
            0xffff,
        );
    }
    g.dist_write(0, d::CTLR, 4, 3);
    // Aff1 = 0, list {0, 1}, SGI 3.
    let k = g.sgi_v3(0, (3 << 24) | 0b11, true);
    assert_eq!(k.iter().collect::<Vec<_>>(), vec![0, 1]);
    // Aff1 = 1, Aff0 17 = RS 1, bit 1.
    let k = g.sgi_v3(0, (1 << 16) | (1 << 44) | 0b10 | (4 << 24), true);
    assert_eq!(k.iter().collect::<Vec<_>>(), vec![3]);
    assert!(g.irq(3, 4).unwrap().pending());
    assert!(!g.irq(2, 4).unwrap().pending());
    // IRM: everyone but the sender.
    let k = g.sgi_v3(1, (1 << 40) | (7 << 24), true);
    assert_eq!(k.iter().collect::<Vec<_>>(), vec![0, 2, 3]);
    // SGI0R does not raise a group-1 SGI.
    let k = g.sgi_v3(0, (9 << 24) | 0b10, false);
    assert!(k.is_empty());
    assert!(!g.irq(1, 9).unwrap().pending());
}

#[test]
fn delivery_order_active_first_then_priority_then_intid() {
    let mut g = v3(1);
    g.dist_write(0, d::CTLR, 4, 3);
    g.redist_write(r::SGI_BASE + d::ISENABLER, 4, !0);
    g.dist_write(0, d::ISENABLER + 4, 4, !0);
    // SPIs 33-36 edge-triggered.
    g.dist_write(0, d::ICFGR + 8, 4, 0b10_1010_1000);
    for (id, prio) in [
        (33u32, 0x80u64),
        (34, 0x40),
        (35, 0x40),
        (36, 0xc0),
        (27, 0x20),
    ] {
        if id < 32 {
            g.redist_write(r::SGI_BASE + d::IPRIORITYR + id as u64, 1, prio);
        } else {
            g.dist_write(0, d::IPRIORITYR + id as u64, 1, prio);
        }
        g.inject_edge(0, id);
    }
    // 36 is active already (lowest priority, but the guest must deactivate it).
    g.dist_write(0, d::ICPENDR + 4, 4, 1 << 4);
    g.dist_write(0, d::ISACTIVER + 4, 4, 1 << 4);
    let (out, f) = lrs(&mut g, 0, 4);
    let ids: Vec<u32> = out.iter().map(|l| l.intid).collect();
    assert_eq!(ids, vec![36, 27, 34, 35]);
    assert!(f.overflow, "33 did not fit");
    assert_eq!(out[0].state, LrState::Active);
    assert_eq!(out[1].state, LrState::Pending);
    assert_eq!(out[1].priority, 0x20);
    assert!(out[1].group1);
    // Edges moved into the list registers.
    assert!(!g.irq(0, 34).unwrap().pending_latch);
    // The guest takes 27 and 34, leaves 35 pending, deactivates 36.
    let back = [
        Lr {
            state: LrState::Invalid,
            ..out[0]
        },
        Lr {
            state: LrState::Active,
            ..out[1]
        },
        Lr {
            state: LrState::Invalid,
            ..out[2]
        },
        out[3],
    ];
    g.fold(0, &back);
    assert!(!g.irq(0, 36).unwrap().active);
    assert!(g.irq(0, 27).unwrap().active);
    assert!(!g.irq(0, 34).unwrap().pending());
    assert!(g.irq(0, 35).unwrap().pending(), "untaken edge moves back");
    let (out, f) = lrs(&mut g, 0, 4);
    let ids: Vec<u32> = out.iter().take(f.count).map(|l| l.intid).collect();
    assert_eq!(ids, vec![27, 35, 33]);
    assert!(!f.overflow);
}

#[test]
fn disabled_or_group_disabled_is_not_delivered() {
    let mut g = v3(1);
    g.dist_write(0, d::ISENABLER + 4, 4, 1);
    g.inject_edge(0, 32);
    assert!(!g.has_pending(0), "distributor group 1 disabled");
    assert_eq!(lrs(&mut g, 0, 4).1.count, 0);
    g.dist_write(0, d::CTLR, 4, 2);
    assert!(g.has_pending(0));
    g.dist_write(0, d::ICENABLER + 4, 4, 1);
    assert!(!g.has_pending(0));
    assert_eq!(lrs(&mut g, 0, 4).1.count, 0);
}

#[test]
fn level_interrupts_ask_for_eoi_maintenance_and_resample() {
    let mut g = v3(1);
    g.dist_write(0, d::CTLR, 4, 2);
    g.redist_write(r::SGI_BASE + d::ISENABLER, 4, 1 << 27);
    g.set_line(0, 27, true);
    let (out, _) = lrs(&mut g, 0, 4);
    assert!(out[0].eoi_maintenance);
    assert_eq!(
        Lr::from_v3(out[0].to_v3()),
        Lr {
            source: 0,
            ..out[0]
        }
    );
    // The guest handled it and the device deasserted.
    g.fold(0, &[Lr::INVALID]);
    g.set_line(0, 27, false);
    assert!(!g.is_pending_or_active(0, 27));
    // Still asserted after EOI: pending again.
    g.set_line(0, 27, true);
    let (_, f) = lrs(&mut g, 0, 4);
    assert_eq!(f.count, 1);
}

#[test]
fn an_spi_in_one_vcpus_list_registers_is_not_offered_to_another() {
    let mut g = v2(2);
    g.dist_write(0, d::CTLR, 4, 1);
    g.dist_write(0, d::ISENABLER + 4, 4, 1);
    g.dist_write(0, d::ITARGETSR + 32, 1, 1);
    g.inject_edge(0, 32);
    assert_eq!(lrs(&mut g, 0, 4).1.count, 1);
    // Retargeted while vCPU 0 holds it.
    g.dist_write(0, d::ITARGETSR + 32, 1, 2);
    assert_eq!(lrs(&mut g, 1, 4).1.count, 0);
    g.fold(
        0,
        &[Lr {
            state: LrState::Active,
            ..Lr::INVALID
        }],
    );
    assert!(g.irq(0, 32).unwrap().active);
    let (out, f) = lrs(&mut g, 1, 4);
    assert_eq!((f.count, out[0].state), (1, LrState::Active));
}

#[test]
fn lr_encodings() {
    let lr = Lr {
        intid: 27,
        state: LrState::PendingActive,
        priority: 0xa0,
        group1: true,
        eoi_maintenance: true,
        source: 0,
        hw: false,
    };
    assert_eq!(
        lr.to_v3(),
        (3 << 62) | (1 << 60) | (0xa0 << 48) | (1 << 41) | 27
    );
    let v2 = Lr {
        group1: false,
        source: 3,
        intid: 2,
        ..lr
    };
    assert_eq!(
        v2.to_v2(),
        (3 << 28) | (0x14 << 23) | (1 << 19) | (3 << 10) | 2
    );
    assert_eq!(Lr::from_v2(v2.to_v2()), v2);
    assert_eq!(Lr::INVALID.to_v3(), 0);
    assert_eq!(Lr::INVALID.to_v2(), 0);
}

#[test]
fn reads_and_writes_of_odd_sizes_are_raz_wi() {
    let mut g = v3(1);
    assert_eq!(g.dist_read(0, d::CTLR, 2), 0);
    g.dist_write(0, d::ISENABLER + 4, 2, 0xffff);
    assert_eq!(g.dist_read(0, d::ISENABLER + 4, 4), 0);
    assert_eq!(g.redist_read(r::TYPER, 2), 0);
}

#[test]
fn state_export_import_round_trip_and_rejections() {
    let mut g = v3(2);
    g.dist_write(0, d::CTLR, 4, 2);
    g.dist_write(0, d::ISENABLER + 4, 4, 0b11);
    g.dist_write(0, d::IPRIORITYR + 33, 1, 0x48);
    g.dist_write(0, d::IROUTER + 8 * 33, 8, 1);
    g.redist_write(GICR_STRIDE + r::SGI_BASE + d::ISENABLER, 4, 1 << 27);
    g.redist_write(GICR_STRIDE + r::WAKER, 4, 0);
    g.set_line(1, 27, true);
    g.sgi_v3(0, (5 << 24) | 0b10, true);
    g.iface_mut(1).unwrap().vmcr = 0xf000_0001;
    g.iface_mut(1).unwrap().ap1r[0] = 0x8000_0000;
    let bytes = g.export();
    let mut h = v3(2);
    h.import(&bytes).unwrap();
    assert_eq!(h.export(), bytes);
    assert_eq!(h.cpu(1).iface, g.cpu(1).iface);
    assert_eq!(h.irq(0, 33), g.irq(0, 33));
    assert!(h.irq(1, 27).unwrap().pending());
    assert!(h.irq(1, 5).unwrap().pending());
    assert_eq!(h.redist_read(GICR_STRIDE + r::WAKER, 4), 0);
    assert_eq!(h.dist_read(0, d::CTLR, 4), g.dist_read(0, d::CTLR, 4));

    let fresh = v3(2).export();
    let mut k = v3(2);
    assert_eq!(
        k.import(&bytes[..bytes.len() - 1]),
        Err(StateError::Truncated)
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(k.import(&longer), Err(StateError::Trailing));
    let mut wrong = bytes.clone();
    wrong[0] = 9;
    assert_eq!(k.import(&wrong), Err(StateError::UnknownVersion(9)));
    assert_eq!(v2(2).import(&bytes), Err(StateError::Mismatch));
    assert_eq!(v3(3).import(&bytes), Err(StateError::Mismatch));
    assert_eq!(k.export(), fresh, "a refused import changes nothing");
}

/// States the model can never be in are refused on import (found by the `snapshot`
/// fuzz target: an imported GICv3 SGI with GICv2 source bits came back latched
/// after a flush and fold; a GICv2 active source above 7 overflows a shift in
/// `flush`). Offsets follow `state.rs`: a 17-byte header, then per vCPU 49 bytes
/// (MPIDR, sleep, VMCR, APRs) and 14 bytes per interrupt (flags u16, priority,
/// targets, SGI sources, active source, route u64).
#[test]
fn import_refuses_states_the_model_cannot_reach() {
    const IRQ0: usize = 17 + 49;
    fn irq(id: usize) -> usize {
        IRQ0 + 14 * id
    }
    /// SPI `n` of a two-vCPU state.
    fn spi(n: usize) -> usize {
        IRQ0 + 14 * 32 + 49 + 14 * 32 + 14 * n
    }
    type Corrupt = fn(&mut Vec<u8>);
    let cases: &[(Version, &str, Corrupt)] = &[
        (Version::V2, "active source 9", |b| {
            b[irq(3)] |= 1 << 3; // active
            b[irq(3) + 5] = 9;
        }),
        (Version::V3, "v3 SGI sources", |b| b[irq(5) + 4] = 1),
        (Version::V2, "GICv2 SGI latched without a source", |b| {
            b[irq(2)] |= 1 << 1
        }),
        (Version::V3, "priority low bits", |b| b[irq(20) + 2] = 0x07),
        (Version::V3, "SPI route beyond the affinity", |b| {
            b[spi(1) + 6 + 3] = 1
        }),
        (Version::V3, "PPI edge", |b| b[irq(27)] |= 1 << 4),
        (Version::V3, "SGI level", |b| b[irq(1)] &= !(1 << 4)),
        (Version::V2, "GICv2 group 1", |b| b[irq(0)] |= 1 << 5),
        (Version::V2, "SPI targets a missing CPU", |b| {
            b[spi(0) + 3] = 0x80
        }),
        (Version::V3, "unknown flags", |b| b[irq(0) + 1] = 0x80),
        (Version::V3, "MPIDR", |b| b[17] ^= 1),
        (Version::V2, "GICD_CTLR group 1 on v2", |b| b[13] = 2),
    ];
    for &(version, what, corrupt) in cases {
        let mut g = if version == Version::V2 { v2(2) } else { v3(2) };
        let mut bytes = g.export();
        corrupt(&mut bytes);
        let before = g.export();
        assert!(
            matches!(g.import(&bytes), Err(StateError::Invalid(_))),
            "{what}: accepted"
        );
        assert_eq!(
            g.export(),
            before,
            "{what}: a refused import changed the state"
        );
    }
    // The same GICv2 SGI, active from source 2 and pending from it again: imported,
    // and it goes to the guest with that source.
    let mut g = v2(2);
    let mut bytes = g.export();
    bytes[irq(3)] |= 1 << 3;
    bytes[irq(3) + 4] = 1 << 2;
    bytes[irq(3) + 5] = 2;
    g.import(&bytes).unwrap();
    let (out, f) = lrs(&mut g, 0, 4);
    assert_eq!(f.count, 1);
    assert_eq!((out[0].intid, out[0].source), (3, 2));
    assert_eq!(out[0].state, LrState::PendingActive);
}

/// Found by the `snapshot` fuzz target (reachable by a guest through GICD alone): a
/// level SPI with a software pending request, active and disabled, goes into a list
/// register as active only; its fold took the request as acknowledged and dropped
/// it, so the interrupt was lost when the guest enabled it again.
#[test]
fn an_active_only_level_interrupt_keeps_its_pending_request() {
    let mut g = v3(1);
    g.dist_write(0, d::CTLR, 4, 3);
    g.dist_write(0, d::IROUTER + 8 * 40, 8, 0);
    g.dist_write(0, d::ISPENDR + 4, 4, 1 << 8); // INTID 40, level (reset)
    g.dist_write(0, d::ISACTIVER + 4, 4, 1 << 8);
    let (out, f) = lrs(&mut g, 0, 4);
    assert_eq!(
        (f.count, out[0].intid, out[0].state),
        (1, 40, LrState::Active)
    );
    // The guest deactivates it.
    let mut back = out.clone();
    back[0].state = LrState::Invalid;
    g.fold(0, &back[..1]);
    let i = g.irq(0, 40).unwrap();
    assert!(!i.active && i.pending(), "the pending request was lost");
    // Enabled, it is delivered.
    g.dist_write(0, d::ISENABLER + 4, 4, 1 << 8);
    let (out, _) = lrs(&mut g, 0, 4);
    assert_eq!((out[0].intid, out[0].state), (40, LrState::Pending));
    // Acknowledged and deactivated by the guest, the request is consumed.
    let mut back = out.clone();
    back[0].state = LrState::Invalid;
    g.fold(0, &back[..1]);
    assert!(!g.irq(0, 40).unwrap().pending());
}

/// Found by the `vgic` fuzz target: a GICv2 SGI made pending with no source CPU
/// (an edge injected, a line raised) made `flush` pick source 8 of an empty source
/// mask, a shift overflow. A GICv2 SGI is pending only per source, so neither
/// touches it.
#[test]
fn a_gicv2_sgi_has_no_line_and_no_sourceless_edge() {
    let mut g = v2(2);
    g.dist_write(0, d::CTLR, 4, 1);
    assert!(g.inject_edge(0, 3).is_empty());
    assert!(g.set_line(0, 4, true).is_empty());
    assert!(!g.irq(0, 3).unwrap().pending() && !g.irq(0, 4).unwrap().pending());
    let (_, f) = lrs(&mut g, 0, 4);
    assert_eq!(f.count, 0);
    // Through GICD_SGIR it is pending from its source and delivered with it.
    g.dist_write(1, d::SGIR, 4, (1 << 16) | 3); // from CPU 1 to CPU 0
    let (out, f) = lrs(&mut g, 0, 4);
    assert_eq!((f.count, out[0].intid, out[0].source), (1, 3, 1));
    // A GICv3 SGI still takes an edge.
    let mut g = v3(1);
    g.inject_edge(0, 3);
    assert!(g.irq(0, 3).unwrap().pending());
}

// ---- hardware-linked SPIs (passthrough) -------------------------------------

/// A GICv3 VM of two vCPUs with SPI `id` hardware-linked, enabled, routed to
/// vCPU `to`.
fn hw_vm(id: u32, level: bool, to: u64) -> Vgic {
    let mut g = v3(2);
    g.dist_write(0, d::CTLR, 4, 2);
    g.set_hw(id, true);
    let word = (id / 32) as u64 * 4;
    g.dist_write(0, d::ISENABLER + word, 4, 1 << (id % 32));
    if !level {
        g.dist_write(0, d::ICFGR + (id / 16) as u64 * 4, 4, 2 << (2 * (id % 16)));
    }
    g.dist_write(0, d::IROUTER + 8 * id as u64, 8, to);
    g
}

#[test]
fn a_hardware_linked_spi_goes_out_with_the_hw_bit_and_ends_with_the_guests_eoi() {
    for level in [true, false] {
        let mut g = hw_vm(48, level, 1);
        assert_eq!(g.hw_config(48), Some((true, Some(1))));
        let k = g.inject_hw(48);
        assert!(k.contains(1) && !k.contains(0), "kicks the vCPU it targets");
        assert!(g.has_pending(1) && !g.has_pending(0));
        let (out, f) = lrs(&mut g, 1, 4);
        assert_eq!(f.count, 1);
        let lr = out[0];
        assert!(lr.hw && !lr.eoi_maintenance, "no maintenance exit: {lr:?}");
        assert_eq!(lr.state, LrState::Pending);
        // ICH_LR: HW (61) and pINTID (44:32) = vINTID.
        let v = lr.to_v3();
        assert_eq!((v >> 61) & 1, 1);
        assert_eq!((v >> 32) & 0x1fff, 48);
        assert_eq!(v & 0xffff_ffff, 48);
        assert_eq!(Lr::from_v3(v), lr);
        // The guest acknowledges it: active in the list register, still
        // physically active.
        g.fold(
            1,
            &[Lr {
                state: LrState::Active,
                ..lr
            }],
        );
        let i = *g.irq(1, 48).unwrap();
        assert!(i.active && i.hw_active && !i.pending());
        assert!(g.hw_orphans().is_empty());
        // Back in the list register as active and linked, so its EOI still
        // reaches the hardware.
        let (out, _) = lrs(&mut g, 1, 4);
        assert_eq!((out[0].state, out[0].hw), (LrState::Active, true));
        // Its EOI: the list register empties; the hardware deactivated the
        // physical interrupt itself.
        g.fold(1, &[Lr::INVALID]);
        let i = *g.irq(1, 48).unwrap();
        assert!(!i.active && !i.pending() && !i.hw_active);
        assert!(g.hw_orphans().is_empty(), "nothing for the runtime to do");
        assert_eq!(lrs(&mut g, 1, 4).1.count, 0);
    }
}

#[test]
fn an_untaken_hardware_linked_spi_moves_back_and_stays_linked() {
    let mut g = hw_vm(50, true, 0);
    g.inject_hw(50);
    let (out, _) = lrs(&mut g, 0, 4);
    // Exit before the guest took it: still pending, still physically active.
    g.fold(0, &out[..1]);
    let i = *g.irq(0, 50).unwrap();
    assert!(i.pending() && i.hw_active);
    let (out, f) = lrs(&mut g, 0, 4);
    assert_eq!(
        (f.count, out[0].hw, out[0].state),
        (1, true, LrState::Pending)
    );
}

#[test]
fn a_masked_hardware_linked_level_spi_stays_pending_and_is_delivered_when_unmasked() {
    let mut g = hw_vm(52, true, 0);
    // The guest masks it at its distributor.
    g.dist_write(0, d::ICENABLER + 4, 4, 1 << 20);
    assert_eq!(
        g.hw_config(52),
        Some((false, Some(0))),
        "the runtime masks the physical one"
    );
    // It fired just before the physical mask took effect.
    let k = g.inject_hw(52);
    assert!(k.is_empty() && !g.has_pending(0));
    assert_eq!(lrs(&mut g, 0, 4).1.count, 0);
    assert!(g.irq(0, 52).unwrap().pending(), "never lost");
    assert!(g.hw_orphans().is_empty(), "still the guest's to take");
    // Unmasked: delivered, linked.
    let k = g.dist_write(0, d::ISENABLER + 4, 4, 1 << 20);
    assert!(k.contains(0));
    assert_eq!(g.hw_config(52), Some((true, Some(0))));
    let (out, f) = lrs(&mut g, 0, 4);
    assert_eq!((f.count, out[0].hw), (1, true));
    // A disabled distributor group masks it too.
    g.dist_write(0, d::CTLR, 4, 0);
    assert_eq!(g.hw_config(52), Some((false, Some(0))));
}

#[test]
fn a_hardware_linked_spi_the_guest_clears_is_handed_back_for_deactivation() {
    let mut g = hw_vm(53, true, 0);
    g.inject_hw(53);
    g.dist_write(0, d::ICPENDR + 4, 4, 1 << 21);
    assert_eq!(g.hw_orphans(), [53]);
    assert!(g.hw_orphans().is_empty(), "once");
    // Active, then cleared through ICACTIVER.
    g.inject_hw(53);
    let (out, _) = lrs(&mut g, 0, 4);
    g.fold(
        0,
        &[Lr {
            state: LrState::Active,
            ..out[0]
        }],
    );
    assert!(g.hw_orphans().is_empty());
    g.dist_write(0, d::ICACTIVER + 4, 4, 1 << 21);
    assert_eq!(g.hw_orphans(), [53]);
    // Not hardware-linked: nothing.
    let mut g = v3(1);
    assert!(g.inject_hw(40).is_empty());
    assert_eq!(g.hw_config(40), None);
    g.set_hw(20, true);
    assert!(!g.irq(0, 20).unwrap().hw, "PPIs are never linked");
}

#[test]
fn a_hardware_linked_spi_without_a_physical_activation_goes_out_unlinked() {
    // Made pending by the guest itself (ISPENDR): the physical interrupt is not
    // active, so the list register must not ask the hardware to deactivate it.
    let mut g = hw_vm(54, false, 0);
    g.dist_write(0, d::ISPENDR + 4, 4, 1 << 22);
    let (out, f) = lrs(&mut g, 0, 4);
    assert_eq!((f.count, out[0].hw), (1, false));
}

#[test]
fn gicv2_list_registers_carry_the_physical_id() {
    let lr = Lr {
        intid: 79,
        state: LrState::Pending,
        priority: 0xa0,
        group1: false,
        eoi_maintenance: false,
        source: 0,
        hw: true,
    };
    let v = lr.to_v2();
    assert_eq!(v >> 31, 1);
    assert_eq!((v >> 10) & 0x3ff, 79);
    assert_eq!(v & 0x3ff, 79);
    assert_eq!(Lr::from_v2(v), lr);
    // GICv2 guests: the same flow, ITARGETSR routing.
    let mut g = v2(2);
    g.dist_write(0, d::CTLR, 4, 1);
    g.set_hw(79, true);
    g.dist_write(0, d::ISENABLER + 8, 4, 1 << 15);
    g.dist_write(0, d::ITARGETSR + 79, 1, 2);
    assert_eq!(g.hw_config(79), Some((true, Some(1))));
    assert!(g.inject_hw(79).contains(1));
    let (out, _) = lrs(&mut g, 1, 4);
    assert!(out[0].hw && out[0].to_v2() >> 31 == 1);
}

#[test]
fn snapshots_keep_which_spis_are_hardware_linked() {
    let mut g = hw_vm(48, true, 0);
    let saved = g.export();
    let mut other = hw_vm(48, true, 0);
    other.inject_hw(48);
    other.import(&saved).unwrap();
    let i = *other.irq(0, 48).unwrap();
    assert!(i.hw, "configuration, not state");
    assert!(
        i.hw_active && !i.pending(),
        "the physical interrupt is still active"
    );
    assert_eq!(other.hw_orphans(), [48], "so the runtime ends it");
    g.set_hw(48, false);
    assert!(!g.irq(0, 48).unwrap().hw);
}

#[test]
fn a_hardware_linked_spi_moved_while_active_is_released_to_software() {
    let mut g = hw_vm(55, true, 0);
    g.inject_hw(55);
    let (out, _) = lrs(&mut g, 0, 4);
    // In vCPU 0's list registers: cannot be released now.
    assert!(!g.hw_release(55));
    g.fold(
        0,
        &[Lr {
            state: LrState::Active,
            ..out[0]
        }],
    );
    // The guest moves it to vCPU 1 while it is active.
    g.dist_write(0, d::IROUTER + 8 * 55, 8, 1);
    assert!(g.hw_release(55), "the runtime deactivates the physical one");
    assert!(!g.hw_release(55), "once");
    // vCPU 1 gets it as a software interrupt: its EOI must not reach the hardware.
    let (out, f) = lrs(&mut g, 1, 4);
    assert_eq!(
        (f.count, out[0].state, out[0].hw),
        (1, LrState::Active, false)
    );
    assert!(out[0].eoi_maintenance, "level: resampled on EOI");
    // The next physical occurrence is linked again.
    g.fold(1, &[Lr::INVALID]);
    g.inject_hw(55);
    let (out, _) = lrs(&mut g, 1, 4);
    assert!(out[0].hw);
}

/// The delivery checks look only at touched interrupts (`CpuState::touched`,
/// `Vgic::spi_touched`): after every step of a long random sequence of guest
/// writes, line changes, SGIs and flush/fold round trips, they agree with a scan of
/// every interrupt, for both GIC versions.
#[test]
fn touched_interrupts_cover_everything_a_scan_finds() {
    fn scan_pending(g: &Vgic, vcpu: usize) -> bool {
        let private = (0..SPI_BASE)
            .filter_map(|id| g.irq(vcpu, id))
            .any(|i| g.deliverable(i));
        private
            || g.spis
                .iter()
                .any(|i| g.deliverable(i) && i.in_lr.is_none() && g.spi_target(i) == Some(vcpu))
    }
    fn scan_flush_count(g: &Vgic, vcpu: usize) -> usize {
        let private = (0..SPI_BASE)
            .filter_map(|id| g.irq(vcpu, id))
            .filter(|i| i.active || g.deliverable(i))
            .count();
        let spis = g
            .spis
            .iter()
            .filter(|i| {
                i.in_lr.is_none() && (i.active || g.deliverable(i)) && g.spi_target(i) == Some(vcpu)
            })
            .count();
        private + spis
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (version, mut g) in [(Version::V3, v3(3)), (Version::V2, v2(3))] {
        g.dist_write(0, d::CTLR, 4, 3);
        for step in 0..20_000 {
            let vcpu = (rnd() % 3) as usize;
            let id = (rnd() % 96) as u32;
            let word = (id / 32) as u64 * 4;
            let bit = 1u64 << (id % 32);
            match rnd() % 10 {
                0 => {
                    let _ = g.dist_write(vcpu, d::ISPENDR + word, 4, bit);
                }
                1 => {
                    let _ = g.dist_write(vcpu, d::ICPENDR + word, 4, bit);
                }
                2 => {
                    let _ = g.dist_write(vcpu, d::ISENABLER + word, 4, bit);
                }
                3 => {
                    let _ = g.dist_write(vcpu, d::ICENABLER + word, 4, bit);
                }
                4 => {
                    let _ = g.dist_write(vcpu, d::ISACTIVER + word, 4, bit);
                }
                5 => {
                    let _ = g.dist_write(vcpu, d::ICACTIVER + word, 4, bit);
                }
                6 => {
                    let _ = g.set_line(vcpu, id, rnd() % 2 == 0);
                }
                7 if version == Version::V3 => {
                    let _ = g.sgi_v3(vcpu, ((id as u64 & 15) << 24) | 0b111, true);
                }
                7 => {
                    let _ = g.dist_write(vcpu, d::SGIR, 4, (0b111 << 16) | (id as u64 & 15));
                }
                8 if id >= SPI_BASE && version == Version::V3 => {
                    let _ = g.dist_write(vcpu, d::IROUTER + 8 * id as u64, 8, rnd() % 3);
                }
                8 if id >= SPI_BASE => {
                    let _ = g.dist_write(vcpu, d::ITARGETSR + id as u64, 1, 1 << (rnd() % 3));
                }
                _ => {
                    // A guest run: flush, then the guest acknowledges or leaves
                    // some of it, and the list registers are folded back.
                    let (mut out, f) = lrs(&mut g, vcpu, 4);
                    for lr in out.iter_mut().take(f.count) {
                        lr.state = match rnd() % 3 {
                            0 => LrState::Invalid,
                            1 => LrState::Active,
                            _ => lr.state,
                        };
                    }
                    g.fold(vcpu, &out[..f.count]);
                }
            }
            for v in 0..3 {
                assert_eq!(
                    g.has_pending(v),
                    scan_pending(&g, v),
                    "{version:?} step {step}: has_pending of vCPU {v}"
                );
            }
            let want = scan_flush_count(&g, vcpu).min(4);
            let (out, f) = lrs(&mut g, vcpu, 4);
            assert_eq!(
                f.count, want,
                "{version:?} step {step}: flush of vCPU {vcpu}"
            );
            g.fold(vcpu, &out[..f.count]);
        }
    }
}

#[test]
fn a_reset_forgets_the_guests_state_but_keeps_the_hardware_links() {
    for level in [true, false] {
        let mut g = hw_vm(48, level, 1);
        g.set_hw(49, true);
        // The guest's own state: an SGI pending, a PPI enabled, the linked SPI
        // taken (physically active), priorities and its CPU interface.
        g.dist_write(0, d::IPRIORITYR + 48, 1, 0xa0);
        g.inject_hw(48);
        g.inject_edge(0, 3);
        g.iface_mut(1).unwrap().vmcr = 0xf000_0001;
        let mpidrs: Vec<u64> = (0..2).collect();
        let mut fresh = Vgic::new(Version::V3, &mpidrs, 64);
        assert_ne!(g.export(), fresh.export());
        // Reset: the active physical interrupt is handed back, once.
        assert_eq!(g.reset(), vec![48]);
        fresh.set_hw(48, true);
        fresh.set_hw(49, true);
        assert_eq!(g.export(), fresh.export(), "a fresh GIC, links kept");
        assert_eq!(g.hw_config(48), Some((false, Some(0))), "linked, disabled");
        assert!(g.hw_config(49).is_some());
        assert!(g.hw_config(50).is_none(), "nothing new linked");
        assert!(!g.has_pending(0) && !g.has_pending(1));
        assert!(g.reset().is_empty());
    }
    // A GICv2 model resets to GICv2 state.
    let mut g = v2(2);
    g.dist_write(0, d::CTLR, 4, 1);
    g.reset();
    assert_eq!(g.export(), v2(2).export());
}

/// QEMU's `imx8mp-evk` leaves the GIC's virtual IRQ output unconnected, so the
/// runtime raises HCR_EL2.VI itself when the virtual CPU interface would: what
/// Linux's first IPI (an SGI at priority 0xa0, PMR 0xf0, group 1 enabled) needs.
#[test]
fn virtual_lines_follow_the_cpu_interface_rules() {
    use crate::vgic::{virt_lines, LrState, VirtLines};
    let lr = |intid, state, priority, group1| Lr {
        intid,
        state,
        priority,
        group1,
        ..Lr::INVALID
    };
    let sgi = lr(1, LrState::Pending, 0xa0, true);
    let linux = 0xf000_0002; // VPMR 0xf0, VENG1
    let irq = VirtLines {
        irq: true,
        fiq: false,
        pending: true,
    };
    let quiet = VirtLines {
        pending: true,
        ..VirtLines::default()
    };
    // A53: 5 bits of preemption (32 group priorities, shift 3).
    assert_eq!(virt_lines(&[sgi], linux, 0, 3), irq);
    assert_eq!(virt_lines(&[Lr::INVALID, sgi], linux, 0, 3), irq);
    // Nothing pending: no line (an active entry alone raises nothing).
    assert_eq!(virt_lines(&[], linux, 0, 3), VirtLines::default());
    let active = lr(27, LrState::Active, 0xa0, true);
    assert_eq!(virt_lines(&[active], linux, 0, 3), VirtLines::default());
    // Group 1 disabled, or masked by the PMR: pending but not signalled.
    assert_eq!(virt_lines(&[sgi], 0xf000_0001, 0, 3), quiet);
    assert_eq!(virt_lines(&[sgi], 0xa000_0002, 0, 3), quiet);
    // An active interrupt of the same group priority (0xa0 >> 3 = 20) blocks it;
    // a higher-priority one (0x80: 16) preempts it.
    assert_eq!(virt_lines(&[sgi], linux, 1 << 20, 3), quiet);
    let urgent = lr(2, LrState::Pending, 0x80, true);
    assert_eq!(virt_lines(&[sgi, urgent], linux, 1 << 20, 3), irq);
    // Active bits beyond the first register (6 and 7 bits of priority).
    assert_eq!(virt_lines(&[sgi], linux, 1 << 40, 2), quiet);
    assert_eq!(virt_lines(&[sgi], linux, 1 << 41, 2), irq);
    // Group 0: a virtual FIQ with VFIQEn, else an IRQ.
    let g0 = lr(3, LrState::Pending, 0x10, false);
    let fiq = VirtLines {
        fiq: true,
        irq: false,
        pending: true,
    };
    assert_eq!(virt_lines(&[g0], 0xf000_0009, 0, 3), fiq);
    assert_eq!(virt_lines(&[g0], 0xf000_0001, 0, 3), irq);
    // The best of the enabled group decides: group 0 disabled, group 1 signals.
    assert_eq!(virt_lines(&[g0, sgi], linux, 0, 3), irq);
}
