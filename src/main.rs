//! The bare-metal binary: the boot assembly in `arch` jumps to `hypervisor::hv::main`.
//! On the host this file builds to an empty program so `cargo test` can build the
//! workspace; the hypervisor itself only exists for `target_os = "none"`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use hypervisor as _;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the hypervisor is a bare-metal AArch64 image: build it with `cargo xtask build`");
    std::process::exit(2);
}
