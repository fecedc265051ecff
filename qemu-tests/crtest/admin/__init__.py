# SPDX-License-Identifier: MIT
"""README's master steps on an installed Debian master in QEMU (qemu-tests/admin), then its
clients. steps: README's marked blocks as stage scripts; disks: the master's disks, read and
mounted on the host; grub: the boot loader's test double; master: the master's VM and its
ports; phases: install, master, clients, kernel, maintenance; run: the phases in order."""
