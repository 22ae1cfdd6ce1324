//! `reboot`: a guest that resets itself as soon as it boots, for the VM restart
//! tests (a reset loop the hypervisor must rate-limit).
//!
//! Prints `reboot: boot`, then asks for a reset: PSCI SYSTEM_RESET, or with
//! `reset2` in the bootargs SYSTEM_RESET2, after checking that a vendor reset
//! type is refused (`reboot: vendor reset type refused`). A reset that returns
//! is a failure.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use rt::psci::{self, PsciError};
use rt::{Boot, Fail, fail, say};

rt::guest!("reboot", main);

fn main(boot: &Boot) -> Result<(), Fail> {
    say!("boot");
    if boot
        .bootargs()
        .split_ascii_whitespace()
        .any(|a| a == "reset2")
    {
        match psci::system_reset2(0x8000_0001, 0) {
            Err(PsciError::Call(psci::Error::InvalidParameters)) => {
                say!("vendor reset type refused")
            }
            other => return Err(fail!("SYSTEM_RESET2 vendor type: {other:?}")),
        }
        psci::system_reset2(0, 0).map_err(|e| fail!("SYSTEM_RESET2 returned: {e:?}"))?;
    } else {
        psci::system_reset().map_err(|e| fail!("SYSTEM_RESET returned: {e:?}"))?;
    }
    Err(fail!("the reset returned"))
}
