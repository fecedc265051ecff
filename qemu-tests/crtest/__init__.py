# SPDX-License-Identifier: MIT
"""crtest: the QEMU boot-test harness of clusterroot, as a library.

The programs in qemu-tests/ (run, cluster, distros, bench, admin) are thin command lines over
it. The harness (paths, builds, network namespaces, VMs, the server VM, reports, console
patterns, flavors) knows no scenario; the scenarios are data (crtest.scenarios), declared once
with the flavors they run under; flows that are more than boots one after another are
functions in modules of their own (crtest.flows, crtest.cluster, crtest.distros,
crtest.admin). Every constructor takes the directories it writes to (crtest.paths.Dirs).
Python 3.11, standard library only.
"""
