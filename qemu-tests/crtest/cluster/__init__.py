# SPDX-License-Identifier: MIT
"""The whole cluster in QEMU (qemu-tests/cluster, the demo; bench and admin use its nodes and
checks): a master boots the shared root from its disk and serves it, diskless clients
PXE-boot from it.

variants: who gives the addresses, which images and root each setup has; build: the roots,
disks and images of a kind of setup; node: a node's VM and command port; checks: what each
node, the master's logs and /home must show; reboots: the master's reboots under writing
clients; flow: one variant run end to end."""
