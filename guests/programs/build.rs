//! Links every guest binary as a position-independent executable at address 0
//! with the runtime's linker script; `rt`'s start code applies the dynamic
//! relocations for wherever the loader put the Image.

use std::env;

fn main() {
    let script = env::var("DEP_GUEST_RT_LINKER_SCRIPT").expect("rt publishes its linker script");
    println!("cargo:rerun-if-changed={script}");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        for arg in [
            &format!("-T{script}"),
            "--pie",
            "-znotext",
            "--no-dynamic-linker",
            "-zseparate-loadable-segments",
        ] {
            println!("cargo:rustc-link-arg-bins={arg}");
        }
    }
}
