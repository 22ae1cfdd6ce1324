//! The console's command language: the command table (which `help` prints), and
//! parsing of arguments with errors that say what was wrong and what is accepted.
#![forbid(unsafe_code)]

use core::fmt::{self, Write as _};

/// One console command: its name, its arguments and what it does.
pub struct CommandInfo {
    pub name: &'static str,
    pub args: &'static str,
    pub help: &'static str,
}

/// Every command the console knows, in the order `help` lists them.
pub const COMMANDS: &[CommandInfo] = &[
    CommandInfo {
        name: "help",
        args: "",
        help: "this list",
    },
    CommandInfo {
        name: "info",
        args: "",
        help: "hypervisor version, board, memory, CPUs, GIC",
    },
    CommandInfo {
        name: "vms",
        args: "",
        help: "the VMs: state, vCPUs, memory, world switches",
    },
    CommandInfo {
        name: "vcpus",
        args: "",
        help: "every vCPU: physical CPU, state, PC",
    },
    CommandInfo {
        name: "regs",
        args: "VCPU",
        help: "general registers of a vCPU (e.g. vm0.1)",
    },
    CommandInfo {
        name: "sysregs",
        args: "VCPU [PATTERN]",
        help: "system registers of a vCPU whose name contains PATTERN",
    },
    CommandInfo {
        name: "mem",
        args: "VCPU VA [LEN]",
        help: "hex dump of guest memory at a virtual address (LEN <= 4096, default 64)",
    },
    CommandInfo {
        name: "vtop",
        args: "VCPU VA",
        help: "translate a guest virtual address: each stage-1 step, IPA and PA",
    },
    CommandInfo {
        name: "traps",
        args: "",
        help: "trapped system-register accesses: name, encoding, reads, writes",
    },
    CommandInfo {
        name: "uart",
        args: "",
        help: "the UARTs: interrupt-driven or polled, interrupts, bytes through the rings",
    },
    CommandInfo {
        name: "pause",
        args: "VM",
        help: "stop a VM's vCPUs (e.g. pause vm0)",
    },
    CommandInfo {
        name: "resume",
        args: "VM",
        help: "let a paused VM run again",
    },
    CommandInfo {
        name: "reset",
        args: "VM",
        help: "restart a VM from its original kernel, initrd and device tree",
    },
    CommandInfo {
        name: "snapshot",
        args: "save VM [SLOT] | restore VM SLOT | list | delete SLOT",
        help: "checkpoint and roll back VMs in memory (--force: one with passed-through devices)",
    },
    CommandInfo {
        name: "gdb",
        args: "VM",
        help: "the VM the next GDB session on this line debugs (default vm0)",
    },
    CommandInfo {
        name: "log",
        args: "quiet|normal|verbose",
        help: "how much guest faults are logged",
    },
];

/// Why a command line could not be understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    UnknownCommand(heapless::String<32>),
    Missing(&'static str),
    Extra(heapless::String<32>),
    BadVm(heapless::String<32>),
    BadVcpu(heapless::String<32>),
    BadNumber(heapless::String<32>),
    BadWord {
        what: &'static str,
        found: heapless::String<32>,
        accepted: &'static str,
    },
}

fn short(s: &str) -> heapless::String<32> {
    let mut out = heapless::String::new();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownCommand(c) => write!(f, "unknown command '{c}': type 'help'"),
            Self::Missing(what) => write!(f, "missing {what}"),
            Self::Extra(w) => write!(f, "unexpected '{w}'"),
            Self::BadVm(w) => write!(f, "'{w}' is not a VM name: use vmN, e.g. vm0"),
            Self::BadVcpu(w) => write!(f, "'{w}' is not a vCPU name: use vmN.M, e.g. vm0.1"),
            Self::BadNumber(w) => {
                write!(f, "'{w}' is not a number: use decimal or 0x-prefixed hex")
            }
            Self::BadWord {
                what,
                found,
                accepted,
            } => write!(f, "'{found}' is not a {what}: use {accepted}"),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VcpuId {
    pub vm: usize,
    pub vcpu: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LogLevel {
    Quiet,
    Normal,
    Verbose,
}

/// A parsed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    Help,
    Info,
    Vms,
    Vcpus,
    Regs(VcpuId),
    Sysregs(VcpuId, Option<&'a str>),
    Mem(VcpuId, u64, u64),
    Vtop(VcpuId, u64),
    Traps,
    /// How the UARTs are driven, and what went through them.
    Uart,
    Pause(usize),
    Resume(usize),
    /// Restart a VM (as PSCI SYSTEM_RESET would).
    Reset(usize),
    /// Save a VM into a slot; `true`: even with passed-through devices (`--force`).
    SnapshotSave(usize, &'a str, bool),
    /// Restore a VM from a slot; `true`: even with passed-through devices.
    SnapshotRestore(usize, &'a str, bool),
    SnapshotList,
    /// Free a slot (its memory goes back to the snapshot pool or the heap).
    SnapshotDelete(&'a str),
    /// Stream a snapshot of the VM to the host (binary frames, acknowledged, on
    /// this console); `true`: even with passed-through devices.
    /// VM, `--force`, `--self-contained` (no pages as booted).
    SnapshotSend(usize, bool, bool),
    /// The same as checksummed hex text (`--hex`: the fallback for a line that
    /// cannot carry binary); the snapshot is gathered in the heap first.
    SnapshotSendHex(usize, bool),
    /// Receive a snapshot streamed by the host (binary frames) and restore it.
    SnapshotReceiveStream(usize, bool),
    /// Receive a snapshot of this length and CRC-32 from the host and restore it;
    /// `true`: even with passed-through devices.
    SnapshotReceive(usize, usize, u32, bool),
    Log(LogLevel),
    /// Choose the VM the next GDB session debugs.
    Gdb(usize),
}

/// `vmN`.
pub fn parse_vm(w: &str) -> Result<usize, ParseError> {
    w.strip_prefix("vm")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ParseError::BadVm(short(w)))
}

/// `vmN.M`.
pub fn parse_vcpu(w: &str) -> Result<VcpuId, ParseError> {
    let bad = || ParseError::BadVcpu(short(w));
    let (vm, vcpu) = w.split_once('.').ok_or_else(bad)?;
    Ok(VcpuId {
        vm: parse_vm(vm).map_err(|_| bad())?,
        vcpu: vcpu.parse().map_err(|_| bad())?,
    })
}

/// A number in decimal or `0x` hex.
pub fn parse_number(w: &str) -> Result<u64, ParseError> {
    let r = match w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => w.replace('_', "").parse(),
    };
    r.map_err(|_| ParseError::BadNumber(short(w)))
}

/// Parses one command line. An empty line is `Ok(None)`.
pub fn parse(line: &str) -> Result<Option<Command<'_>>, ParseError> {
    let mut words = line.split_ascii_whitespace();
    let Some(cmd) = words.next() else {
        return Ok(None);
    };
    let mut next = |what: &'static str| words.next().ok_or(ParseError::Missing(what));
    let c = match cmd {
        "help" | "?" => Command::Help,
        "info" => Command::Info,
        "vms" => Command::Vms,
        "vcpus" => Command::Vcpus,
        "regs" => Command::Regs(parse_vcpu(next("a vCPU (vmN.M)")?)?),
        "sysregs" => {
            let v = parse_vcpu(next("a vCPU (vmN.M)")?)?;
            Command::Sysregs(v, next("").ok())
        }
        "mem" => {
            let v = parse_vcpu(next("a vCPU (vmN.M)")?)?;
            let va = parse_number(next("a virtual address")?)?;
            let len = match next("") {
                Ok(l) => parse_number(l)?,
                Err(_) => 64,
            };
            Command::Mem(v, va, len)
        }
        "vtop" => {
            let v = parse_vcpu(next("a vCPU (vmN.M)")?)?;
            Command::Vtop(v, parse_number(next("a virtual address")?)?)
        }
        "traps" => Command::Traps,
        "uart" => Command::Uart,
        "gdb" => Command::Gdb(parse_vm(next("a VM (vmN)")?)?),
        "pause" => Command::Pause(parse_vm(next("a VM (vmN)")?)?),
        "resume" => Command::Resume(parse_vm(next("a VM (vmN)")?)?),
        "reset" => Command::Reset(parse_vm(next("a VM (vmN)")?)?),
        "snapshot" => {
            // `--force` may come anywhere after the subcommand: it lets a VM with
            // passed-through devices be saved or restored.
            let rest: heapless::Vec<&str, 8> = words.by_ref().take(8).collect();
            let force = rest.contains(&"--force");
            let hex = rest.contains(&"--hex");
            let whole = rest.contains(&"--self-contained");
            let mut args = rest
                .iter()
                .copied()
                .filter(|w| *w != "--force" && *w != "--hex" && *w != "--self-contained");
            let mut next = |what: &'static str| args.next().ok_or(ParseError::Missing(what));
            let c = match next("save, restore, list or delete")? {
                "save" => {
                    let vm = parse_vm(next("a VM (vmN)")?)?;
                    Command::SnapshotSave(vm, next("").unwrap_or("default"), force)
                }
                "restore" => {
                    let vm = parse_vm(next("a VM (vmN)")?)?;
                    Command::SnapshotRestore(vm, next("a slot name")?, force)
                }
                "list" => Command::SnapshotList,
                "delete" => Command::SnapshotDelete(next("a slot name")?),
                "send" if hex => Command::SnapshotSendHex(parse_vm(next("a VM (vmN)")?)?, force),
                "send" => Command::SnapshotSend(parse_vm(next("a VM (vmN)")?)?, force, whole),
                "receive" => {
                    let vm = parse_vm(next("a VM (vmN)")?)?;
                    let Ok(len) = next("") else {
                        return Ok(Some(Command::SnapshotReceiveStream(vm, force)));
                    };
                    let len = parse_number(len)? as usize;
                    let crc = next("the CRC-32 in hex")?;
                    let crc = u32::from_str_radix(crc, 16)
                        .map_err(|_| ParseError::BadNumber(short(crc)))?;
                    Command::SnapshotReceive(vm, len, crc, force)
                }
                other => {
                    return Err(ParseError::BadWord {
                        what: "snapshot command",
                        found: short(other),
                        accepted: "save, restore, list, delete, send or receive",
                    })
                }
            };
            if let Some(extra) = args.next() {
                return Err(ParseError::Extra(short(extra)));
            }
            c
        }
        "log" => Command::Log(match next("a level")? {
            "quiet" => LogLevel::Quiet,
            "normal" => LogLevel::Normal,
            "verbose" => LogLevel::Verbose,
            other => {
                return Err(ParseError::BadWord {
                    what: "log level",
                    found: short(other),
                    accepted: "quiet, normal or verbose",
                })
            }
        }),
        other => return Err(ParseError::UnknownCommand(short(other))),
    };
    if let Some(extra) = words.next() {
        return Err(ParseError::Extra(short(extra)));
    }
    Ok(Some(c))
}

/// The `help` text: one line per command.
pub fn help(out: &mut (impl fmt::Write + ?Sized)) -> fmt::Result {
    for c in COMMANDS {
        let usage = if c.args.is_empty() {
            heapless::String::<64>::try_from(c.name).unwrap_or_default()
        } else {
            let mut s = heapless::String::<64>::new();
            let _ = write!(s, "{} {}", c.name, c.args);
            s
        };
        writeln!(out, "  {usage:<44} {}", c.help)?;
    }
    Ok(())
}
