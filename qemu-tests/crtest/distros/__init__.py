# SPDX-License-Identifier: MIT
"""Boot tests with real roots (qemu-tests/distros): diskless clients boot debootstrapped Debian
12 (systemd, runit) over NFS from run's server VM. scenarios: the roots and their clients;
checks: what each booted system reports (lib/distro-report); runner: a scenario's VMs and
the run."""
