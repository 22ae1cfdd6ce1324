//! Publishes the path of the guest linker script to dependent build scripts (as
//! `DEP_GUEST_RT_LINKER_SCRIPT`): the script and the start code in `src/start.rs`
//! share symbol names, so they live in the same crate.

use std::{env, path::PathBuf};

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let script = dir.join("guest.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:linker_script={}", script.display());
}
