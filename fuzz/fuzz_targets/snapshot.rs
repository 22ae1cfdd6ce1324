//! Snapshots (`src/snapshot/`, and the vGIC state they carry, `vgic::Vgic::import`)
//! as `hv::snapshot::restore` takes them: arbitrary bytes are decoded, checked
//! against a VM built to fit the snapshot (its vCPU count, RAM layout and CPU
//! model: the ID registers it lists), imported, then exported again as
//! `hv::snapshot::capture` would.
//!
//! Each input is tried as it is and with its CRC-32s made right (every frame's in
//! format 2, the one at the end in format 1) (else nearly every
//! mutation would stop at the checksum).
//!
//! Invariants:
//! * no panic, and no hang: decoding walks RAM runs, never pages;
//! * a refusal is by name, in words: its message is printable ASCII (what it
//!   quotes from the file escaped) with no Rust debug output;
//! * an imported state re-exports identically: exporting what an import produced,
//!   importing that and exporting again gives the same bytes; and when the
//!   snapshot names only state registers (no AArch32 views, written through), the
//!   re-export holds exactly its register list, general and FP registers, vGIC
//!   state and RAM (page by page);
//! * after a vGIC state import, the model can flush and fold every vCPU.
#![no_main]

use hypervisor::cpreg::{
    lookup_kvm, mpidr_for_vcpu, Flags, GuestIds, HostIds, IdPolicy, Reg, SysRegFile,
};
use hypervisor::snapshot::{
    decode, encode, frame, prepare_restore, CpuState, Header, Parsed, Target, PAGE, VERSION,
};
use hypervisor::vgic::{Lr, Version, Vgic};
use libfuzzer_sys::fuzz_target;

/// The largest RAM a fuzzed VM gets: a snapshot of a bigger one is still decoded
/// and imported, but its pages are not copied out (that would be a hang, not a bug).
const MAX_RAM: u64 = 1 << 20;

/// A refusal is words a console can show: printable ASCII only (what it quotes
/// from the file is escaped), and outside its quotes no Rust debug output.
fn in_words(msg: &str) {
    assert!(
        msg.bytes().all(|b| (b' '..=b'~').contains(&b)),
        "unprintable message: {msg:?}"
    );
    let unquoted: String = msg.split('\'').step_by(2).collect();
    for debug in [
        "Some(",
        "None",
        "{",
        "}",
        "Mismatch",
        "ConstMismatch",
        "NoRaw",
    ] {
        assert!(
            !unquoted.contains(debug),
            "debug output in a message: {msg}"
        );
    }
}

/// A VM the snapshot fits: its CPU model is what the snapshot's first vCPU lists.
fn vm_for(p: &Parsed) -> Vec<SysRegFile> {
    let mut host = HostIds::zeroed();
    host.set(Reg::MIDR_EL1, p.header.midr);
    for &(index, value) in p.cpus.first().map_or(&[][..], |c| &c.regs[..]) {
        if let Some(r) = lookup_kvm(index) {
            if r.entry().is(Flags::ID) && r != Reg::MIDR_EL1 && r != Reg::MPIDR_EL1 {
                host.set(r, value);
            }
        }
    }
    let ids = GuestIds::sanitise(&host, &IdPolicy::default());
    (0..p.header.vcpus as usize)
        .map(|i| SysRegFile::new(&ids, i))
        .collect()
}

/// A vGIC of the version, vCPU and SPI count the state's own header names.
fn gic_for(state: &[u8], vcpus: usize) -> Option<Vgic> {
    let version = match *state.get(4)? {
        2 => Version::V2,
        3 => Version::V3,
        _ => return None,
    };
    let cpus = u32::from_le_bytes(state.get(5..9)?.try_into().ok()?) as usize;
    let spis = u32::from_le_bytes(state.get(9..13)?.try_into().ok()?) as usize;
    if cpus != vcpus || spis == 0 || spis > 988 || !spis.is_multiple_of(32) {
        return None;
    }
    // As hv::vcpu: the guest MPIDR's affinity fields.
    let mpidrs: Vec<u64> = (0..vcpus)
        .map(|i| mpidr_for_vcpu(i) & 0xff_00ff_ffff)
        .collect();
    Some(Vgic::new(version, &mpidrs, spis))
}

/// Imports `bytes`; on success, the bytes of the state exported from what was
/// imported (registers, vGIC, RAM).
fn import_export(bytes: &[u8]) -> Option<Vec<u8>> {
    let p = match decode(bytes) {
        Ok(p) => p,
        Err(e) => {
            in_words(&e.to_string());
            return None;
        }
    };
    // A snapshot with pages as booted (`D`, `B`, `X` frames) needs the VM's
    // boot images, which `hv::snapshot::restore` checks against its own: this
    // target has none, so it stops at the decode.
    if !p.depends.is_empty() {
        return None;
    }
    let current = vm_for(&p);
    let target = Target {
        midr: p.header.midr,
        ram_ipa: p.header.ram_ipa,
        ram_size: p.header.ram_size,
        sysregs: &current,
    };
    let files = match prepare_restore(&p, &target) {
        Ok(f) => f,
        Err(e) => {
            in_words(&e.to_string());
            return None;
        }
    };
    assert_eq!(files.len(), p.cpus.len());
    let gic = match p.gic {
        None => None,
        Some(state) => {
            // As hv::vgic::import: a state for another GIC shape is refused.
            let mut g = gic_for(state, p.cpus.len())?;
            g.import(state).ok()?;
            // The imported model works: a flush and a fold of every vCPU (the guest
            // not touching its list registers) leave it as it was.
            let imported = g.export();
            for v in 0..g.vcpus() {
                let mut lrs = [Lr::INVALID; 4];
                let f = g.flush(v, &mut lrs);
                assert!(f.count <= lrs.len());
                g.fold(v, &lrs[..f.count]);
            }
            let after = g.export();
            if after != imported {
                let at = after.iter().zip(&imported).position(|(a, b)| a != b);
                panic!(
                    "a flush and fold changed the vGIC state (first difference at byte {at:?} of {}; \
                     {} vCPUs)",
                    after.len(),
                    g.vcpus()
                );
            }
            Some(imported)
        }
    };
    if p.header.ram_size > MAX_RAM {
        return None;
    }
    let mut pages = vec![0u8; p.header.ram_size as usize];
    p.for_each_page(|ipa, page| {
        let off = (ipa - p.header.ram_ipa) as usize;
        if let Some(d) = page {
            pages[off..off + PAGE].copy_from_slice(d);
        }
    });
    let cpus: Vec<CpuState> = p
        .cpus
        .iter()
        .zip(&files)
        .map(|(c, f)| CpuState {
            regs: f.export().collect(),
            ..c.clone()
        })
        .collect();
    // Only state, no views: the register lists come back as they went in.
    let views = p
        .cpus
        .iter()
        .flat_map(|c| &c.regs)
        .any(|&(i, _)| lookup_kvm(i).is_some_and(|r| r.entry().is(Flags::ALIAS)));
    if !views {
        assert_eq!(cpus, p.cpus, "imported registers re-export differently");
    }
    let mut out = Vec::new();
    encode(
        &p.header,
        &cpus,
        gic.as_deref(),
        |ipa, page| {
            let off = (ipa - p.header.ram_ipa) as usize;
            page.copy_from_slice(&pages[off..off + PAGE]);
        },
        &mut out,
    );
    // What was exported decodes to the same VM, in the current format whatever
    // version the input was.
    let q = decode(&out).expect("an export decodes");
    assert_eq!(
        q.header,
        Header {
            version: VERSION,
            ..p.header
        }
    );
    assert_eq!(q.cpus, cpus);
    assert_eq!(q.gic, gic.as_deref());
    let mut back = vec![0u8; pages.len()];
    q.for_each_page(|ipa, page| {
        let off = (ipa - q.header.ram_ipa) as usize;
        if let Some(d) = page {
            back[off..off + PAGE].copy_from_slice(d);
        }
    });
    assert!(back == pages, "RAM changed in a re-export");
    Some(out)
}

fn round_trips(data: &[u8]) {
    if let Some(once) = import_export(data) {
        let twice = import_export(&once).expect("an exported snapshot imports again");
        assert!(once == twice, "an imported state re-exports differently");
    }
}

fuzz_target!(|data: &[u8]| {
    round_trips(data);
    // Almost every mutation breaks the CRC-32, which stops decoding at once: the
    // same bytes with the checksum made right reach the structure checks, the
    // register import and the vGIC state.
    // Format 2 (what `encode` writes) checksums each frame: all of them are made
    // right; format 1 has one CRC-32 at the end.
    if data.len() >= 12 {
        let mut fixed = data.to_vec();
        if fixed[8..].starts_with(&frame::SYNC) {
            frame::fix_checksums(&mut fixed[8..]);
        } else {
            let n = fixed.len();
            let crc = crc32fast::hash(&fixed[..n - 4]);
            fixed[n - 4..].copy_from_slice(&crc.to_le_bytes());
        }
        if fixed != data {
            round_trips(&fixed);
        }
    }
});
