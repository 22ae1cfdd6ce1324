//! The guest-bundle parser (`hypervisor::bundle`): arbitrary bytes, as a boot
//! loader's initrd could hold, give a bundle or a named error, never a panic.
//! Also holds the parser to what the hypervisor relies on when it turns a
//! bundle into VMs: every file is the archive's own bytes at the offset it
//! reports (the hypervisor computes physical addresses from offsets), the VMs
//! come in numeric order, and every message prints.
#![no_main]

use hypervisor::bundle::{self, config, cpio};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The cpio layer alone: entries lie inside the archive.
    for e in cpio::entries(data) {
        match e {
            Ok(e) => {
                assert!(e.data_offset + e.data.len() <= data.len());
                assert_eq!(&data[e.data_offset..e.data_offset + e.data.len()], e.data);
                assert!(!e.name.is_empty());
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    match bundle::parse(data) {
        Ok(b) => {
            assert!(b.vms.len() <= bundle::MAX_VMS);
            let mut previous = None;
            for vm in &b.vms {
                let index = match vm {
                    Ok(vm) => {
                        for m in std::iter::once(vm.kernel).chain(vm.initrd) {
                            assert!(!m.data.is_empty());
                            assert_eq!(&data[m.offset..m.offset + m.data.len()], m.data);
                        }
                        if let Some(c) = vm.cmdline {
                            assert!(!c.contains('\n') && !c.contains('\0') && !c.is_empty());
                        }
                        if let Some(n) = vm.config.cpus {
                            assert!((1..=config::MAX_CPUS).contains(&n));
                        }
                        if let Some(m) = vm.config.mem {
                            assert!(m > 0 && m % (2 << 20) == 0);
                        }
                        vm.index
                    }
                    Err(e) => {
                        let _ = e.to_string();
                        e.index
                    }
                };
                assert!(previous.is_none_or(|p| p < index));
                previous = Some(index);
            }
            if let Some(e) = b.beyond_error() {
                assert!(e.index as usize >= bundle::MAX_VMS);
                let _ = e.to_string();
            }
            for n in &b.ignored {
                let _ = n.to_string();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    // The config parser on the same bytes, as if they were a vmN/config file.
    match config::parse(data) {
        Ok(c) => {
            assert!(c.passthrough.is_none_or(|p| !p.is_empty()));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
