//! Embeds the eBPF object built by `cargo xtask build-ebpf`. Without it the build stops with one
//! line saying so: a binary with an empty stub in place of the programs would fail later, at runtime.
use std::{env, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=HA_EBPF_OBJECT");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    let object = match env::var_os("HA_EBPF_OBJECT") {
        Some(path) => PathBuf::from(path),
        None => {
            let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
            let target = env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| manifest.join("..").join("target"));
            target
                .join("bpfel-unknown-none")
                .join("release")
                .join("ha-ebpf")
        }
    };
    println!("cargo:rerun-if-changed={}", object.display());
    if !object.is_file() {
        eprintln!(
            "error: eBPF object {} not found: run `cargo xtask build-ebpf` first",
            object.display()
        );
        std::process::exit(1);
    }
    println!("cargo:rustc-env=HA_EBPF_OBJECT={}", object.display());
}
