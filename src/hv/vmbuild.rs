//! From boot inputs to VMs: the guests a boot loader described become VMs with
//! their RAM, stage-2 tables, kernel, initrd and device tree in place.
//!
//! Guests come from two places (DESIGN.md section 4):
//!
//! * a **guest bundle**, the initrd the boot loader passed
//!   (`/chosen/linux,initrd-start/-end`; `crate::bundle`), one VM per `vmN/`;
//! * **device-tree modules** under `/chosen` (QEMU `guest-loader`, Xen
//!   multiboot and dom0less).
//!
//! Both may be present: the bundle's VMs come first, in their order, so that a
//! bundle's `vmN` is the hypervisor's vmN when nothing is refused; the modules'
//! VMs follow. An initrd that is not a bundle is ignored with a message.
//!
//! Every VM is checked before anything is copied (`crate::bootcheck`: its
//! inputs against RAM, the hypervisor, the host DTB, reserved memory and each
//! other; then its memory, its kernel's header and layout, its device tree).
//! A VM that fails is refused with one line naming its source
//! (`hv: not starting the guest from bundle vm1/: ...`) and the others start.
//! VM numbers are given to the VMs that start, in order; each start says where
//! it came from (`vm0: from bundle vm1/`).

use super::vcpu::{RunState, Vcpu};
use super::{sched, vm};
use crate::addr::{Ipa, PhysAddr, Range};
use crate::arch::{self, cache};
use crate::bootcheck::{self, Refusal, Region, Size, What};
use crate::dt::{self, GuestSpec, MachineInfo, ModuleKind};
use crate::{bundle, cpreg, guest_image, memplan, println, stage2};
use alloc::vec::Vec;
use core::fmt;
use spin::Once;

/// What guests may see of this CPU, per VM option: index bit 0 a virtual PMU
/// (`hv.pmu`), bit 1 memory tagging (`hv.mte`).
static GUEST_IDS: [Once<cpreg::GuestIds>; 4] = [const { Once::new() }; 4];

/// Why one VM cannot start; printed after its source.
enum Refused<'a> {
    /// One of its inputs lies where it must not.
    Input(Refusal<'a>),
    /// It cannot have the memory it asks for.
    Memory(memplan::PlanError),
    /// Its kernel does not fit or its header is absurd.
    Kernel(guest_image::LayoutError),
    /// Its device tree cannot be written.
    GuestDtb(dt::DtError),
    /// Its stage-2 tables cannot be built (the heap is full).
    Stage2,
    /// Copying into its RAM found no RAM where the layout put something.
    Copy,
    /// More VMs than the hypervisor runs.
    TooMany,
}

impl fmt::Display for Refused<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Input(r) => write!(f, "{r}"),
            Self::Memory(e) => write!(f, "{e}"),
            Self::Kernel(e) => write!(f, "{e}"),
            Self::GuestDtb(e) => write!(f, "its device tree: {e}"),
            Self::Stage2 => write!(
                f,
                "its stage-2 tables do not fit the hypervisor's heap (too many VMs or chunks)"
            ),
            Self::Copy => write!(f, "its RAM does not cover the layout (internal error)"),
            Self::TooMany => write!(f, "at most {} VMs run at once", dt::MAX_GUESTS),
        }
    }
}

fn refuse(spec: &GuestSpec<'_>, why: &Refused<'_>) {
    println!("hv: not starting the guest from {}: {why}", spec.source);
}

fn phys_slice(r: Range<PhysAddr>) -> &'static [u8] {
    // SAFETY: only called for ranges that bootcheck found inside one RAM bank
    // (identity-mapped) and clear of the hypervisor; they are excluded from
    // every VM's memory, so nothing writes them while we read.
    unsafe { core::slice::from_raw_parts(r.start.0 as *const u8, r.size as usize) }
}

/// Copies `data` into guest RAM at `ipa` and cleans it to the point of coherency (the
/// guest starts with its MMU and caches off).
fn copy_to_guest(ram: &memplan::GuestRam, ipa: Ipa, data: &[u8]) -> bool {
    let mut done = 0;
    while done < data.len() {
        let Some((pa, contiguous)) = ram.translate(ipa.add(done as u64)) else {
            return false;
        };
        let n = (data.len() - done).min(contiguous as usize);
        // SAFETY: [pa, pa + n) is this VM's RAM, identity-mapped, not yet running.
        unsafe { core::ptr::copy_nonoverlapping(data[done..].as_ptr(), pa.0 as *mut u8, n) };
        cache::clean_inval_dcache(pa.0 as usize, n);
        done += n;
    }
    true
}

/// What the hypervisor and the firmware keep: the image (code, data, .bss and
/// the padding to its 2 MiB end), the stacks, the heap, the host DTB, reserved
/// memory.
fn fixed_regions(info: &MachineInfo, dtb: Range<PhysAddr>) -> Vec<Region<'static>> {
    let (img_start, img_end) = arch::image_range();
    let (stacks_start, stacks_end) = arch::stacks_range();
    let (heap_start, heap_end) = arch::heap_range();
    let span = |what, start: usize, end: usize| {
        Region::new(what, start as u64, end.saturating_sub(start) as u64)
    };
    let mut v = alloc::vec![
        span(What::HvImage, img_start, stacks_start),
        span(What::HvStacks, stacks_start, stacks_end),
        span(What::HvImage, stacks_end, heap_start),
        span(What::HvHeap, heap_start, heap_end),
        span(What::HvImage, heap_end, img_end),
        Region {
            range: dtb,
            what: What::HostDtb,
        },
    ];
    v.retain(|r| r.range.size > 0);
    v.extend(info.reserved.iter().map(|r| Region {
        range: r.range,
        what: What::Reserved(r.kind),
    }));
    v
}

/// The bundle's VMs, if the boot loader's initrd is a bundle (appended to
/// `specs`; refused directories are printed). Returns the initrd's region, which
/// stays occupied whatever it holds. The boot loader's `/memreserve/` entry for
/// the initrd itself (U-Boot's `booti` adds one) is dropped from `fixed`: it is
/// the initrd's, and the initrd stays taken anyway.
fn bundle_guests(
    dtb: &'static [u8],
    ram: &[Range<PhysAddr>],
    fixed: &mut Vec<Region<'static>>,
    specs: &mut Vec<GuestSpec<'static>>,
) -> Option<Region<'static>> {
    let initrd = match dt::boot_initrd(dtb) {
        Ok(Some(r)) => r,
        Ok(None) => return None,
        Err(e) => {
            println!("hv: ignoring the boot loader's initrd: its /chosen properties: {e}");
            return None;
        }
    };
    fixed.retain(|r| !bootcheck::reserves_initrd(r, initrd));
    let region = Region {
        range: initrd,
        what: What::Initrd,
    };
    if let Err(r) = bootcheck::check(&region, ram, fixed.iter()) {
        println!("hv: ignoring the boot loader's initrd: {r}");
        return Some(region);
    }
    let at = initrd.start;
    let size = Size(initrd.size);
    match bundle::parse(phys_slice(initrd)) {
        Err(e) if e.is_not_a_bundle() => {
            println!("hv: ignoring the boot loader's initrd at {at} ({size}): {e}");
        }
        Err(e) => println!("hv: no guest starts from the initrd at {at} ({size}): {e}"),
        Ok(b) => {
            println!(
                "hv: guest bundle at {at} ({size}): {} VM director{}",
                b.vms.len() + usize::from(b.beyond.is_some()),
                if b.vms.len() == 1 { "y" } else { "ies" }
            );
            for name in &b.ignored {
                println!("hv: bundle: ignoring '{name}' (not in a vmN/ directory)");
            }
            if b.ignored_count > b.ignored.len() {
                println!(
                    "hv: bundle: ignoring {} more entries outside vmN/ directories",
                    b.ignored_count - b.ignored.len()
                );
            }
            for vm in &b.vms {
                match vm {
                    Ok(vm) => match dt::bundle_guest(vm, at) {
                        Some(spec) => specs.push(spec),
                        None => println!(
                            "hv: not starting the guest from bundle vm{}/: its files lie beyond the address space",
                            vm.index
                        ),
                    },
                    Err(e) => println!("hv: not starting the guest from bundle {e}"),
                }
            }
            if let Some(e) = b.beyond_error() {
                println!("hv: not starting the guest from bundle {e}");
            }
        }
    }
    Some(region)
}

/// The regions of a spec's inputs, with what each is.
fn inputs_of(spec: &GuestSpec<'static>) -> heapless::Vec<Region<'static>, 3> {
    let mut v = heapless::Vec::new();
    let what = |kind, file| match spec.source {
        dt::Source::Bundle { index } => What::BundleFile { vm: index, file },
        _ => What::Module(kind),
    };
    let _ = v.push(Region {
        range: spec.kernel,
        what: what(ModuleKind::Kernel, "kernel"),
    });
    if let Some(r) = spec.ramdisk {
        let _ = v.push(Region {
            range: r,
            what: what(ModuleKind::Ramdisk, "initrd"),
        });
    }
    if let Some(r) = spec.dtb {
        let _ = v.push(Region {
            range: r,
            what: What::Module(ModuleKind::DeviceTree),
        });
    }
    v
}

/// Builds every VM the boot inputs describe; see the module docs. Prints why
/// each refused one is refused; returns the others, numbered in order.
#[allow(clippy::too_many_arguments)]
pub fn build_vms(
    info: &MachineInfo<'static>,
    dtb: &'static [u8],
    dtb_pa: usize,
    cpus: usize,
    uart_ipa: u64,
    console_path: &str,
    debug_path: Option<&str>,
) -> Vec<vm::Vm> {
    let ram = info.memory.as_slice();
    let mut fixed = fixed_regions(info, Range::new(PhysAddr(dtb_pa as u64), dtb.len() as u64));
    let mut specs: Vec<GuestSpec<'static>> = Vec::new();
    let initrd = bundle_guests(dtb, ram, &mut fixed, &mut specs);
    match dt::guests(info) {
        Ok(g) => specs.extend(g),
        Err(e) => println!("hv: no guest starts from the /chosen modules: {e}"),
    }
    if specs.is_empty() {
        println!(
            "hv: cannot start guests: no guest kernel in /chosen and no guest bundle (QEMU: -device guest-loader,kernel=... or -initrd bundle.cpio)"
        );
        return Vec::new();
    }

    // Where every input lies, checked all against all.
    let mut inputs: Vec<Region<'static>> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        for r in inputs_of(s) {
            inputs.push(r);
            owner.push(i);
        }
    }
    let mut ok: Vec<bool> = alloc::vec![true; specs.len()];
    for (result, &i) in bootcheck::check_inputs(ram, &fixed, initrd.as_ref(), &inputs)
        .into_iter()
        .zip(&owner)
    {
        if let Err(r) = result {
            if ok[i] {
                refuse(&specs[i], &Refused::Input(r));
            }
            ok[i] = false;
        }
    }

    // Memory for those left: everything above stays taken, refused or not.
    let mut taken: Vec<Range<PhysAddr>> = fixed.iter().map(|r| r.range).collect();
    taken.extend(inputs.iter().map(|r| r.range));
    taken.extend(initrd.map(|r| r.range));
    // The snapshot pool (hv.snapshot_pool=SIZE) is RAM no guest gets.
    super::snapshot::reserve_pool(info.bootargs, ram, &mut taken);
    let chosen: Vec<&GuestSpec<'static>> = specs
        .iter()
        .zip(&ok)
        .filter_map(|(s, &ok)| ok.then_some(s))
        .collect();
    let requests: Vec<Option<u64>> = chosen.iter().map(|s| s.memory).collect();
    // Passthrough: which devices each VM gets (refusals and notes are printed),
    // and 1:1 RAM for the VMs whose devices may DMA. Planned for the VMs left,
    // in their order; renumbered below if one of them is refused later.
    let configs: Vec<Option<&'static str>> = chosen.iter().map(|s| s.passthrough).collect();
    let partials: Vec<Option<&'static [u8]>> =
        chosen.iter().map(|s| s.dtb.map(phys_slice)).collect();
    super::passthrough::prepare(
        info,
        dtb,
        chosen.len(),
        &configs,
        &partials,
        console_path,
        debug_path,
    );
    let direct = super::passthrough::direct_map(chosen.len());
    let plans = match memplan::plan_direct(ram, &taken, &requests, &direct) {
        Ok(p) => p,
        Err(e) => {
            println!("hv: cannot start guests: {e}");
            return Vec::new();
        }
    };

    // What guests may see of this CPU: the host's ID registers, sanitised once.
    let host_ids = cpreg::HostIds::read(&mut cpreg::Hw);
    let ids = core::array::from_fn(|i| {
        let policy = cpreg::IdPolicy {
            aarch32_el1: true,
            ipa_bits: stage2::IPA_BITS as u8,
            pmu_counters: if i & 1 != 0 {
                super::boot::mdcr().pmu_counters
            } else {
                0
            },
            mte: i & 2 != 0,
        };
        GUEST_IDS[i].call_once(|| cpreg::GuestIds::sanitise(&host_ids, &policy))
    });
    let hidden: heapless::Vec<&str, 1> = debug_path.into_iter().collect();
    let env = Env {
        info,
        dtb,
        cpus,
        uart_ipa,
        console_path,
        hidden: &hidden,
        ids,
    };
    let mut vms = Vec::new();
    // The passthrough plan's number (`slot`) of each VM that starts.
    let mut slots = Vec::new();
    for (slot, (spec, plan)) in chosen.into_iter().zip(plans).enumerate() {
        let built = match plan {
            Err(e) => Err(Refused::Memory(e)),
            Ok(_) if vms.len() == dt::MAX_GUESTS => Err(Refused::TooMany),
            Ok(ram) => build_one(&env, vms.len(), slot, spec, ram),
        };
        match built {
            Ok(vm) => {
                vms.push(vm);
                slots.push(slot);
            }
            Err(why) => refuse(spec, &why),
        }
    }
    super::passthrough::renumber(&slots);
    if vms.is_empty() {
        println!("hv: no guest could start: see the lines above");
    }
    cache::invalidate_icache_all();
    // SAFETY: invalidates all stage-1 and stage-2 TLB entries of every VMID before
    // any guest runs.
    unsafe { core::arch::asm!("tlbi alle1is", "dsb ish", "isb") };
    vms
}

/// What every VM is built with.
struct Env<'e> {
    info: &'e MachineInfo<'static>,
    dtb: &'static [u8],
    cpus: usize,
    uart_ipa: u64,
    console_path: &'e str,
    hidden: &'e [&'e str],
    /// Indexed as [`GUEST_IDS`].
    ids: [&'static cpreg::GuestIds; 4],
}

/// Builds VM `id` from `spec` in `ram`: everything that can fail is decided
/// before the VM's stage-2 tables, vCPUs and scheduling slots exist.
fn build_one<'s>(
    env: &Env<'_>,
    id: usize,
    slot: usize,
    spec: &GuestSpec<'s>,
    ram: memplan::GuestRam,
) -> Result<vm::Vm, Refused<'s>> {
    let nvcpus = spec.vcpus.unwrap_or(env.cpus).clamp(1, dt::MAX_VCPUS);
    // A virtual PMU: asked for (`hv.pmu`) and the host has one.
    let pmu_asked = super::boot::gives_pmu(env.info, id);
    let pmu = pmu_asked && env.ids[1].pmu_counters > 0;
    if pmu_asked && !pmu {
        println!("vm{id}: no virtual PMU: this CPU has no PMUv3 for EL1");
    }
    // Memory tagging: offered (`hv.mte`, every VM by default) and the CPU has
    // FEAT_MTE2 (tag storage); the sanitised IDs say both.
    let (mte_asked, mte_named) = super::boot::gives_mte(env.info, id);
    let mte = mte_asked && env.ids[2].features().mte;
    if mte_named && !mte {
        println!("vm{id}: no memory tagging: this CPU has no FEAT_MTE2 (tag storage)");
    }
    let ids = env.ids[pmu as usize | (mte as usize) << 1];
    let kernel = phys_slice(spec.kernel);
    let placement = guest_image::place(kernel).map_err(Refused::Kernel)?;
    let initrd = spec.ramdisk.map(phys_slice);
    let layout = guest_image::layout(&placement, initrd.map(|i| i.len() as u64), ram.ipa.size)
        .map_err(Refused::Kernel)?;
    let base = ram.ipa.start;
    let entry = base.add(layout.kernel);
    let dtb_ipa = base.add(layout.dtb);
    let initrd_range = initrd
        .zip(layout.initrd)
        .map(|(i, off)| Range::new(base.add(off), i.len() as u64));
    let guest_dtb = dt::guest_dtb(
        env.dtb,
        env.info,
        &dt::GuestDtbParams {
            vcpus: nvcpus,
            ram: ram.ipa,
            bootargs: spec.bootargs,
            initrd: initrd_range,
            console_path: env.console_path,
            hidden_paths: env.hidden,
            uart: super::boot::emulated_uart(),
            pmu,
        },
    )
    .map_err(Refused::GuestDtb)?;
    // Passthrough: the assigned devices, and every RAM range of a 1:1 VM.
    let guest_dtb =
        super::passthrough::guest_dtb(slot, guest_dtb, &ram).map_err(Refused::GuestDtb)?;
    guest_image::check_dtb(guest_dtb.len()).map_err(Refused::Kernel)?;

    // RAM no device can DMA into starts untouched: each block is zeroed on its
    // first use (guest_mem), and snapshots skip the blocks never used.
    let tracked = !super::passthrough::may_dma(slot);
    let mut s2 = stage2::Stage2Tables::new();
    let mut ipa = ram.ipa.start;
    for c in &ram.chunks {
        if tracked {
            s2.map_tracked(ipa, c.start, c.size)
        } else {
            s2.map(ipa, c.start, c.size, stage2::RAM)
        }
        .map_err(|_| Refused::Stage2)?;
        ipa = ipa.add(c.size);
    }
    // Passthrough: device pages (and a 1:1 VM's further RAM).
    super::passthrough::map_into(slot, &mut s2, &ram, env.info, env.uart_ipa);
    let mut copy = |ipa: Ipa, data: &[u8]| {
        super::guest_mem::touch_range_in(&mut s2, mte, ipa.0, data.len() as u64);
        copy_to_guest(&ram, ipa, data)
    };
    let copied = copy(entry, kernel)
        && initrd
            .zip(initrd_range)
            .is_none_or(|(i, r)| copy(r.start, i))
        && copy(dtb_ipa, &guest_dtb);
    if !copied {
        return Err(Refused::Copy);
    }

    println!("vm{id}: from {}", spec.source);
    let vttbr = s2.vttbr((id + 1) as u8);
    let vcpus: Vec<Vcpu> = (0..nvcpus)
        .map(|j| Vcpu::new(id, j, (j + id) % env.cpus, ids))
        .collect();
    for v in &vcpus {
        sched::assign(id, v.index, v.pcpu);
    }
    let aarch32 = placement.kind == guest_image::Kind::ZImage;
    // arm64: x0 = DTB. 32-bit ARM Linux: r0 = 0, r1 = ~0 (no machine number), r2 = DTB.
    let args = if aarch32 {
        [0, 0xffff_ffff, dtb_ipa.0]
    } else {
        [dtb_ipa.0, 0, 0]
    };
    vcpus[0].reset(entry.0, args, aarch32);
    // Passthrough: a VM whose device assignment was refused is built but not
    // started: it would run without the devices it was given.
    let refused = super::passthrough::refused(slot);
    if !refused {
        vcpus[0].set_state(RunState::Runnable);
    }
    println!(
        "vm{id}: {nvcpus} vCPU(s), {} MiB RAM at IPA {:#x} in {} chunk(s), kernel {} at {:#x} ({}), dtb at {:#x}{}",
        ram.ipa.size >> 20,
        ram.ipa.start.0,
        ram.chunks.len(),
        placement.kind,
        entry.0,
        Size(kernel.len() as u64),
        dtb_ipa.0,
        match initrd_range {
            Some(r) => alloc::format!(", initrd at {:#x} ({})", r.start.0, Size(r.size)),
            None => alloc::string::String::new(),
        }
    );
    // Where its RAM is in host memory (the isolation test probes the other VMs' RAM).
    let mut pa = alloc::string::String::new();
    for c in &ram.chunks {
        let sep = if pa.is_empty() { "" } else { ", " };
        pa.push_str(&alloc::format!(
            "{sep}{:#x}-{:#x}",
            c.start.0,
            c.start.0 + c.size - 1
        ));
    }
    println!("vm{id}: RAM in host memory at {pa}");
    if let Some(args) = spec.bootargs {
        println!("vm{id}: bootargs \"{args}\"");
    }
    // A restart reloads the originals from where the boot loader put them
    // (memory kept out of every VM) and the device tree written here.
    let mut pieces = alloc::vec![crate::reboot::Piece {
        from: spec.kernel,
        to: entry,
    }];
    if let (Some(from), Some(r)) = (spec.ramdisk, initrd_range) {
        pieces.push(crate::reboot::Piece { from, to: r.start });
    }
    let reload = crate::reboot::Reload {
        pieces,
        dtb: guest_dtb,
        dtb_ipa,
        entry: entry.0,
        args,
        aarch32,
    };
    let reload = match reload.check(&ram) {
        Ok(()) => Ok(reload),
        Err(e) => {
            println!("vm{id}: a reset will power it off: {e}");
            Err(alloc::format!("{e}"))
        }
    };
    let vm = vm::Vm::new(
        id,
        aarch32,
        ram,
        s2,
        vttbr,
        vcpus,
        env.uart_ipa,
        super::boot::traces_vm_regs(env.info, id),
        super::reset::VmReset::new(reload),
        if pmu { ids.pmu_counters } else { 0 },
        mte,
    );
    if mte {
        println!(
            "vm{id}: memory tagging: FEAT_MTE{}",
            (ids.get(cpreg::Reg::ID_AA64PFR1_EL1) >> 8) & 0xf
        );
    }
    if pmu {
        println!(
            "vm{id}: virtual PMU: PMUv3, {} event counters",
            ids.pmu_counters
        );
    }
    if refused {
        vm.power_off("not started: its device assignment was refused");
    }
    Ok(vm)
}
