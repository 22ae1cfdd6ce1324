//! Real Linux guests: Debian bookworm's arm64 cloud kernel and a busybox
//! initramfs, fetched with the system's `apt-get`/`dpkg-deb`/`gzip`/`cpio` and
//! cached under `target/linux/` (DESIGN.md section 7).
//!
//! `fetch()` resolves `linux-image-cloud-arm64` (the meta-package) to the
//! `linux-image-<release>-cloud-arm64` it depends on, downloads that and
//! `busybox-static` for arm64 through a private apt configuration (its own
//! `apt.conf`, sources, lists, cache and empty dpkg status under
//! `target/linux/apt/`; the system's apt configuration is neither read for
//! sources nor changed), and produces:
//!
//! - `target/linux/Image`: the uncompressed arm64 Image (magic `ARM\x64` at 56);
//! - `target/linux/initramfs.cpio`: a newc cpio with `/bin/busybox`, symlinks
//!   for the usual applets, `/dev`, `/proc`, `/sys` and `/init`.
//!
//! A stamp (`target/linux/stamp`) records the resolved versions; when it and
//! both files exist, `fetch()` returns at once without touching the network.
//!
//! # What `/init` prints (the QEMU tests assert on these lines)
//!
//! On the guest console (`console=ttyAMA0`), in this order:
//!
//! ```text
//! linux-guest: init running
//! linux-guest: uname: Linux (none) 6.1.0-56-cloud-arm64 #1 SMP Debian 6.1.192-2 (...) aarch64 GNU/Linux
//! linux-guest: cpus=N
//! linux-guest: memtotal_kb=M
//! linux-guest: PASS
//! ```
//!
//! then `poweroff -f` (PSCI SYSTEM_OFF: bare QEMU exits). `N` is the number of
//! `processor` lines in `/proc/cpuinfo`, `M` the `MemTotal` of
//! `/proc/meminfo` in KiB. The `uname:` line is the output of `uname -a`; its
//! third word equals [`LinuxGuest::version`]. Recommended kernel command line:
//! `console=ttyAMA0 panic=-1` (with QEMU `-no-reboot`, a panic ends QEMU).
//!
//! # Devices (passthrough tests and the benchmark)
//!
//! The cloud kernel builds its virtio drivers as modules (ext4 and the PL031
//! RTC are built in). The initramfs carries [`MODULES`] from the same kernel
//! package under `/lib/modules/`, and `/etc/modules` lists them in dependency
//! order, worked out here from each module's `.modinfo` `depends=`. With
//! `linux-guest.devices` on the kernel command line, `/init` loads them and,
//! before `PASS`, reports what it finds (each line prefixed `linux-guest: `):
//!
//! ```text
//! modules loaded: virtio_ring virtio virtio_mmio virtio_blk failover net_failover virtio_net
//! virtio: virtio0 id=2 at a003e00.virtio_mmio        (one line per virtio device)
//! disk: mounted /dev/vda
//! disk: read hello.txt: <its first line>
//! disk: wrote from-guest.txt: <TOKEN>                 (linux-guest.token=TOKEN)
//! disk: unmounted
//! rtc: <seconds since the epoch> (<hwclock's date>)
//! net: eth0 lease <IP> from <server>
//! interrupts: <INTID> <count> <name>                  (virtio and rtc lines of /proc/interrupts)
//! ```
//!
//! or `disk: none`, `rtc: none`, `net: none`, `net: no lease`. With
//! `linux-guest.bench` instead, it mounts the disk, prints
//! `bench: ready`, waits for a line on the console (the benchmark reads the
//! hypervisor's counters meanwhile), copies `/big` to `/dev/null` with
//! `dd bs=1M`, prints `bench: dd <dd's records line> in <N> ns` (the kernel's
//! clock from `/proc/timer_list` around the copy), the virtio interrupt count
//! before and after (`bench: irqs <before> <after>`), `bench: done`, waits for
//! another line, and powers off.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A fetched Linux guest.
pub struct LinuxGuest {
    /// Uncompressed arm64 Image (`target/linux/Image`).
    pub kernel: PathBuf,
    /// Busybox initramfs, newc cpio (`target/linux/initramfs.cpio`).
    pub initrd: PathBuf,
    /// Kernel release as `uname -r` prints it, e.g. `6.1.0-56-cloud-arm64`.
    pub version: String,
}

/// Debian suite and mirrors. Package versions are never hard-coded: they are
/// resolved from the meta-package at fetch time.
pub(crate) const SUITE: &str = "bookworm";
pub(crate) const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
pub(crate) const SECURITY_MIRROR: &str = "http://deb.debian.org/debian-security";
pub(crate) const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
const META_PACKAGE: &str = "linux-image-cloud-arm64";
const BUSYBOX_PACKAGE: &str = "busybox-static";

/// Bump when the initramfs recipe (below) changes: the cache is rebuilt.
const RECIPE: u32 = 3;

/// Applets linked to `/bin/busybox` (busybox `--install` cannot run on x86).
const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "mount", "umount", "uname", "poweroff", "reboot", "halt", "ls", "grep",
    "sleep", "mkdir", "dmesg", "sync", "ps", "free", "head", "tail", "wc", "true", "false", "test",
    "insmod", "lsmod", "dd", "ip", "ifconfig", "route", "udhcpc", "hwclock", "date", "cut", "tr",
    "basename", "readlink", "cp", "rm", "touch", "printf",
];

/// Kernel modules the initramfs carries (the cloud kernel's virtio drivers:
/// DESIGN.md section 7), by path under `lib/modules/<release>/kernel/`.
pub const MODULES: &[&str] = &[
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio_mmio.ko",
    "drivers/block/virtio_blk.ko",
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
];

const INIT_SCRIPT: &str = r#"#!/bin/sh
# Written by xtask/src/linux.rs: the QEMU tests assert on the lines below.
export PATH=/bin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /tmp
echo "linux-guest: init running"
echo "linux-guest: uname: $(uname -a)"
echo "linux-guest: cpus=$(grep -c '^processor' /proc/cpuinfo)"
while read key value rest; do
    if [ "$key" = "MemTotal:" ]; then echo "linux-guest: memtotal_kb=$value"; fi
done </proc/meminfo
cmdline=" $(cat /proc/cmdline) "
load_modules() {
    loaded=""
    for m in $(cat /etc/modules); do
        if insmod "/lib/modules/$m.ko"; then loaded="$loaded $m"; else echo "linux-guest: insmod $m failed"; fi
    done
    echo "linux-guest: modules loaded:$loaded"
}
devices() {
    load_modules
    for d in /sys/bus/virtio/devices/*; do
        [ -e "$d" ] || continue
        echo "linux-guest: virtio: $(basename "$d") id=$(($(cat "$d/device"))) at $(basename "$(readlink -f "$d/..")")"
    done
    if [ -b /dev/vda ] && mkdir -p /mnt && mount -t ext4 /dev/vda /mnt; then
        echo "linux-guest: disk: mounted /dev/vda"
        if [ -f /mnt/hello.txt ]; then
            read -r line </mnt/hello.txt
            echo "linux-guest: disk: read hello.txt: $line"
        fi
        token=""
        for w in $cmdline; do
            case "$w" in linux-guest.token=*) token="${w#linux-guest.token=}" ;; esac
        done
        echo "$token" >/mnt/from-guest.txt && sync && echo "linux-guest: disk: wrote from-guest.txt: $token"
        umount /mnt && echo "linux-guest: disk: unmounted"
    else
        echo "linux-guest: disk: none"
    fi
    if [ -e /sys/class/rtc/rtc0/since_epoch ]; then
        echo "linux-guest: rtc: $(cat /sys/class/rtc/rtc0/since_epoch) ($(hwclock -r -f /dev/rtc0 2>&1))"
    else
        echo "linux-guest: rtc: none"
    fi
    if ip link show eth0 >/dev/null 2>&1; then
        ip link set lo up
        ip link set eth0 up
        if udhcpc -i eth0 -n -q -f -t 10 -T 1 -s /etc/udhcpc.script >/tmp/udhcpc.log 2>&1; then
            cat /tmp/lease
        else
            echo "linux-guest: net: no lease"
            cat /tmp/udhcpc.log
        fi
    else
        echo "linux-guest: net: none"
    fi
    grep -E "virtio|rtc|pl031" /proc/interrupts | while read -r n counts; do
        echo "linux-guest: interrupts: $n $counts"
    done
}
virtio_irqs() {
    total=0
    while read -r n rest; do
        case "$rest" in *virtio*)
            for c in $rest; do case "$c" in *[!0-9]*) break ;; *) total=$((total + c)) ;; esac; done ;;
        esac
    done </proc/interrupts
    echo $total
}
now_ns() {
    while read -r a b c rest; do
        if [ "$a $b" = "now at" ]; then echo "$c"; return; fi
    done </proc/timer_list
}
bench() {
    load_modules >/dev/null
    mkdir -p /mnt && mount -t ext4 -o ro /dev/vda /mnt || echo "linux-guest: bench: no disk"
    echo "bench: ready"
    read -r go
    before=$(virtio_irqs)
    t0=$(now_ns)
    dd if=/mnt/big of=/dev/null bs=1M 2>/tmp/dd.log
    t1=$(now_ns)
    after=$(virtio_irqs)
    records=""
    while read -r l; do case "$l" in *"records out"*) records="$l" ;; esac; done </tmp/dd.log
    echo "bench: dd $records in $((t1 - t0)) ns"
    echo "bench: irqs $before $after"
    echo "bench: done"
    read -r go
}
case "$cmdline" in
    *" linux-guest.devices "*) devices ;;
    *" linux-guest.bench "*) bench ;;
esac
echo "linux-guest: PASS"
poweroff -f
"#;

/// udhcpc's event script: configures the interface and writes one line about
/// the lease to `/tmp/lease` (udhcpc itself may run it more than once).
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
# Written by xtask/src/linux.rs.
case "$1" in
    bound|renew)
        ip addr add "$ip/${mask:-24}" dev "$interface" 2>/dev/null
        echo "linux-guest: net: $interface lease $ip from ${serverid:-?}" >/tmp/lease
        ;;
esac
exit 0
"#;

/// Fetches (or returns the cached) Debian arm64 cloud kernel and busybox
/// initramfs under `<workspace_root>/target/linux/`. Idempotent.
pub fn fetch(workspace_root: &Path) -> Result<LinuxGuest, String> {
    let dir = workspace_root.join("target").join("linux");
    let kernel = dir.join("Image");
    let initrd = dir.join("initramfs.cpio");
    let stamp = dir.join("stamp");

    // Cache hit: no network.
    if let Some(version) = read_stamp(&stamp) {
        if kernel.is_file() && initrd.is_file() {
            return Ok(LinuxGuest {
                kernel,
                initrd,
                version,
            });
        }
    }

    for tool in [
        "apt-get",
        "apt-cache",
        "apt-config",
        "dpkg-deb",
        "gzip",
        "cpio",
    ] {
        if !tool_exists(tool) {
            return Err(format!(
                "fetch-linux: `{tool}` not found (needs a Debian host with apt, dpkg, gzip and cpio; \
                 `cargo xtask setup` installs cpio)"
            ));
        }
    }
    if !Path::new(KEYRING).is_file() {
        return Err(format!(
            "fetch-linux: {KEYRING} missing (install debian-archive-keyring)"
        ));
    }

    // Invalidate the cache before touching Image or initramfs.cpio.
    if stamp.exists() {
        fs::remove_file(&stamp)
            .map_err(|e| format!("fetch-linux: removing {}: {e}", stamp.display()))?;
    }
    let apt = Apt::prepare(&dir.join("apt"))?;
    eprintln!("fetch-linux: updating private arm64 package lists ({SUITE})");
    apt.run("apt-get", &["-q", "--error-on=any", "update"], None)?;

    // Resolve the meta-package to the versioned kernel package.
    let meta = apt.show(META_PACKAGE)?;
    let kernel_pkg = meta_kernel_dependency(&meta).ok_or_else(|| {
        format!("fetch-linux: cannot find a linux-image-*-cloud-arm64 dependency in `apt-cache show {META_PACKAGE}`:\n{meta}")
    })?;
    let release = kernel_pkg
        .strip_prefix("linux-image-")
        .unwrap_or(&kernel_pkg)
        .to_string();
    let kernel_ver = field(&apt.show(&kernel_pkg)?, "Version")
        .ok_or_else(|| format!("fetch-linux: no Version for {kernel_pkg}"))?;
    let busybox_ver = field(&apt.show(BUSYBOX_PACKAGE)?, "Version")
        .ok_or_else(|| format!("fetch-linux: no Version for {BUSYBOX_PACKAGE}"))?;
    let stamp_text = format!(
        "recipe={RECIPE}\nrelease={release}\nkernel={kernel_pkg} {kernel_ver}\nbusybox={BUSYBOX_PACKAGE} {busybox_ver}\n"
    );

    // Download (into a fresh directory so stale .debs cannot be picked up).
    let debs = dir.join("debs");
    remove_dir_if_exists(&debs)?;
    mkdir(&debs)?;
    eprintln!(
        "fetch-linux: downloading {kernel_pkg} {kernel_ver} and {BUSYBOX_PACKAGE} {busybox_ver}"
    );
    apt.run(
        "apt-get",
        &[
            "-q",
            "download",
            &format!("{kernel_pkg}={kernel_ver}"),
            &format!("{BUSYBOX_PACKAGE}={busybox_ver}"),
        ],
        Some(&debs),
    )?;
    let kernel_deb = find_deb(&debs, &kernel_pkg)?;
    let busybox_deb = find_deb(&debs, BUSYBOX_PACKAGE)?;

    // The Image.
    let extract = dir.join("extract");
    remove_dir_if_exists(&extract)?;
    let kx = extract.join("kernel");
    mkdir(&kx)?;
    run(
        Command::new("dpkg-deb").arg("-x").arg(&kernel_deb).arg(&kx),
        None,
    )?;
    let vmlinuz = kx.join("boot").join(format!("vmlinuz-{release}"));
    if !vmlinuz.is_file() {
        return Err(format!(
            "fetch-linux: {} not found in {}",
            vmlinuz.display(),
            kernel_deb.display()
        ));
    }
    let image = decompress_kernel(&vmlinuz)?;
    check_image(&image, &vmlinuz)?;
    write_atomic(&kernel, &image)?;

    // The initramfs.
    let bx = extract.join("busybox");
    mkdir(&bx)?;
    run(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(&busybox_deb)
            .arg(&bx),
        None,
    )?;
    let busybox = bx.join("bin").join("busybox");
    if !busybox.is_file() {
        return Err(format!(
            "fetch-linux: bin/busybox not found in {}",
            busybox_deb.display()
        ));
    }
    let modules = kx.join("lib").join("modules").join(&release).join("kernel");
    let cpio = build_initramfs(&extract.join("root"), &busybox, &modules)?;
    write_atomic(&initrd, &cpio)?;

    remove_dir_if_exists(&extract)?;
    write_atomic(&stamp, stamp_text.as_bytes())?;
    eprintln!(
        "fetch-linux: {} ({} bytes), {} ({} bytes)",
        kernel.display(),
        image.len(),
        initrd.display(),
        cpio.len()
    );
    Ok(LinuxGuest {
        kernel,
        initrd,
        version: release,
    })
}

/// The release recorded by a complete stamp of the current recipe.
fn read_stamp(stamp: &Path) -> Option<String> {
    let text = fs::read_to_string(stamp).ok()?;
    if field_eq(&text, "recipe") != Some(RECIPE.to_string()) {
        return None;
    }
    field_eq(&text, "release").filter(|r| !r.is_empty())
}

fn field_eq(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(key)?
            .strip_prefix('=')
            .map(|v| v.trim().to_string())
    })
}

/// A private apt configuration: arm64 only, own sources/lists/cache/status.
pub(crate) struct Apt {
    conf: PathBuf,
}

impl Apt {
    pub(crate) fn prepare(root: &Path) -> Result<Apt, String> {
        let etc = root.join("etc");
        for d in [
            etc.join("apt.conf.d"),
            etc.join("sources.list.d"),
            etc.join("preferences.d"),
            etc.join("trusted.gpg.d"),
            root.join("lists").join("partial"),
            root.join("cache").join("archives").join("partial"),
            root.join("state"),
            root.join("log"),
        ] {
            mkdir(&d)?;
        }
        let status = root.join("status");
        if !status.exists() {
            write_atomic(&status, b"")?;
        }
        let sources = format!(
            "deb [signed-by={KEYRING}] {DEBIAN_MIRROR} {SUITE} main\n\
             deb [signed-by={KEYRING}] {DEBIAN_MIRROR} {SUITE}-updates main\n\
             deb [signed-by={KEYRING}] {SECURITY_MIRROR} {SUITE}-security main\n"
        );
        write_atomic(&etc.join("sources.list"), sources.as_bytes())?;

        // Carry over the few host settings that matter for reaching the mirror
        // (proxies, and date checks on hosts with a frozen clock or snapshot
        // mirrors); everything else of the host's apt configuration is ignored
        // (its hooks, pins, extra index targets).
        let host = Command::new("apt-config")
            .args([
                "dump",
                "Acquire::http::Proxy",
                "Acquire::https::Proxy",
                "Acquire::http::Proxy-Auto-Detect",
                "Acquire::Check-Valid-Until",
                "Acquire::Check-Date",
            ])
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();

        let q = |p: &Path| p.display().to_string().replace('"', "");
        let conf = format!(
            "// Private apt configuration for xtask fetch-linux (read through APT_CONFIG).\n\
             Dir::Etc \"{etc}\";\n\
             Dir::Etc::Parts \"{etc}/apt.conf.d\";\n\
             Dir::Etc::Main \"{etc}/apt.conf\";\n\
             Dir::Etc::SourceList \"{etc}/sources.list\";\n\
             Dir::Etc::SourceParts \"{etc}/sources.list.d\";\n\
             Dir::Etc::Preferences \"{etc}/preferences\";\n\
             Dir::Etc::PreferencesParts \"{etc}/preferences.d\";\n\
             Dir::State \"{state}\";\n\
             Dir::State::Lists \"{lists}\";\n\
             Dir::State::status \"{status}\";\n\
             Dir::Cache \"{cache}\";\n\
             Dir::Cache::pkgcache \"\";\n\
             Dir::Cache::srcpkgcache \"\";\n\
             Dir::Log \"{log}\";\n\
             APT::Architecture \"arm64\";\n\
             APT::Architectures {{ \"arm64\"; }};\n\
             APT::Sandbox::User \"root\";\n\
             Acquire::Languages \"none\";\n\
             Acquire::GzipIndexes \"true\";\n\
             Acquire::Retries \"3\";\n\
             {host}",
            etc = q(&etc),
            state = q(&root.join("state")),
            lists = q(&root.join("lists")),
            status = q(&status),
            cache = q(&root.join("cache")),
            log = q(&root.join("log")),
        );
        let conf_path = root.join("apt.conf");
        write_atomic(&conf_path, conf.as_bytes())?;
        Ok(Apt { conf: conf_path })
    }

    pub(crate) fn run(
        &self,
        tool: &str,
        args: &[&str],
        cwd: Option<&Path>,
    ) -> Result<String, String> {
        let mut cmd = Command::new(tool);
        cmd.args(args)
            .env("APT_CONFIG", &self.conf)
            .env("LC_ALL", "C");
        run(&mut cmd, cwd)
            .map_err(|e| format!("{e}\n(private apt configuration: {})", self.conf.display()))
    }

    /// `apt-cache show` of the candidate version.
    pub(crate) fn show(&self, pkg: &str) -> Result<String, String> {
        self.run("apt-cache", &["show", "--no-all-versions", pkg], None)
    }
}

/// `Depends: linux-image-6.1.0-56-cloud-arm64 (= 6.1.192-2)` -> the package.
fn meta_kernel_dependency(show: &str) -> Option<String> {
    let deps = field(show, "Depends")?;
    deps.split([',', '|'])
        .map(|d| d.split_whitespace().next().unwrap_or(""))
        .find(|name| name.starts_with("linux-image-") && name.ends_with("-cloud-arm64"))
        .map(|s| s.split(':').next().unwrap_or(s).to_string())
}

/// First `Key: value` of an RFC 822 stanza.
pub(crate) fn field(stanza: &str, key: &str) -> Option<String> {
    stanza.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim().to_string())
    })
}

pub(crate) fn find_deb(dir: &Path, pkg: &str) -> Result<PathBuf, String> {
    let prefix = format!("{pkg}_");
    let entries =
        fs::read_dir(dir).map_err(|e| format!("fetch-linux: reading {}: {e}", dir.display()))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".deb") {
            return Ok(e.path());
        }
    }
    Err(format!(
        "fetch-linux: apt-get download left no {prefix}*.deb in {}",
        dir.display()
    ))
}

/// Debian's arm64 `vmlinuz` is a gzip-compressed Image; an EFI zboot image
/// (`MZ` + `zimg`, newer kernels) carries a gzip or zstd payload.
pub(crate) fn decompress_kernel(vmlinuz: &Path) -> Result<Vec<u8>, String> {
    let data = fs::read(vmlinuz)
        .map_err(|e| format!("fetch-linux: reading {}: {e}", vmlinuz.display()))?;
    if data.starts_with(&[0x1f, 0x8b]) {
        return run_bytes(Command::new("gzip").arg("-dc").arg(vmlinuz));
    }
    if data.len() >= 64 && &data[0..2] == b"MZ" && &data[4..8] == b"zimg" {
        let off = u32::from_le_bytes(data[8..12].try_into().unwrap()) as usize;
        let size = u32::from_le_bytes(data[12..16].try_into().unwrap()) as usize;
        let comp = String::from_utf8_lossy(&data[24..32])
            .trim_end_matches('\0')
            .to_string();
        let payload = data
            .get(off..off + size)
            .ok_or_else(|| format!("fetch-linux: bad zboot header in {}", vmlinuz.display()))?;
        let tool = match comp.as_str() {
            "gzip" => "gzip",
            "zstd" => "zstd",
            "xz" => "xz",
            other => {
                return Err(format!(
                    "fetch-linux: zboot compression '{other}' not supported (gzip, zstd and xz are)"
                ))
            }
        };
        return run_stdin(Command::new(tool).arg("-dc"), payload);
    }
    if data.len() >= 64 && &data[56..60] == b"ARM\x64" {
        return Ok(data);
    }
    Err(format!(
        "fetch-linux: {} is neither gzip, EFI zboot nor an arm64 Image",
        vmlinuz.display()
    ))
}

pub(crate) fn check_image(image: &[u8], from: &Path) -> Result<(), String> {
    if image.len() < 64 || &image[56..60] != b"ARM\x64" {
        return Err(format!(
            "fetch-linux: kernel decompressed from {} lacks the arm64 Image magic ARM\\x64 at offset 56",
            from.display()
        ));
    }
    Ok(())
}

/// Stages the root and packs it with `cpio -o -H newc`.
fn build_initramfs(root: &Path, busybox: &Path, modules: &Path) -> Result<Vec<u8>, String> {
    remove_dir_if_exists(root)?;
    for d in ["bin", "dev", "proc", "sys", "etc", "tmp", "lib/modules"] {
        mkdir(&root.join(d))?;
    }
    // The virtio drivers, in an order that loads each after what it depends on.
    let mut found = Vec::new();
    for m in MODULES {
        let path = modules.join(m);
        let bytes = fs::read(&path).map_err(|e| {
            format!(
                "fetch-linux: {} (from the kernel package): {e}",
                path.display()
            )
        })?;
        let name = Path::new(m)
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let deps = module_depends(&bytes)
            .ok_or_else(|| format!("fetch-linux: {} has no .modinfo section", path.display()))?;
        fs::write(root.join("lib/modules").join(format!("{name}.ko")), &bytes)
            .map_err(|e| format!("fetch-linux: writing {name}.ko: {e}"))?;
        found.push((name, deps));
    }
    let order = load_order(&found)?;
    fs::write(root.join("etc/modules"), order.join("\n") + "\n")
        .map_err(|e| format!("fetch-linux: writing /etc/modules: {e}"))?;
    let script = root.join("etc/udhcpc.script");
    fs::write(&script, UDHCPC_SCRIPT)
        .map_err(|e| format!("fetch-linux: writing udhcpc.script: {e}"))?;
    set_mode(&script, 0o755)?;
    let bb = root.join("bin").join("busybox");
    fs::copy(busybox, &bb).map_err(|e| format!("fetch-linux: copying busybox: {e}"))?;
    set_mode(&bb, 0o755)?;
    for applet in APPLETS {
        let link = root.join("bin").join(applet);
        std::os::unix::fs::symlink("busybox", &link)
            .map_err(|e| format!("fetch-linux: symlink {}: {e}", link.display()))?;
    }
    let init = root.join("init");
    fs::write(&init, INIT_SCRIPT)
        .map_err(|e| format!("fetch-linux: writing {}: {e}", init.display()))?;
    set_mode(&init, 0o755)?;

    // Sorted list of relative paths (directories before their contents).
    let mut entries = Vec::new();
    list_tree(root, Path::new("."), &mut entries)?;
    entries.sort();
    let list: String = entries.iter().map(|p| format!("{p}\n")).collect();
    let mut cmd = Command::new("cpio");
    cmd.args(["-o", "-H", "newc", "--quiet", "-R", "0:0"])
        .current_dir(root);
    run_stdin(&mut cmd, list.as_bytes())
}

fn list_tree(base: &Path, rel: &Path, out: &mut Vec<String>) -> Result<(), String> {
    let abs = base.join(rel);
    let rd =
        fs::read_dir(&abs).map_err(|e| format!("fetch-linux: reading {}: {e}", abs.display()))?;
    for e in rd.flatten() {
        let r = rel.join(e.file_name());
        out.push(r.display().to_string());
        let ft = e.file_type().map_err(|e| format!("fetch-linux: {e}"))?;
        if ft.is_dir() {
            list_tree(base, &r, out)?;
        }
    }
    Ok(())
}

fn set_mode(p: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("fetch-linux: chmod {}: {e}", p.display()))
}

pub(crate) fn tool_exists(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a command; on failure the error names it and carries its stderr.
pub(crate) fn run(cmd: &mut Command, cwd: Option<&Path>) -> Result<String, String> {
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("fetch-linux: cannot run `{}`: {e}", describe(cmd)))?;
    if !out.status.success() {
        return Err(format!(
            "fetch-linux: `{}` failed ({}):\n{}{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run_bytes(cmd: &mut Command) -> Result<Vec<u8>, String> {
    run_stdin(cmd, &[])
}

/// Runs a command with `input` on stdin, returning its stdout bytes.
fn run_stdin(cmd: &mut Command, input: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("fetch-linux: cannot run `{}`: {e}", describe(cmd)))?;
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child
        .wait_with_output()
        .map_err(|e| format!("fetch-linux: waiting for `{}`: {e}", describe(cmd)))?;
    let _ = writer.join();
    if !out.status.success() {
        return Err(format!(
            "fetch-linux: `{}` failed ({}):\n{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

pub(crate) fn mkdir(p: &Path) -> Result<(), String> {
    fs::create_dir_all(p).map_err(|e| format!("fetch-linux: mkdir {}: {e}", p.display()))
}

pub(crate) fn remove_dir_if_exists(p: &Path) -> Result<(), String> {
    match fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("fetch-linux: removing {}: {e}", p.display())),
    }
}

/// Write to `p.tmp` then rename, so an interrupted run never leaves a
/// truncated file under the final name.
pub(crate) fn write_atomic(p: &Path, data: &[u8]) -> Result<(), String> {
    let mut tmp = p.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, data).map_err(|e| format!("fetch-linux: writing {}: {e}", tmp.display()))?;
    fs::rename(&tmp, p).map_err(|e| {
        format!(
            "fetch-linux: renaming {} to {}: {e}",
            tmp.display(),
            p.display()
        )
    })
}

/// The `depends=` of a kernel module: the names in its `.modinfo` section
/// (an ELF64 section of NUL-separated `key=value` strings). `None` if the file
/// is not an ELF64 object with such a section.
pub fn module_depends(ko: &[u8]) -> Option<Vec<String>> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(ko.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(ko.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(ko.get(o..o + 8)?.try_into().ok()?));
    if ko.get(0..5)? != b"\x7fELF\x02" {
        return None;
    }
    let shoff = u64_at(0x28)? as usize;
    let shentsize = u16_at(0x3a)? as usize;
    let shnum = u16_at(0x3c)? as usize;
    let shstrndx = u16_at(0x3e)? as usize;
    let section = |i: usize| -> Option<(u32, usize, usize)> {
        let h = shoff.checked_add(i.checked_mul(shentsize)?)?;
        Some((
            u32_at(h)?,
            u64_at(h + 0x18)? as usize,
            u64_at(h + 0x20)? as usize,
        ))
    };
    let (_, stroff, strsize) = section(shstrndx)?;
    let names = ko.get(stroff..stroff.checked_add(strsize)?)?;
    for i in 0..shnum {
        let (name, off, size) = section(i)?;
        let name = names.get(name as usize..)?;
        let name = &name[..name.iter().position(|&b| b == 0)?];
        if name != b".modinfo" {
            continue;
        }
        let info = ko.get(off..off.checked_add(size)?)?;
        let deps = info
            .split(|&b| b == 0)
            .find_map(|kv| kv.strip_prefix(b"depends="))
            .unwrap_or(b"");
        return Some(
            String::from_utf8_lossy(deps)
                .split(',')
                .filter(|d| !d.is_empty())
                .map(|d| d.replace('-', "_"))
                .collect(),
        );
    }
    None
}

/// Modules in an order where each comes after its dependencies; an error names
/// a dependency that is not among them, or a cycle.
pub fn load_order(modules: &[(String, Vec<String>)]) -> Result<Vec<String>, String> {
    let mut order: Vec<String> = Vec::new();
    while order.len() < modules.len() {
        let before = order.len();
        for (name, deps) in modules {
            if order.contains(name) {
                continue;
            }
            if let Some(d) = deps.iter().find(|d| !modules.iter().any(|(n, _)| n == *d)) {
                return Err(format!(
                    "fetch-linux: module {name} needs {d}, which is not in MODULES"
                ));
            }
            if deps.iter().all(|d| order.contains(d)) {
                order.push(name.clone());
            }
        }
        if order.len() == before {
            return Err("fetch-linux: the modules depend on each other in a cycle".into());
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_load_after_their_dependencies() {
        let m = |n: &str, d: &[&str]| (n.to_string(), d.iter().map(|s| s.to_string()).collect());
        let mods = [
            m("virtio_net", &["virtio_ring", "virtio", "net_failover"]),
            m("virtio", &[]),
            m("net_failover", &["failover"]),
            m("virtio_ring", &["virtio"]),
            m("failover", &[]),
        ];
        let order = load_order(&mods).unwrap();
        let at = |n: &str| order.iter().position(|o| o == n).unwrap();
        assert!(at("virtio") < at("virtio_ring") && at("virtio_ring") < at("virtio_net"));
        assert!(at("failover") < at("net_failover") && at("net_failover") < at("virtio_net"));
        assert!(load_order(&[m("a", &["b"])])
            .unwrap_err()
            .contains("needs b"));
        assert!(load_order(&[m("a", &["b"]), m("b", &["a"])])
            .unwrap_err()
            .contains("cycle"));
    }

    #[test]
    fn modinfo_depends_is_read_from_an_elf_section() {
        // A minimal ELF64 object: a header, a .modinfo and a .shstrtab section.
        let modinfo = b"license=GPL\0depends=virtio,virtio-ring\0name=x\0";
        let shstrtab = b"\0.modinfo\0.shstrtab\0";
        let mut elf = vec![0u8; 64];
        elf[..5].copy_from_slice(b"\x7fELF\x02");
        let modinfo_off = elf.len();
        elf.extend_from_slice(modinfo);
        let shstr_off = elf.len();
        elf.extend_from_slice(shstrtab);
        let shoff = elf.len();
        let sh = |name: u32, off: usize, size: usize| {
            let mut h = vec![0u8; 64];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(off as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            h
        };
        let headers = [
            sh(0, 0, 0),
            sh(1, modinfo_off, modinfo.len()),
            sh(10, shstr_off, shstrtab.len()),
        ];
        for h in headers {
            elf.extend_from_slice(&h);
        }
        elf[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
        assert_eq!(module_depends(&elf).unwrap(), ["virtio", "virtio_ring"]);
        assert_eq!(module_depends(b"not an elf"), None);
        assert_eq!(module_depends(&elf[..70]), None);
    }
}
