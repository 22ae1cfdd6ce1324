#![forbid(unsafe_code)]

use super::*;

fn feed(m: &mut InputMux, bytes: &[u8]) -> Vec<Event> {
    let mut v = Vec::new();
    for &b in bytes {
        m.input(b, |e| v.push(e));
    }
    v
}

const K: u8 = SWITCH_KEY;

#[test]
fn input_starts_at_the_hypervisor() {
    let mut m = InputMux::new();
    assert_eq!(feed(&mut m, b"info\r"), b"info\r".map(Event::Hypervisor));
}

#[test]
fn three_ctrl_brackets_cycle_through_the_vms_and_back() {
    let mut m = InputMux::new();
    m.set_vms(2);
    assert_eq!(feed(&mut m, &[K, K, K]), [Event::Switched(Target::Vm(0))]);
    assert_eq!(
        feed(&mut m, b"ls"),
        [Event::Vm(0, b'l'), Event::Vm(0, b's')]
    );
    assert_eq!(feed(&mut m, &[K, K, K]), [Event::Switched(Target::Vm(1))]);
    assert_eq!(feed(&mut m, b"x"), [Event::Vm(1, b'x')]);
    assert_eq!(
        feed(&mut m, &[K, K, K]),
        [Event::Switched(Target::Hypervisor)]
    );
    assert_eq!(m.target(), Target::Hypervisor);
}

#[test]
fn fewer_than_three_are_delivered_as_typed() {
    let mut m = InputMux::new();
    m.set_vms(1);
    feed(&mut m, &[K, K, K]);
    assert_eq!(
        feed(&mut m, &[K, b'a', K, K, b'b']),
        [
            Event::Vm(0, K),
            Event::Vm(0, b'a'),
            Event::Vm(0, K),
            Event::Vm(0, K),
            Event::Vm(0, b'b')
        ]
    );
    assert_eq!(m.target(), Target::Vm(0));
}

#[test]
fn with_no_vm_input_stays_with_the_hypervisor_and_says_so() {
    let mut m = InputMux::new();
    assert_eq!(
        feed(&mut m, &[K, K, K]),
        [Event::Switched(Target::Hypervisor)]
    );
}

#[test]
fn gdb_takes_every_byte_and_no_switch_happens() {
    let mut m = InputMux::new();
    m.set_vms(1);
    feed(&mut m, &[K, K, K]);
    m.set_gdb(true);
    assert_eq!(m.target(), Target::Hypervisor);
    assert_eq!(
        feed(&mut m, &[K, K, K, b'$']),
        [K, K, K, b'$'].map(Event::Hypervisor)
    );
    m.set_gdb(false);
    assert_eq!(feed(&mut m, &[K, K, K]), [Event::Switched(Target::Vm(0))]);
}

#[test]
fn a_vm_going_away_moves_input_back() {
    let mut m = InputMux::new();
    m.set_vms(3);
    feed(&mut m, &[K, K, K, K, K, K, K, K, K]);
    assert_eq!(m.target(), Target::Vm(2));
    m.set_vms(2);
    assert_eq!(m.target(), Target::Hypervisor);
}

fn out(m: &mut OutputMux, who: Writer, bytes: &[u8], line: &mut Vec<u8>) {
    m.write(who, bytes, |b| line.extend_from_slice(b));
}

#[test]
fn a_half_line_of_the_other_writer_is_ended_first() {
    let mut m = OutputMux::new();
    let mut line = Vec::new();
    out(&mut m, Writer::Guest, b"login: ", &mut line);
    out(
        &mut m,
        Writer::Hypervisor,
        b"hv: vm1 powered off\n",
        &mut line,
    );
    out(&mut m, Writer::Guest, b"root\n", &mut line);
    out(&mut m, Writer::Hypervisor, b"hv> ", &mut line);
    out(&mut m, Writer::Hypervisor, b"info", &mut line);
    out(&mut m, Writer::Guest, b"ok\n", &mut line);
    assert_eq!(
        String::from_utf8(line).unwrap(),
        "login: \nhv: vm1 powered off\nroot\nhv> info\nok\n"
    );
}

#[test]
fn guest_output_is_held_while_gdb_owns_the_line() {
    let mut m = OutputMux::new();
    let mut line = Vec::new();
    m.set_gdb(true, b"", |b| line.extend_from_slice(b));
    out(&mut m, Writer::Hypervisor, b"$T05#b9", &mut line);
    out(&mut m, Writer::Guest, b"tick 1\n", &mut line);
    out(&mut m, Writer::Hypervisor, b"+", &mut line);
    assert_eq!(line, b"$T05#b9+");
    m.set_gdb(false, b"hv: guest output while GDB was attached:\n", |b| {
        line.extend_from_slice(b)
    });
    assert_eq!(
        String::from_utf8(line).unwrap(),
        "$T05#b9+\nhv: guest output while GDB was attached:\ntick 1\n"
    );
}

#[test]
fn held_output_that_does_not_fit_is_counted() {
    let mut m = OutputMux::new();
    let mut line = Vec::new();
    m.set_gdb(true, b"", |_| {});
    out(&mut m, Writer::Guest, &vec![b'x'; HELD + 10], &mut line);
    assert!(line.is_empty());
    m.set_gdb(false, b"held:\n", |b| line.extend_from_slice(b));
    let text = String::from_utf8(line).unwrap();
    assert!(text.starts_with("held:\n"));
    assert_eq!(text.matches('x').count(), HELD);
    assert!(text.ends_with("hv: (10 more bytes of guest output were dropped)\n"));
    // Nothing is held twice.
    let mut again = Vec::new();
    m.set_gdb(false, b"held:\n", |b| again.extend_from_slice(b));
    assert!(again.is_empty());
}
