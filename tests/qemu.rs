//! QEMU integration tests (being written).
