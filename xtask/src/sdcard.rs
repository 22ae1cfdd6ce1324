//! `cargo xtask sdcard`: a board's SD card boot partition (README "Flashing").
//!
//! [`layout`] writes the partition's files into a directory: the hypervisor
//! Image, the guest bundle (its initrd), the board's DTB (Debian's, as it is),
//! and what the board's loader reads:
//!
//! - `rpi4` (`boot = "raspi-firmware"`): Debian's `raspi-firmware` files
//!   (`start4.elf`, `fixup4.dat`, their licence), `config.txt` and `cmdline.txt`;
//! - `zcu102`, `imx8mp` (`boot = "u-boot"`): `boot.cmd` and the `boot.scr`
//!   `mkimage` makes of it, which `booti`s the hypervisor. Their firmware and
//!   U-Boot come from the vendor (README).
//!
//! [`image`] puts those files into a disk image: an MBR with one FAT32 partition
//! at 16 MiB (room before it for a boot loader written at a raw offset, as the
//! i.MX's `imx-boot` at 32 KiB), made with `mkfs.vfat` and filled with `mcopy`
//! (no mount, no root needed). `--device` writes that image to a card after
//! [`check_device`] has refused anything that is not a whole, removable disk
//! nobody uses, and a person has typed the device's name.

use crate::board::{Board, BootKind};
use std::fs;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `cargo xtask sdcard` was asked for.
pub struct Request {
    pub board: String,
    /// Where the result goes.
    pub target: Target,
    /// The guest bundle; `None`: one made of the demo guest.
    pub bundle: Option<PathBuf>,
    /// The hypervisor's options (`cmdline.txt`, or `bootargs` in `boot.scr`).
    pub append: Option<String>,
    /// A DTB instead of Debian's for the board.
    pub dtb: Option<PathBuf>,
    /// `--device` without the typed confirmation.
    pub yes: bool,
}

pub enum Target {
    /// The boot partition's files, in this directory.
    Dir(PathBuf),
    /// A disk image file (for `dd`, Raspberry Pi Imager, balenaEtcher).
    Image(PathBuf),
    /// A card, written whole.
    Device(PathBuf),
}

/// The file names on the partition.
pub const HYPERVISOR: &str = "hypervisor.img";
pub const BUNDLE: &str = "bundle.cpio";

/// The FAT partition's first sector (16 MiB in 512-byte sectors).
const PART_START: u64 = 16 << 20;
const SECTOR: u64 = 512;

pub fn sdcard(req: &Request) -> Result<(), String> {
    let board = Board::load(&req.board)?;
    let Some(sd) = &board.sdcard else {
        return Err(format!(
            "board `{}` has no [sdcard] section: it does not boot from an SD card (boards that do: {})",
            board.name,
            sd_boards().join(", ")
        ));
    };
    let kind = sd.boot;
    // Check the device before building anything, so a refusal comes first.
    if let Target::Device(dev) = &req.target {
        check_device(dev, &System::real())?;
    }
    let dir = match &req.target {
        Target::Dir(d) => d.clone(),
        _ => crate::root()
            .join("target/sdcard")
            .join(format!("{}-files", board.name)),
    };
    layout(req, &board, &dir)?;
    match &req.target {
        Target::Dir(d) => {
            print_layout(d, kind)?;
            println!("{}", d.display());
        }
        Target::Image(img) => {
            image(&dir, img)?;
            println!("{}", img.display());
        }
        Target::Device(dev) => {
            let img = crate::root()
                .join("target/sdcard")
                .join(format!("{}.img", board.name));
            image(&dir, &img)?;
            let disk = check_device(dev, &System::real())?;
            confirm(&disk, req.yes)?;
            write_device(&img, &disk)?;
            println!(
                "xtask: {} written ({}); remove the card and boot the board from it",
                disk.path.display(),
                disk.describe()
            );
        }
    }
    Ok(())
}

/// The boards with an `[sdcard]` section.
fn sd_boards() -> Vec<String> {
    crate::board::all()
        .into_iter()
        .filter(|b| Board::load(b).is_ok_and(|b| b.sdcard.is_some()))
        .collect()
}

/// Writes the boot partition's files into `dir` (emptied first).
pub fn layout(req: &Request, board: &Board, dir: &Path) -> Result<(), String> {
    let sd = board.sdcard.as_ref().expect("checked by the caller");
    if dir.exists() {
        let mut entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if entries.next().is_some() && !dir.join(HYPERVISOR).is_file() {
            return Err(format!(
                "{} is not empty and holds no earlier layout ({HYPERVISOR}): give an empty or new directory",
                dir.display()
            ));
        }
        fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let copy = |from: &Path, name: &str| {
        fs::copy(from, dir.join(name))
            .map(|_| ())
            .map_err(|e| format!("{}: {e}", from.display()))
    };
    let image = crate::build::hypervisor(&board.name)?;
    copy(&image, HYPERVISOR)?;
    match &req.bundle {
        Some(b) => copy(b, BUNDLE)?,
        None => {
            let demo = crate::build::guests()?.join("demo.img");
            let bytes = crate::bundle::archive(&[crate::bundle::Vm {
                kernel: demo,
                ..Default::default()
            }])?;
            fs::write(dir.join(BUNDLE), bytes).map_err(|e| format!("{BUNDLE}: {e}"))?;
        }
    }
    let dtb_name = match &req.dtb {
        Some(d) => {
            let name = file_name(d)?;
            copy(d, &name)?;
            name
        }
        None => {
            let generic = crate::linux_generic::fetch(&crate::root(), &crate::board::all_dtbs()?)?;
            let name = file_name(Path::new(&sd.dtb))?;
            copy(&generic.dtbs.join(&sd.dtb), &name)?;
            name
        }
    };
    let append = req.append.as_deref().unwrap_or("").trim();
    if append.contains('\n') {
        return Err("--append: one line only".into());
    }
    match sd.boot {
        BootKind::RaspiFirmware => {
            let (fw, version) = crate::linux_generic::raspi_firmware(&crate::root())?;
            for e in fs::read_dir(&fw)
                .map_err(|e| format!("{}: {e}", fw.display()))?
                .flatten()
            {
                let name = e.file_name().to_string_lossy().into_owned();
                if e.path().is_file() && name != "stamp" {
                    copy(&e.path(), &name)?;
                }
            }
            write(dir, "config.txt", &config_txt(&dtb_name, &version))?;
            write(dir, "cmdline.txt", &format!("{append}\n"))?;
        }
        BootKind::UBoot => {
            let script = boot_cmd(board, &dtb_name, append);
            write(dir, "boot.cmd", &script)?;
            crate::run_cmd(
                Command::new("mkimage")
                    .args(["-A", "arm64", "-O", "linux", "-T", "script", "-C", "none"])
                    .args(["-n", &format!("hypervisor {}", board.name)])
                    .arg("-d")
                    .arg(dir.join("boot.cmd"))
                    .arg(dir.join("boot.scr"))
                    .stdout(std::process::Stdio::null()),
            )
            .map_err(|e| format!("{e} (mkimage comes with u-boot-tools: cargo xtask setup)"))?;
        }
    }
    Ok(())
}

fn file_name(p: &Path) -> Result<String, String> {
    p.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: not a file name", p.display()))
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    fs::write(dir.join(name), text).map_err(|e| format!("{}: {e}", dir.join(name).display()))
}

/// The Raspberry Pi firmware's `config.txt`.
pub fn config_txt(dtb: &str, firmware_version: &str) -> String {
    format!(
        "# Written by `cargo xtask sdcard --board rpi4` (Debian raspi-firmware {firmware_version}).\n\
         # The firmware starts the hypervisor at EL2 in 64-bit mode, with the guest\n\
         # bundle as its initrd, this DTB, and cmdline.txt as its options.\n\
         [pi4]\n\
         arm_64bit=1\n\
         kernel={HYPERVISOR}\n\
         initramfs {BUNDLE} followkernel\n\
         device_tree={dtb}\n\
         # The mini-UART on GPIO 14/15 (pins 8 and 10) at 115200: the one serial\n\
         # line, the hypervisor's console and the guests'.\n\
         enable_uart=1\n\
         # The GIC-400, which the hypervisor virtualises (the Pi 4's default).\n\
         enable_gic=1\n\
         [all]\n"
    )
}

/// U-Boot's script: load the three files from the partition it was read from,
/// then `booti` the hypervisor with the bundle as its initrd.
pub fn boot_cmd(board: &Board, dtb: &str, append: &str) -> String {
    let sd = board.sdcard.as_ref().expect("an [sdcard] board");
    let default = |var: &str, addr: Option<u64>| match addr {
        Some(a) => format!("if test -z \"${{{var}}}\"; then setenv {var} {a:#x}; fi\n"),
        None => String::new(),
    };
    format!(
        "# Written by `cargo xtask sdcard --board {name}`; boot.scr is this, through\n\
         # mkimage -A arm64 -T script. The hypervisor, its guests (the bundle, as\n\
         # the initrd) and the board's DTB, from the partition this was read from.\n\
         if test -z \"${{devtype}}\"; then setenv devtype mmc; fi\n\
         if test -z \"${{devnum}}\"; then if test -n \"${{mmcdev}}\"; then setenv devnum ${{mmcdev}}; else setenv devnum 0; fi; fi\n\
         if test -z \"${{distro_bootpart}}\"; then if test -n \"${{mmcpart}}\"; then setenv distro_bootpart ${{mmcpart}}; else setenv distro_bootpart 1; fi; fi\n\
         {k}{r}{f}\
         setenv bootargs \"{append}\"\n\
         echo \"hypervisor: loading {HYPERVISOR}, {BUNDLE} and {dtb} from ${{devtype}} ${{devnum}}:${{distro_bootpart}}\"\n\
         load ${{devtype}} ${{devnum}}:${{distro_bootpart}} ${{kernel_addr_r}} {HYPERVISOR}\n\
         load ${{devtype}} ${{devnum}}:${{distro_bootpart}} ${{ramdisk_addr_r}} {BUNDLE}\n\
         setenv bundle_size ${{filesize}}\n\
         load ${{devtype}} ${{devnum}}:${{distro_bootpart}} ${{fdt_addr_r}} {dtb}\n\
         booti ${{kernel_addr_r}} ${{ramdisk_addr_r}}:${{bundle_size}} ${{fdt_addr_r}}\n\
         echo \"hypervisor: booti failed\"\n",
        name = board.name,
        k = default("kernel_addr_r", sd.kernel_addr),
        r = default("ramdisk_addr_r", sd.ramdisk_addr),
        f = default("fdt_addr_r", sd.fdt_addr),
        append = append.replace('"', "\\\""),
    )
}

fn print_layout(dir: &Path, kind: BootKind) -> Result<(), String> {
    let mut names: Vec<(String, u64)> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| {
            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
            (e.file_name().to_string_lossy().into_owned(), len)
        })
        .collect();
    names.sort();
    for (n, len) in &names {
        println!("sdcard: {n} ({} KiB)", len.div_ceil(1024));
    }
    match kind {
        BootKind::RaspiFirmware => println!(
            "sdcard: copy these files to the FAT partition of a card (or use --image/--device)"
        ),
        BootKind::UBoot => println!(
            "sdcard: copy these files to the card's FAT partition, with the vendor's boot files (README \"Flashing\")"
        ),
    }
    Ok(())
}

/// The MBR of a disk with one partition of `part_sectors` at [`PART_START`]:
/// type 0x0c (FAT32, LBA), marked active (the Pi's and U-Boot's loaders do not
/// need it; some older ones want it).
pub fn mbr(part_sectors: u64) -> Result<[u8; 512], String> {
    let start = PART_START / SECTOR;
    let count = u32::try_from(part_sectors)
        .map_err(|_| "the partition is too large for an MBR (2 TiB)".to_string())?;
    let mut m = [0u8; 512];
    // A disk signature, so Linux names the partition PARTUUID=4879706f-01.
    m[440..444].copy_from_slice(&0x4879_706f_u32.to_le_bytes());
    let e = &mut m[446..462];
    e[0] = 0x80;
    // CHS fields: the "use LBA" values.
    e[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]);
    e[4] = 0x0c;
    e[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
    e[8..12].copy_from_slice(&(start as u32).to_le_bytes());
    e[12..16].copy_from_slice(&count.to_le_bytes());
    m[510] = 0x55;
    m[511] = 0xaa;
    Ok(m)
}

/// The partition size for files of `bytes` in all: room for FAT32's minimum of
/// clusters, the files and a margin, in whole MiB.
pub fn partition_size(bytes: u64) -> u64 {
    let want = bytes + bytes / 4 + (16 << 20);
    want.max(64 << 20).div_ceil(1 << 20) << 20
}

/// A disk image at `out`: the MBR, zeros up to 16 MiB, then a FAT32 partition
/// holding every file of `dir`.
pub fn image(dir: &Path, out: &Path) -> Result<(), String> {
    let mut files = Vec::new();
    let mut total = 0;
    for e in fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
    {
        let m = e.metadata().map_err(|e| format!("{}: {e}", e))?;
        if m.is_file() {
            total += m.len();
            files.push(e.path());
        }
    }
    files.sort();
    let size = partition_size(total);
    let part = out.with_extension("part");
    let _ = fs::remove_file(&part);
    if let Some(d) = out.parent() {
        fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let f = fs::File::create(&part).map_err(|e| format!("{}: {e}", part.display()))?;
    f.set_len(size)
        .map_err(|e| format!("{}: {e}", part.display()))?;
    drop(f);
    // 512-byte clusters keep a small partition above FAT32's minimum cluster count.
    let mut mkfs = Command::new("mkfs.vfat");
    mkfs.args(["-F", "32", "-n", "HVBOOT", "-i", "4879706f"]);
    if size < (512 << 20) {
        mkfs.args(["-s", "1"]);
    }
    crate::run_cmd(mkfs.arg(&part).stdout(std::process::Stdio::null()))
        .map_err(|e| format!("{e} (mkfs.vfat comes with dosfstools: cargo xtask setup)"))?;
    crate::run_cmd(
        Command::new("mcopy")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(&part)
            .args(&files)
            .arg("::/"),
    )
    .map_err(|e| format!("{e} (mcopy comes with mtools: cargo xtask setup)"))?;
    let mut disk = fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    disk.write_all(&mbr(size / SECTOR)?)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    disk.set_len(PART_START)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    std::io::Seek::seek(&mut disk, std::io::SeekFrom::Start(PART_START))
        .map_err(|e| format!("{}: {e}", out.display()))?;
    let mut p = fs::File::open(&part).map_err(|e| format!("{}: {e}", part.display()))?;
    std::io::copy(&mut p, &mut disk).map_err(|e| format!("{}: {e}", out.display()))?;
    fs::remove_file(&part).map_err(|e| format!("{}: {e}", part.display()))?;
    eprintln!(
        "xtask: disk image {} ({} MiB FAT32 partition at 16 MiB, {} files)",
        out.display(),
        size >> 20,
        files.len()
    );
    Ok(())
}

/// Where [`check_device`] looks: the real system, or a fake one in tests.
pub struct System {
    /// `/sys` (the `class/block/<name>` directories are read).
    pub sysfs: PathBuf,
    /// `/proc/mounts`.
    pub mounts: String,
    /// `/proc/swaps`.
    pub swaps: String,
    /// `/dev`, where device names resolve.
    pub dev: PathBuf,
    /// Whether to require a block device node (off in tests, which cannot make one).
    pub need_block_node: bool,
}

impl System {
    pub fn real() -> System {
        System {
            sysfs: PathBuf::from("/sys"),
            mounts: fs::read_to_string("/proc/mounts").unwrap_or_default(),
            swaps: fs::read_to_string("/proc/swaps").unwrap_or_default(),
            dev: PathBuf::from("/dev"),
            need_block_node: true,
        }
    }
}

/// A disk [`check_device`] accepted.
#[derive(Debug)]
pub struct Disk {
    pub path: PathBuf,
    /// The kernel's name (`sdb`, `mmcblk0`).
    pub name: String,
    pub bytes: u64,
    pub model: String,
}

impl Disk {
    pub fn describe(&self) -> String {
        let gib = self.bytes as f64 / (1u64 << 30) as f64;
        if self.model.is_empty() {
            format!("{gib:.1} GiB, removable")
        } else {
            format!("{}, {gib:.1} GiB, removable", self.model)
        }
    }
}

/// Refuses a device that is not a whole, removable disk nobody uses: a
/// partition, a disk that is not removable (except an SD/MMC slot, `mmcblk`),
/// one without a medium, one with a mounted or swapped-on partition (the root
/// filesystem named as such), or one held by another block device (LVM, RAID,
/// encryption).
pub fn check_device(dev: &Path, sys: &System) -> Result<Disk, String> {
    let shown = dev.display();
    let real = fs::canonicalize(dev).map_err(|e| format!("{shown}: {e}"))?;
    if sys.need_block_node {
        use std::os::unix::fs::FileTypeExt;
        let m = fs::metadata(&real).map_err(|e| format!("{shown}: {e}"))?;
        if !m.file_type().is_block_device() {
            return Err(format!(
                "{shown} is not a block device: give the card's whole disk, e.g. /dev/sdb or /dev/mmcblk0 (see lsblk)"
            ));
        }
    }
    let name = file_name(&real)?;
    let class = sys.sysfs.join("class/block").join(&name);
    if !class.exists() {
        return Err(format!(
            "{shown}: the kernel knows no block device `{name}` (see lsblk)"
        ));
    }
    let read = |p: &Path| {
        fs::read_to_string(p)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    if class.join("partition").exists() {
        let parent = fs::canonicalize(&class)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "its disk".into());
        return Err(format!(
            "{shown} is a partition: give the whole disk (/dev/{parent}); the card is repartitioned"
        ));
    }
    let removable = read(&class.join("removable")) == "1";
    if !removable && !name.starts_with("mmcblk") {
        return Err(format!(
            "{shown} is not a removable disk (an SD card in a USB reader is; /sys/class/block/{name}/removable says 0): refusing to overwrite what may be a system disk"
        ));
    }
    let bytes = read(&class.join("size")).parse::<u64>().unwrap_or(0) * SECTOR;
    if bytes == 0 {
        return Err(format!("{shown} has no medium: insert the card"));
    }
    // The disk and its partitions, by the names /proc/mounts and /proc/swaps use.
    let mut names = vec![name.clone()];
    if let Ok(d) = fs::read_dir(&class) {
        for e in d.flatten() {
            if e.path().join("partition").exists() {
                names.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    let ours = |source: &str| -> Option<String> {
        let p = Path::new(source);
        let resolved = if p.is_relative() || !p.starts_with("/dev") {
            return None;
        } else {
            let under = p.strip_prefix("/dev").ok()?;
            fs::canonicalize(sys.dev.join(under)).unwrap_or_else(|_| sys.dev.join(under))
        };
        let n = resolved.file_name()?.to_string_lossy().into_owned();
        names.contains(&n).then_some(n)
    };
    let mut mounted = Vec::new();
    for line in sys.mounts.lines() {
        let mut w = line.split_whitespace();
        let (Some(source), Some(point)) = (w.next(), w.next()) else {
            continue;
        };
        if let Some(part) = ours(source) {
            let point = point.replace("\\040", " ");
            if point == "/" {
                return Err(format!(
                    "{shown} holds the root filesystem (/dev/{part} on /): this is the system disk, refusing"
                ));
            }
            mounted.push(format!("/dev/{part} on {point}"));
        }
    }
    for line in sys.swaps.lines().skip(1) {
        if let Some(part) = line.split_whitespace().next().and_then(ours) {
            mounted.push(format!("/dev/{part} as swap"));
        }
    }
    if !mounted.is_empty() {
        return Err(format!(
            "{shown} is in use ({}): unmount it first (umount, or eject it in the file manager without removing it)",
            mounted.join(", ")
        ));
    }
    for n in &names {
        let dir = if *n == name {
            class.join("holders")
        } else {
            class.join(n).join("holders")
        };
        if let Some(h) = fs::read_dir(&dir).ok().and_then(|mut d| d.next()) {
            let h = h.map(|e| e.file_name().to_string_lossy().into_owned());
            return Err(format!(
                "{shown}: /dev/{n} is held by {} (LVM, RAID or encryption): release it first",
                h.unwrap_or_else(|_| "another device".into())
            ));
        }
    }
    let model = [class.join("device/vendor"), class.join("device/model")]
        .iter()
        .map(|p| read(p))
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Disk {
        path: dev.to_path_buf(),
        name,
        bytes,
        model,
    })
}

/// Asks a person to type the device's name; `yes` skips.
fn confirm(disk: &Disk, yes: bool) -> Result<(), String> {
    eprintln!(
        "xtask: this erases everything on {} ({})",
        disk.path.display(),
        disk.describe()
    );
    if yes {
        return Ok(());
    }
    eprint!("xtask: type its name ({}) to go on: ", disk.name);
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading the confirmation: {e}"))?;
    confirmed(&line, &disk.name)
}

/// Whether a typed line confirms the disk `name` (`sdb` or `/dev/sdb`).
pub fn confirmed(line: &str, name: &str) -> Result<(), String> {
    let t = line.trim();
    if t == name || t.strip_prefix("/dev/") == Some(name) {
        Ok(())
    } else {
        Err(format!(
            "not confirmed (typed {t:?}, not {name}): nothing was written"
        ))
    }
}

/// Writes the MBR and the partition of `img` to the disk, leaving the gap
/// between them as it is (a boot loader at a raw offset, such as the i.MX's
/// `imx-boot` at 32 KiB, stays), then flushes it.
fn write_device(img: &Path, disk: &Disk) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::fs::OpenOptionsExt;
    let len = fs::metadata(img)
        .map_err(|e| format!("{}: {e}", img.display()))?
        .len();
    if len > disk.bytes {
        return Err(format!(
            "the image needs {} MiB and {} has {} MiB",
            len >> 20,
            disk.path.display(),
            disk.bytes >> 20
        ));
    }
    let mut src = fs::File::open(img).map_err(|e| format!("{}: {e}", img.display()))?;
    // O_EXCL on a block device: Linux refuses it while anything (a mount) has it open.
    const O_EXCL: i32 = 0o200;
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .custom_flags(O_EXCL)
        .open(&disk.path)
        .map_err(|e| format!("{}: {e}", disk.path.display()))?;
    let mut mbr = [0u8; 512];
    src.read_exact(&mut mbr)
        .map_err(|e| format!("{}: {e}", img.display()))?;
    dst.write_all(&mbr)
        .map_err(|e| format!("{}: {e}", disk.path.display()))?;
    for f in [&mut src as &mut dyn Seek, &mut dst] {
        f.seek(SeekFrom::Start(PART_START))
            .map_err(|e| format!("{}: {e}", disk.path.display()))?;
    }
    eprintln!(
        "xtask: writing {} MiB to {}",
        (len - PART_START) >> 20,
        disk.path.display()
    );
    std::io::copy(&mut src, &mut dst).map_err(|e| format!("{}: {e}", disk.path.display()))?;
    dst.sync_all()
        .map_err(|e| format!("{}: {e}", disk.path.display()))?;
    // Let the kernel see the new partition table (best effort: it is on the card).
    let _ = Command::new("blockdev")
        .arg("--rereadpt")
        .arg(&disk.path)
        .status();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake /sys and /dev: `sdb` removable with `sdb1`, `sda` fixed with
    /// `sda1`/`sda2`, `mmcblk0` (an SD slot, removable 0) with `mmcblk0p1`,
    /// `sdc` removable without a medium, `sdd` removable held by `dm-0`.
    fn fake(mounts: &str, swaps: &str) -> (System, PathBuf) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "xtask-sdcard-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        let sys = root.join("sys");
        let dev = root.join("dev");
        fs::create_dir_all(&dev).unwrap();
        let disk = |name: &str, removable: u8, size: u64, parts: &[&str]| {
            let real = sys.join("devices/x/block").join(name);
            fs::create_dir_all(real.join("holders")).unwrap();
            fs::write(real.join("removable"), format!("{removable}\n")).unwrap();
            fs::write(real.join("size"), format!("{size}\n")).unwrap();
            fs::create_dir_all(real.join("device")).unwrap();
            fs::write(real.join("device/model"), "Card Reader  \n").unwrap();
            fs::create_dir_all(sys.join("class/block")).unwrap();
            std::os::unix::fs::symlink(&real, sys.join("class/block").join(name)).unwrap();
            fs::write(dev.join(name), "").unwrap();
            for p in parts {
                let pd = real.join(p);
                fs::create_dir_all(pd.join("holders")).unwrap();
                fs::write(pd.join("partition"), "1\n").unwrap();
                std::os::unix::fs::symlink(&pd, sys.join("class/block").join(p)).unwrap();
                fs::write(dev.join(p), "").unwrap();
            }
        };
        disk("sdb", 1, 62_333_952, &["sdb1"]);
        disk("sda", 0, 500_118_192, &["sda1", "sda2"]);
        disk("mmcblk0", 0, 31_116_288, &["mmcblk0p1"]);
        disk("sdc", 1, 0, &[]);
        disk("sdd", 1, 62_333_952, &["sdd1"]);
        fs::write(sys.join("devices/x/block/sdd/sdd1/holders/dm-0"), "").unwrap();
        fs::create_dir_all(dev.join("disk/by-id")).unwrap();
        std::os::unix::fs::symlink(dev.join("sdb"), dev.join("disk/by-id/usb-card")).unwrap();
        let s = System {
            sysfs: sys,
            mounts: mounts.to_owned(),
            swaps: swaps.to_owned(),
            dev,
            need_block_node: false,
        };
        (s, root)
    }

    /// The check of `/dev/<name>` on the fake system (whose `/dev/...` names
    /// resolve under its own `dev` directory, as the real ones under `/dev`).
    fn check(name: &str, mounts: &str, swaps: &str) -> Result<Disk, String> {
        let (sys, root) = fake(mounts, swaps);
        let r = check_device(&sys.dev.join(name), &sys);
        let _ = fs::remove_dir_all(root);
        r
    }

    const MOUNTS: &str = "proc /proc proc rw 0 0\n\
        /dev/sda2 / ext4 rw,relatime 0 0\n\
        /dev/sda1 /boot/efi vfat rw 0 0\n\
        tmpfs /run tmpfs rw 0 0\n";

    #[test]
    fn an_unused_removable_whole_disk_is_accepted() {
        let d = check("sdb", MOUNTS, "Filename Type Size Used Priority\n").unwrap();
        assert_eq!(d.name, "sdb");
        assert_eq!(d.bytes, 62_333_952 * 512);
        assert_eq!(d.model, "Card Reader");
        assert_eq!(d.describe(), "Card Reader, 29.7 GiB, removable");
        // An SD slot (mmcblk) counts as removable whatever sysfs says.
        assert_eq!(check("mmcblk0", MOUNTS, "").unwrap().name, "mmcblk0");
    }

    #[test]
    fn a_symlink_to_the_disk_is_followed() {
        let (sys, root) = fake("", "");
        let d = check_device(&sys.dev.join("disk/by-id/usb-card"), &sys).unwrap();
        assert_eq!(d.name, "sdb");
        let _ = fs::remove_dir_all(root);
    }

    #[test]
    fn the_system_disk_a_partition_and_a_fixed_disk_are_refused() {
        let e = check("sda", MOUNTS, "").unwrap_err();
        assert!(e.contains("is not a removable disk"), "{e}");
        let e = check("sdb1", MOUNTS, "").unwrap_err();
        assert!(
            e.contains("is a partition: give the whole disk (/dev/sdb)"),
            "{e}"
        );
        let e = check("sdc", MOUNTS, "").unwrap_err();
        assert!(e.contains("has no medium"), "{e}");
        let e = check("nosuch", MOUNTS, "").unwrap_err();
        assert!(e.contains("No such file"), "{e}");
    }

    #[test]
    fn a_mounted_swapped_on_held_or_root_card_is_refused() {
        let (sys, root) = fake(
            "/dev/sdb1 /media/me/BOOT\\040CARD vfat rw 0 0\n",
            "Filename Type Size Used Priority\n",
        );
        let e = check_device(&sys.dev.join("sdb"), &sys).unwrap_err();
        assert!(
            e.contains("is in use (/dev/sdb1 on /media/me/BOOT CARD): unmount it first"),
            "{e}"
        );
        let _ = fs::remove_dir_all(root);
        let (sys, root) = fake(
            "",
            "Filename Type Size Used Priority\n/dev/mmcblk0p1 partition 1024 0 -2\n",
        );
        let e = check_device(&sys.dev.join("mmcblk0"), &sys).unwrap_err();
        assert!(e.contains("in use (/dev/mmcblk0p1 as swap)"), "{e}");
        let _ = fs::remove_dir_all(root);
        // A Pi booted from its card: the root filesystem is on mmcblk0.
        let (sys, root) = fake("/dev/mmcblk0p1 / ext4 rw 0 0\n", "");
        let e = check_device(&sys.dev.join("mmcblk0"), &sys).unwrap_err();
        assert!(
            e.contains("holds the root filesystem (/dev/mmcblk0p1 on /)"),
            "{e}"
        );
        let _ = fs::remove_dir_all(root);
        let (sys, root) = fake("", "");
        let e = check_device(&sys.dev.join("sdd"), &sys).unwrap_err();
        assert!(e.contains("/dev/sdd1 is held by dm-0"), "{e}");
        let _ = fs::remove_dir_all(root);
    }

    #[test]
    fn only_the_devices_name_confirms() {
        assert!(confirmed("sdb\n", "sdb").is_ok());
        assert!(confirmed("/dev/sdb\n", "sdb").is_ok());
        for no in ["y\n", "yes\n", "\n", "sda\n", "sdb1\n"] {
            let e = confirmed(no, "sdb").unwrap_err();
            assert!(e.contains("nothing was written"), "{e}");
        }
    }

    #[test]
    fn the_mbr_has_one_fat32_partition_at_16_mib() {
        let m = mbr(128 << 11).unwrap();
        assert_eq!(&m[510..], &[0x55, 0xaa]);
        assert_eq!(m[446], 0x80);
        assert_eq!(m[446 + 4], 0x0c);
        assert_eq!(u32::from_le_bytes(m[454..458].try_into().unwrap()), 32768);
        assert_eq!(u32::from_le_bytes(m[458..462].try_into().unwrap()), 262144);
        // The other three entries are empty.
        assert!(m[462..510].iter().all(|&b| b == 0));
        assert!(mbr(1 << 32).is_err());
        assert_eq!(partition_size(0), 64 << 20);
        assert_eq!(partition_size(100 << 20), 141 << 20);
    }
}
