//! The QEMU command line (DESIGN.md section 3): the hypervisor as `-kernel`, each guest
//! as `guest-loader` modules, the guest console on the first PL011 and the
//! hypervisor's debug console on the second.

use crate::board::Board;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Guest {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub bootargs: Option<String>,
}

pub struct Machine {
    pub smp: u32,
    pub memory: String,
    /// GIC version, for machines with the option (`virt`).
    pub gic: Option<u8>,
    /// CPU model, for machines that take one.
    pub cpu: Option<String>,
    /// `-dtb` (board models: Debian's DTB with the board file's fix-ups).
    pub dtb: Option<PathBuf>,
    /// The hypervisor's own command line (`-append`).
    pub append: Option<String>,
}

pub enum Serial {
    /// Both serial lines on this terminal, multiplexed (Ctrl-A C switches input).
    Muxed,
    /// Guest console on the terminal, debug console on a TCP port.
    DebugOnTcp(u16),
}

const MODULE_ALIGN: u64 = 2 << 20;

fn align_up(v: u64) -> u64 {
    (v + MODULE_ALIGN - 1) & !(MODULE_ALIGN - 1)
}

/// guest-loader values cannot contain a comma (QEMU's option separator) unescaped.
fn escape(s: &str) -> String {
    s.replace(',', ",,")
}

pub fn command(
    board: &Board,
    m: &Machine,
    hypervisor: &Path,
    guests: &[Guest],
    serial: &Serial,
) -> Result<Command, String> {
    let q = &board.qemu;
    let mut cmd = Command::new(&q.binary);
    match m.gic {
        Some(gic) => cmd
            .arg("-M")
            .arg(format!("{},gic-version={gic}", q.machine)),
        None => cmd.arg("-M").arg(&q.machine),
    };
    if let Some(accel) = &q.accel {
        cmd.args(["-accel", accel]);
    }
    if let Some(cpu) = &m.cpu {
        cmd.args(["-cpu", cpu]);
    }
    cmd.args(["-smp", &m.smp.to_string(), "-m", &m.memory])
        .args(&q.extra);
    match serial {
        Serial::Muxed => {
            cmd.args(["-chardev", "stdio,mux=on,id=con,signal=off"]);
            for _ in 0..q.serials {
                cmd.args(["-serial", "chardev:con"]);
            }
        }
        Serial::DebugOnTcp(port) => {
            // The debug line on TCP, the first other line on the terminal.
            let mut terminal = false;
            for i in 0..q.serials {
                cmd.arg("-serial");
                if i == q.debug_serial {
                    cmd.arg(format!(
                        "tcp:127.0.0.1:{port},server=on,wait=off,nodelay=on"
                    ));
                } else if !terminal {
                    terminal = true;
                    cmd.arg("stdio");
                } else {
                    cmd.arg("null");
                }
            }
        }
    }
    if let Some(dtb) = &m.dtb {
        cmd.arg("-dtb").arg(dtb);
    }
    cmd.arg("-kernel").arg(hypervisor);
    if let Some(append) = &m.append {
        cmd.arg("-append").arg(append);
    }
    if !guests.is_empty() && !board.takes_modules() {
        return Err(format!(
            "board `{}`: QEMU's {} model cannot take guest-loader modules (it copies the DTB \
             before -device options run); guests on it come in a bundle (DESIGN.md section 4)",
            board.name, q.machine
        ));
    }
    let mut addr = q.module_base.unwrap_or(0);
    for g in guests {
        let size = std::fs::metadata(&g.kernel)
            .map_err(|e| format!("{}: {e}", g.kernel.display()))?
            .len();
        let mut dev = format!(
            "guest-loader,addr={addr:#x},kernel={}",
            escape(&g.kernel.to_string_lossy())
        );
        if let Some(args) = &g.bootargs {
            dev.push_str(&format!(",bootargs={}", escape(args)));
        }
        cmd.arg("-device").arg(dev);
        addr = align_up(addr + size);
        if let Some(initrd) = &g.initrd {
            let size = std::fs::metadata(initrd)
                .map_err(|e| format!("{}: {e}", initrd.display()))?
                .len();
            cmd.arg("-device").arg(format!(
                "guest-loader,addr={addr:#x},initrd={}",
                escape(&initrd.to_string_lossy())
            ));
            addr = align_up(addr + size);
        }
    }
    Ok(cmd)
}

/// Devices for guests (DESIGN.md section 9): host devices the hypervisor passes
/// through, and the QEMU devices that give it something to pass.
#[derive(Default)]
pub struct Devices {
    /// `vmN:PATH` or `vmN:all`, each becoming `hv.passthrough=...`.
    pub passthrough: Vec<String>,
    /// A raw disk image for a `virtio-blk-device`.
    pub disk: Option<PathBuf>,
    /// A `virtio-net-device` on QEMU user networking with `restrict=on`.
    pub net_user: bool,
}

/// What `device_args` gives: QEMU arguments, and options for the hypervisor's
/// command line (to join with the others into one `-append`).
#[derive(Debug, Default, PartialEq)]
pub struct DeviceArgs {
    pub qemu: Vec<String>,
    pub hv_options: Vec<String>,
}

/// QEMU arguments for `d`: the hypervisor's command-line options and the virtio-mmio
/// devices. A malformed `--passthrough` is refused here, before QEMU starts,
/// by the hypervisor's own parser.
pub fn device_args(d: &Devices) -> Result<DeviceArgs, String> {
    let mut out = Vec::new();
    let mut append = Vec::new();
    for p in &d.passthrough {
        let opt = format!("{}={p}", hypervisor::passthrough::request::OPTION);
        let (_, errors) = hypervisor::passthrough::parse_cmdline(&opt);
        if let Some(e) = errors.first() {
            return Err(format!("--passthrough {p}: {e}"));
        }
        append.push(opt);
    }
    if let Some(disk) = &d.disk {
        if !disk.is_file() {
            return Err(format!("--disk {}: no such file", disk.display()));
        }
        out.push("-drive".into());
        out.push(format!(
            "if=none,id=disk0,format=raw,file={}",
            escape(&disk.to_string_lossy())
        ));
        out.push("-device".into());
        out.push("virtio-blk-device,drive=disk0".into());
    }
    if d.net_user {
        out.push("-netdev".into());
        out.push("user,id=n0,restrict=on".into());
        out.push("-device".into());
        out.push("virtio-net-device,netdev=n0".into());
    }
    Ok(DeviceArgs {
        qemu: out,
        hv_options: append,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::QemuConfig;

    fn board() -> Board {
        Board {
            name: "qemu-virt".into(),
            guest_uart: Some("serial0".into()),
            qemu: QemuConfig {
                binary: "qemu-system-aarch64".into(),
                machine: "virt,virtualization=on".into(),
                gic: Some(3),
                cpu: Some("max".into()),
                accel: None,
                smp: 4,
                memory: "1G".into(),
                extra: vec!["-display".into(), "none".into()],
                module_base: Some(0x5000_0000),
                dtb: None,
                dtb_disable: Vec::new(),
                dtb_fdtput: Vec::new(),
                serials: 2,
                debug_serial: 1,
            },
            sdcard: None,
        }
    }

    #[test]
    fn board_models_get_their_dtb_and_no_modules() {
        let rpi4 = Board::load("rpi4").unwrap();
        let m = Machine {
            smp: 4,
            memory: "2G".into(),
            gic: None,
            cpu: None,
            dtb: Some("b.dtb".into()),
            append: Some("hv.stay=1".into()),
        };
        let c = command(
            &rpi4,
            &m,
            Path::new("hv.img"),
            &[],
            &Serial::DebugOnTcp(4444),
        )
        .unwrap();
        let a = args(&c);
        let has = |k: &str, v: &str| a.windows(2).any(|w| w[0] == k && w[1] == v);
        assert!(has("-M", "raspi4b"));
        assert!(has("-accel", "tcg,thread=single"));
        assert!(has("-dtb", "b.dtb"));
        assert!(has("-append", "hv.stay=1"));
        assert!(!a.iter().any(|s| s == "-cpu"));
        // The mini-UART (line 1) on TCP, the PL011 on the terminal.
        let serials: Vec<&String> = a
            .windows(2)
            .filter(|w| w[0] == "-serial")
            .map(|w| &w[1])
            .collect();
        assert_eq!(
            serials,
            ["stdio", "tcp:127.0.0.1:4444,server=on,wait=off,nodelay=on"]
        );
        let g = [Guest {
            kernel: "k".into(),
            initrd: None,
            bootargs: None,
        }];
        let err = command(&rpi4, &m, Path::new("hv.img"), &g, &Serial::Muxed).unwrap_err();
        assert!(err.contains("bundle"), "{err}");
    }

    fn args(c: &Command) -> Vec<String> {
        c.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn modules_are_placed_2mib_aligned_with_each_ramdisk_above_its_kernel() {
        let dir = std::env::temp_dir().join(format!("xtask-qemu-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (k1, i1, k2) = (dir.join("k1"), dir.join("i1"), dir.join("k2"));
        std::fs::write(&k1, vec![0u8; 3 << 20]).unwrap(); // 3 MiB: next at +4 MiB
        std::fs::write(&i1, vec![0u8; 10]).unwrap();
        std::fs::write(&k2, vec![0u8; 10]).unwrap();
        let guests = [
            Guest {
                kernel: k1.clone(),
                initrd: Some(i1.clone()),
                bootargs: Some("console=ttyAMA0,115200".into()),
            },
            Guest {
                kernel: k2.clone(),
                initrd: None,
                bootargs: None,
            },
        ];
        let m = Machine {
            smp: 2,
            memory: "512M".into(),
            gic: Some(2),
            cpu: Some("cortex-a72".into()),
            dtb: None,
            append: None,
        };
        let c = command(
            &board(),
            &m,
            Path::new("hv.img"),
            &guests,
            &Serial::DebugOnTcp(4444),
        )
        .unwrap();
        let a = args(&c);
        let devices: Vec<&String> = a
            .iter()
            .skip(1)
            .step_by(1)
            .filter(|s| s.starts_with("guest-loader"))
            .collect();
        assert_eq!(devices.len(), 3);
        assert_eq!(
            devices[0],
            &format!(
                "guest-loader,addr=0x50000000,kernel={},bootargs=console=ttyAMA0,,115200",
                k1.display()
            )
        );
        assert_eq!(
            devices[1],
            &format!("guest-loader,addr=0x50400000,initrd={}", i1.display())
        );
        assert_eq!(
            devices[2],
            &format!("guest-loader,addr=0x50600000,kernel={}", k2.display())
        );
        assert!(a
            .windows(2)
            .any(|w| w[0] == "-M" && w[1] == "virt,virtualization=on,gic-version=2"));
        assert!(a.windows(2).any(|w| w[0] == "-cpu" && w[1] == "cortex-a72"));
        assert!(a
            .iter()
            .any(|s| s == "tcp:127.0.0.1:4444,server=on,wait=off,nodelay=on"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_guest_file_is_a_clear_error() {
        let guests = [Guest {
            kernel: "/nonexistent/k".into(),
            initrd: None,
            bootargs: None,
        }];
        let m = Machine {
            smp: 1,
            memory: "1G".into(),
            gic: Some(3),
            cpu: Some("max".into()),
            dtb: None,
            append: None,
        };
        let err = command(&board(), &m, Path::new("hv.img"), &guests, &Serial::Muxed).unwrap_err();
        assert!(err.contains("/nonexistent/k"), "{err}");
    }

    #[test]
    fn devices_become_an_append_and_virtio_mmio_devices() {
        let dir = std::env::temp_dir().join(format!("xtask-dev-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let disk = dir.join("d,1.img");
        std::fs::write(&disk, [0u8; 512]).unwrap();
        let d = device_args(&Devices {
            passthrough: vec!["vm0:all".into(), "vm1:/pl031@9010000".into()],
            disk: Some(disk.clone()),
            net_user: true,
        })
        .unwrap();
        assert_eq!(
            d.hv_options,
            [
                "hv.passthrough=vm0:all",
                "hv.passthrough=vm1:/pl031@9010000"
            ]
        );
        let a = d.qemu;
        let pair = |k: &str| a.windows(2).find(|w| w[0] == k).map(|w| w[1].clone());
        assert!(pair("-append").is_none(), "one -append, made by the caller");
        assert_eq!(
            pair("-drive").unwrap(),
            format!(
                "if=none,id=disk0,format=raw,file={}",
                disk.display().to_string().replace(',', ",,")
            )
        );
        assert!(a.iter().any(|x| x == "virtio-blk-device,drive=disk0"));
        assert_eq!(pair("-netdev").unwrap(), "user,id=n0,restrict=on");
        assert!(a.iter().any(|x| x == "virtio-net-device,netdev=n0"));
        assert_eq!(
            device_args(&Devices::default()).unwrap(),
            DeviceArgs::default()
        );
        let e = device_args(&Devices {
            passthrough: vec!["vm0/all".into()],
            ..Devices::default()
        })
        .unwrap_err();
        assert!(e.contains("vm0/all") && e.contains("vmN:PATH"), "{e}");
        let e = device_args(&Devices {
            disk: Some(dir.join("missing.img")),
            ..Devices::default()
        })
        .unwrap_err();
        assert!(e.contains("no such file"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
