//! Properties that reference other nodes by phandle, and where in their values
//! the phandles sit: the one list behind the guest tree's closure (the clocks,
//! regulators and GPIO controllers an assigned node needs come with it) and
//! behind the renumbering of a dom0less partial tree's phandles.
//!
//! Most such properties are lists of `<phandle arg...>` entries whose argument
//! count is the referenced provider's `#...-cells` (Linux
//! `of_parse_phandle_with_args`); the rest hold bare phandles. A property we do
//! not list is copied as it is and never followed.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use fdt::node::FdtNode;

use crate::dt::props::{cell, u32_prop};

/// How a property names its phandles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// `<phandle arg...>` entries; the provider's property gives the argument count.
    WithArgs(&'static str),
    /// Bare phandles, one per cell.
    Bare,
}

/// (property name, or suffix when it starts with '-'; shape).
const RULES: &[(&str, Shape)] = &[
    ("interrupt-parent", Shape::Bare),
    ("interrupts-extended", Shape::WithArgs("#interrupt-cells")),
    ("clocks", Shape::WithArgs("#clock-cells")),
    ("assigned-clocks", Shape::WithArgs("#clock-cells")),
    ("assigned-clock-parents", Shape::WithArgs("#clock-cells")),
    ("resets", Shape::WithArgs("#reset-cells")),
    ("power-domains", Shape::WithArgs("#power-domain-cells")),
    ("phys", Shape::WithArgs("#phy-cells")),
    ("dmas", Shape::WithArgs("#dma-cells")),
    ("mboxes", Shape::WithArgs("#mbox-cells")),
    ("pwms", Shape::WithArgs("#pwm-cells")),
    ("io-channels", Shape::WithArgs("#io-channel-cells")),
    ("thermal-sensors", Shape::WithArgs("#thermal-sensor-cells")),
    ("gpios", Shape::WithArgs("#gpio-cells")),
    ("-gpios", Shape::WithArgs("#gpio-cells")),
    ("-gpio", Shape::WithArgs("#gpio-cells")),
    ("-supply", Shape::Bare),
    ("nvmem-cells", Shape::Bare),
];

fn shape(name: &str) -> Option<Shape> {
    RULES.iter().find_map(|&(rule, shape)| {
        let hit = if rule.starts_with('-') {
            name.ends_with(rule) && name.len() > rule.len()
        } else {
            name == rule
        };
        hit.then_some(shape)
    })
}

/// Whether `name` is a property that references nodes by phandle.
pub fn is_reference(name: &str) -> bool {
    shape(name).is_some()
}

/// The phandles in property `name` with value `value`, each with the index of
/// the cell that holds it. `cells_of(phandle, "#clock-cells")` answers a
/// provider's argument count (`None`: no such provider, and the rest of the
/// list cannot be parsed, so it stops there).
pub fn references(
    name: &str,
    value: &[u8],
    cells_of: &mut dyn FnMut(u32, &str) -> Option<u32>,
) -> Vec<(usize, u32)> {
    let mut out = Vec::new();
    let Some(shape) = shape(name) else {
        return out;
    };
    let mut i = 0;
    while let Some(ph) = cell(value, i) {
        match shape {
            Shape::Bare => {
                if ph != 0 {
                    out.push((i, ph));
                }
                i += 1;
            }
            Shape::WithArgs(prop) => {
                if ph == 0 {
                    // An empty entry (a hole in a GPIO list).
                    i += 1;
                    continue;
                }
                out.push((i, ph));
                let Some(args) = cells_of(ph, prop) else {
                    break;
                };
                i += 1 + args as usize;
            }
        }
    }
    out
}

/// [`references`] for a node of a parsed tree: every phandle its properties
/// name, with the property name.
pub fn node_references<'a>(fdt: &fdt::Fdt<'a>, node: &FdtNode<'_, 'a>) -> Vec<(&'a str, u32)> {
    let mut out = Vec::new();
    let mut cells_of = |ph: u32, prop: &str| -> Option<u32> {
        let p = fdt.find_phandle(ph)?;
        Some(
            p.properties()
                .find(|x| x.name == prop)
                .and_then(|x| u32_prop(x.value))
                .unwrap_or(0),
        )
    };
    for p in node.properties() {
        for (_, ph) in references(p.name, p.value, &mut cells_of) {
            out.push((p.name, ph));
        }
    }
    out
}
