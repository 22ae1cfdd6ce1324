//! The virtual GIC's model (`src/vgic/`) driven as the runtime drives it
//! (`hv::vgic`): a random VM (GICv2 or v3, 1-4 vCPUs, 32-96 SPIs) and a random
//! sequence (up to 64 steps) of distributor and redistributor reads and writes of every width,
//! GICv3 SGI register writes, device lines and edges, list-register flushes (a
//! vCPU entering), guest acknowledge and deactivate on the simulated list
//! registers, folds (a vCPU exiting), state export/import round trips, and imports
//! of arbitrary bytes. A vCPU's own accesses come after its fold, as on hardware
//! (it has exited to make them).
//!
//! Invariants, checked after every step:
//! 1. No panic.
//! 2. Ranges: priorities keep only the 5 implemented bits (`& 0xf8`); GICv2 SPI
//!    targets name existing CPU interfaces, private interrupts have none; GICv3
//!    routes keep Aff3.Aff2.Aff1.Aff0 only; a GICv2 SGI's sources and active source
//!    are CPU numbers below 8, and no other interrupt has any; a GICv2 SGI is
//!    pending only through its sources (no latch, no line); SGIs are edge and PPIs
//!    level; GICv2 SGIs are enabled and no GICv2 interrupt is group 1.
//! 3. List registers: a flush fills at most as many as the vCPU has, each valid
//!    one with an implemented INTID, the model's priority and group, no INTID
//!    twice; an SPI is held by at most one vCPU's list registers, and it is marked
//!    `in_lr` by exactly that vCPU (private interrupts never are).
//! 4. Never both in a list register and pending in the model: right after a flush,
//!    an edge interrupt given to the guest as pending is no longer latched in the
//!    model (a GICv2 SGI: that source's bit is clear).
//! 5. Nothing lost: flushing and folding without the guest touching the list
//!    registers leaves the state as it was (tried on a copy at every step), and an
//!    interrupt pending somewhere (model or list register) stays pending through
//!    every step that is not a clear (ICPENDR/CPENDSGIR, a level line going low,
//!    the guest's own acknowledge) or a configuration write.
//! 6. Reads change nothing and fit their width; kicks name existing vCPUs.
//! 7. Whatever `has_pending` says a vCPU has, a flush gives it.
//! 8. Export then import into a fresh model of the same shape gives the same bytes;
//!    an import of arbitrary bytes either fails and changes nothing, or leaves a
//!    state that satisfies 2.
#![no_main]

use hypervisor::vgic::{
    IfaceState, IrqState, Kicks, Lr, LrState, Version, Vgic, GICR_STRIDE, MAX_LRS, SPI_BASE,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Size {
    B1,
    B2,
    B4,
    B8,
}

impl Size {
    fn bytes(self) -> u8 {
        match self {
            Size::B1 => 1,
            Size::B2 => 2,
            Size::B4 => 4,
            Size::B8 => 8,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum GuestAction {
    /// Acknowledge: Pending -> Active.
    Ack,
    /// Deactivate: Active -> Invalid, Pending+Active -> Pending.
    Eoi,
}

#[derive(Arbitrary, Debug)]
enum Op {
    DistRead {
        vcpu: u8,
        off: u16,
        size: Size,
    },
    DistWrite {
        vcpu: u8,
        off: u16,
        size: Size,
        value: u64,
    },
    RedistRead {
        off: u32,
        size: Size,
    },
    RedistWrite {
        off: u32,
        size: Size,
        value: u64,
    },
    SgiV3 {
        vcpu: u8,
        value: u64,
        group1: bool,
    },
    Line {
        vcpu: u8,
        intid: u16,
        level: bool,
    },
    Edge {
        vcpu: u8,
        intid: u16,
    },
    Flush {
        vcpu: u8,
        lrs: u8,
    },
    Guest {
        vcpu: u8,
        lr: u8,
        action: GuestAction,
    },
    Fold {
        vcpu: u8,
    },
    RoundTrip,
    Import(Vec<u8>),
}

struct Vm {
    g: Vgic,
    /// Per vCPU: the list registers as the hardware holds them while it runs.
    running: Vec<Option<Vec<Lr>>>,
}

/// Everything the model holds, comparable (cheaper than an export, which the
/// checks would otherwise make several times a step).
#[derive(PartialEq, Debug)]
struct Seen {
    ctlr: u64,
    cpus: Vec<(u64, bool, IfaceState)>,
    irqs: Vec<IrqState>,
}

fn seen(g: &Vgic) -> Seen {
    let mut irqs = Vec::with_capacity(g.vcpus() * 32 + g.spis());
    for v in 0..g.vcpus() {
        irqs.extend((0..SPI_BASE).filter_map(|id| g.irq(v, id).copied()));
    }
    irqs.extend((SPI_BASE..g.lines()).filter_map(|id| g.irq(0, id).copied()));
    Seen {
        ctlr: g.dist_read(0, 0, 4),
        cpus: (0..g.vcpus())
            .map(|v| {
                let c = g.cpu(v);
                (c.mpidr, c.sleep, c.iface)
            })
            .collect(),
        irqs,
    }
}

fn fits(v: u64, size: u8) -> bool {
    size >= 8 || v >> (8 * size as u32) == 0
}

fn check_kicks(k: Kicks, vcpus: usize) {
    assert!(
        k.iter().all(|v| v < vcpus),
        "kick for a vCPU that does not exist"
    );
}

impl Vm {
    fn vcpu(&self, v: u8) -> usize {
        v as usize % self.g.vcpus()
    }

    fn intid(&self, id: u16) -> u32 {
        id as u32 % (self.g.lines() + 4) // a few past the end too
    }

    /// The vCPU exits: its list registers go back into the model.
    fn fold(&mut self, v: usize) {
        if let Some(lrs) = self.running[v].take() {
            self.g.fold(v, &lrs);
        }
    }

    /// (vCPU, INTID) pending somewhere: in the model or in a list register (SPIs
    /// are not banked: they are listed under vCPU 0).
    fn pending_anywhere(&self) -> std::collections::BTreeSet<(usize, u32)> {
        let mut out = std::collections::BTreeSet::new();
        for (v, lrs) in self.running.iter().enumerate() {
            for lr in lrs.iter().flatten().filter(|l| l.state.pending()) {
                out.insert((if lr.intid < SPI_BASE { v } else { 0 }, lr.intid));
            }
        }
        for v in 0..self.g.vcpus() {
            let ids = if v == 0 {
                0..self.g.lines()
            } else {
                0..SPI_BASE
            };
            for id in ids {
                if self.g.irq(v, id).is_some_and(|i| i.pending()) {
                    out.insert((v, id));
                }
            }
        }
        out
    }

    /// Invariants 2 and 3.
    fn check_state(&self) {
        let g = &self.g;
        let v2 = g.version == Version::V2;
        let valid_targets = ((1u32 << g.vcpus().min(8)) - 1) as u8;
        let mut spi_holder = std::collections::BTreeMap::new();
        for (v, lrs) in self.running.iter().enumerate() {
            let Some(lrs) = lrs else { continue };
            let mut seen = std::collections::BTreeSet::new();
            for lr in lrs.iter().filter(|l| l.state != LrState::Invalid) {
                assert!(
                    lr.intid < g.lines(),
                    "LR INTID {} of {}",
                    lr.intid,
                    g.lines()
                );
                assert!(
                    seen.insert(lr.intid),
                    "INTID {} twice in vCPU {v}'s LRs",
                    lr.intid
                );
                if lr.intid >= SPI_BASE {
                    assert!(
                        spi_holder.insert(lr.intid, v).is_none(),
                        "SPI {} in two vCPUs' LRs",
                        lr.intid
                    );
                }
            }
        }
        for v in 0..g.vcpus() {
            for id in 0..g.lines() {
                let i = g.irq(v, id).expect("an implemented INTID");
                assert_eq!(i.priority & 7, 0, "INTID {id}: priority {:#x}", i.priority);
                let v2_sgi = v2 && id < 16;
                if !v2_sgi {
                    assert_eq!((i.sgi_sources, i.active_source), (0, 0), "INTID {id}");
                } else {
                    assert!(
                        i.active_source < 8,
                        "INTID {id}: source {}",
                        i.active_source
                    );
                    assert!(i.enabled, "GICv2 SGI {id} disabled");
                }
                if v2 {
                    assert!(!i.group1, "GICv2 INTID {id} in group 1");
                }
                if id < 16 {
                    assert!(i.edge, "SGI {id} level");
                } else if id < SPI_BASE {
                    assert!(!i.edge, "PPI {id} edge");
                }
                if id < SPI_BASE {
                    assert_eq!((i.targets, i.route, i.in_lr), (0, 0, None), "INTID {id}");
                } else {
                    assert_eq!(i.targets & !valid_targets, 0, "SPI {id}: targets");
                    assert_eq!(i.route & !0xff_00ff_ffff, 0, "SPI {id}: route");
                    if v2 {
                        assert_eq!(i.route, 0, "SPI {id}: a GICv3 route on GICv2");
                    } else {
                        assert_eq!(i.targets, 0, "SPI {id}: GICv2 targets on GICv3");
                    }
                    assert_eq!(
                        i.in_lr.map(usize::from),
                        spi_holder.get(&id).copied(),
                        "SPI {id}: in_lr"
                    );
                }
            }
        }
    }

    /// Invariants 5 (on a copy) and 7.
    fn check_flush_fold(&self) {
        let mut copy = self.g.clone();
        let before = seen(&copy);
        for v in 0..copy.vcpus() {
            if self.running[v].is_some() {
                continue;
            }
            let had = copy.has_pending(v);
            let mut lrs = [Lr::INVALID; 4];
            let f = copy.flush(v, &mut lrs);
            assert!(
                !had || f.count > 0,
                "vCPU {v} has something pending, flush gave nothing"
            );
            copy.fold(v, &lrs[..f.count]);
        }
        assert!(seen(&copy) == before, "flush then fold changed the state");
    }
}

fn step(vm: &mut Vm, op: Op) {
    let n = vm.g.vcpus();
    // The exit that comes before a vCPU's own access: its fold may consume what
    // the guest acknowledged, so it happens before the step is judged.
    let exits = match op {
        Op::DistRead { vcpu, .. }
        | Op::DistWrite { vcpu, .. }
        | Op::SgiV3 { vcpu, .. }
        | Op::Flush { vcpu, .. } => Some(vm.vcpu(vcpu)),
        Op::Line { vcpu, intid, .. } if vm.intid(intid) < SPI_BASE => Some(vm.vcpu(vcpu)),
        Op::RedistWrite { off, .. } => Some((off as u64 / GICR_STRIDE) as usize).filter(|&v| v < n),
        _ => None,
    };
    if let Some(v) = exits {
        vm.fold(v);
        vm.check_state();
    }
    let before = vm.pending_anywhere();
    // Whether this step may legitimately stop an interrupt being pending.
    let mut may_clear = false;
    match op {
        Op::DistRead { vcpu, off, size } => {
            let v = vm.vcpu(vcpu);
            vm.fold(v);
            let state = seen(&vm.g);
            let x = vm.g.dist_read(v, off as u64, size.bytes());
            assert!(
                fits(x, size.bytes()),
                "GICD {off:#x}/{}: {x:#x}",
                size.bytes()
            );
            assert!(seen(&vm.g) == state, "a read changed the state");
        }
        Op::DistWrite {
            vcpu,
            off,
            size,
            value,
        } => {
            let v = vm.vcpu(vcpu);
            vm.fold(v);
            may_clear = true;
            check_kicks(vm.g.dist_write(v, off as u64, size.bytes(), value), n);
            // Priorities read back as written, masked to the implemented bits.
            let size = size.bytes();
            if (0x400..0x7ff).contains(&off) && (size == 1 || size == 4) {
                let first = off as u32 - 0x400;
                let v3_private = vm.g.version == Version::V3 && first < SPI_BASE;
                if first + size as u32 <= vm.g.lines() && !v3_private {
                    let mask = if size == 1 { 0xf8 } else { 0xf8f8_f8f8 };
                    assert_eq!(
                        vm.g.dist_read(v, off as u64, size),
                        value & mask,
                        "IPRIORITYR {off:#x}"
                    );
                }
            }
        }
        Op::RedistRead { off, size } => {
            let state = seen(&vm.g);
            let x = vm.g.redist_read(off as u64, size.bytes());
            assert!(
                fits(x, size.bytes()),
                "GICR {off:#x}/{}: {x:#x}",
                size.bytes()
            );
            assert!(seen(&vm.g) == state, "a read changed the state");
        }
        Op::RedistWrite { off, size, value } => {
            // The redistributor's owner makes its own SGI_base accesses only after
            // it exited; another vCPU may write any frame.
            let owner = (off as u64 / GICR_STRIDE) as usize;
            if owner < n {
                vm.fold(owner);
            }
            may_clear = true;
            check_kicks(vm.g.redist_write(off as u64, size.bytes(), value), n);
        }
        Op::SgiV3 {
            vcpu,
            value,
            group1,
        } => {
            let v = vm.vcpu(vcpu);
            vm.fold(v);
            check_kicks(vm.g.sgi_v3(v, value, group1), n);
        }
        Op::Line { vcpu, intid, level } => {
            let (v, id) = (vm.vcpu(vcpu), vm.intid(intid));
            if id < SPI_BASE {
                vm.fold(v); // a PPI (the timer) is resampled on the vCPU's entry
            }
            may_clear = !level;
            check_kicks(vm.g.set_line(v, id, level), n);
        }
        Op::Edge { vcpu, intid } => {
            let (v, id) = (vm.vcpu(vcpu), vm.intid(intid));
            check_kicks(vm.g.inject_edge(v, id), n);
        }
        Op::Flush { vcpu, lrs } => {
            let v = vm.vcpu(vcpu);
            vm.fold(v);
            let nr = 1 + lrs as usize % MAX_LRS;
            let mut out = vec![Lr::INVALID; nr];
            let f = vm.g.flush(v, &mut out);
            assert!(f.count <= nr);
            assert_eq!(vm.g.lrs_in_use(v), f.count);
            assert!(out[f.count..].iter().all(|l| *l == Lr::INVALID));
            for lr in &out[..f.count] {
                assert_ne!(lr.state, LrState::Invalid);
                let i = vm.g.irq(v, lr.intid).expect("an implemented INTID");
                assert_eq!((lr.priority, lr.group1), (i.priority, i.group1));
                // Invariant 4.
                if lr.state.pending() {
                    if vm.g.version == Version::V2 && lr.intid < 16 {
                        // The source given to the guest is no longer pending here,
                        // unless it is also the active one still to deactivate.
                        if !lr.state.active() {
                            assert_eq!(i.sgi_sources & (1 << lr.source), 0, "SGI source kept");
                        }
                    } else if i.edge {
                        assert!(!i.pending_latch, "INTID {} latched and in an LR", lr.intid);
                    }
                }
            }
            vm.running[v] = Some(out[..f.count].to_vec());
        }
        Op::Guest { vcpu, lr, action } => {
            let v = vm.vcpu(vcpu);
            if let Some(lrs) = vm.running[v].as_mut() {
                if !lrs.is_empty() {
                    let n = lr as usize % lrs.len();
                    let l = &mut lrs[n];
                    l.state = match (action, l.state) {
                        (GuestAction::Ack, LrState::Pending) => LrState::Active,
                        (GuestAction::Eoi, LrState::Active) => LrState::Invalid,
                        (GuestAction::Eoi, LrState::PendingActive) => LrState::Pending,
                        (_, s) => s,
                    };
                    may_clear = true;
                }
            }
        }
        Op::Fold { vcpu } => {
            let v = vm.vcpu(vcpu);
            may_clear = true; // a level interrupt the guest acknowledged is consumed
            vm.fold(v);
        }
        Op::RoundTrip => {
            for v in 0..n {
                vm.fold(v);
            }
            let bytes = vm.g.export();
            let mut fresh = new_vgic(vm.g.version, n, vm.g.spis());
            fresh.import(&bytes).expect("a model's own export imports");
            assert!(fresh.export() == bytes, "export, import, export differs");
            vm.g = fresh;
        }
        Op::Import(bytes) => {
            for v in 0..n {
                vm.fold(v);
            }
            let state = vm.g.export();
            may_clear = true;
            if vm.g.import(&bytes).is_err() {
                assert!(vm.g.export() == state, "a refused import changed the state");
            }
        }
    }
    vm.check_state();
    vm.check_flush_fold();
    if !may_clear {
        let after = vm.pending_anywhere();
        for p in before {
            assert!(
                after.contains(&p),
                "(vCPU, INTID) {p:?} lost its pending state"
            );
        }
    }
}

/// Steps per input: the invariants are checked over every interrupt after each
/// step, so long sequences cost much; a short one finds as much per second.
const MAX_STEPS: usize = 64;

fn new_vgic(version: Version, vcpus: usize, spis: usize) -> Vgic {
    let mpidrs: Vec<u64> = (0..vcpus as u64)
        .map(|i| ((i / 4) << 8) | (i % 4)) // two clusters of four, as boards have
        .collect();
    Vgic::new(version, &mpidrs, spis)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let (Ok(v3), Ok(vcpus), Ok(spis)) = (
        u.arbitrary::<bool>(),
        u.int_in_range(1..=4usize),
        u.int_in_range(1..=3usize),
    ) else {
        return;
    };
    let version = if v3 { Version::V3 } else { Version::V2 };
    let mut vm = Vm {
        g: new_vgic(version, vcpus, spis * 32),
        running: vec![None; vcpus],
    };
    vm.check_state();
    for _ in 0..MAX_STEPS {
        let Ok(op) = u.arbitrary::<Op>() else { break };
        step(&mut vm, op);
    }
});
