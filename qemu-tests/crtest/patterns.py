# SPDX-License-Identifier: MIT
"""The console lines the tests wait for or fail on, each defined once: the kernel's, the
initramfs generators' and inits', the agent's, the firmware's and the test inits' (CRTEST)."""

# The kernel.
PANIC = r"Kernel panic"
RUN_INIT = r"Run /init as init process"
POWER_DOWN = r"reboot: Power down"

# The agent.
AGENT_ERROR = r"clusterroot: error:"
# The agent's error on the console; not the CRTEST lines that repeat the kernel log (distros).
AGENT_ERROR_NOT_REPORTED = r"^(?!.*CRTEST ).*clusterroot: error:"
READY = r"clusterroot: ready:"

# mkinitcpio's busybox init.
HOOK_START = r":: running hook \[clusterroot\]"
LATE_HOOK_START = r":: running late hook \[clusterroot\]"
SHELL_PROMPT = r"\[rootfs "
# ... when the mount handler (the agent) failed with the exit code of a missing root.
MOUNT_HANDLER_FAILED = r"ERROR: clusterroot mount failed with exit code 4"

# systemd (mkinitcpio's systemd hook, dracut's systemd module, a booted system).
# systemd's status lines shorten "unit - description" in the middle and color the name.
SD_START = r"Starting \S*clusterroot\.servi"
SD_EMERGENCY = r"You are in emergency mode"
# sulogin's prompt: the image's root account is locked, and the install hook lets the
# emergency shell open anyway (SYSTEMD_SULOGIN_FORCE=1), after Enter.
SD_SHELL = r"Press Enter for maintenance"
# systemd's "[FAILED]", in colour or not: systemd colours it on the serial console (the
# initramfs's and a booted Debian root's alike). The run scenarios looked for it uncoloured
# only until crtest, so a failed unit never failed their systemd boots.
SD_FAILED = r"\[(?:\x1b\[[0-9;]*m)*FAILED(?:\x1b\[[0-9;]*m)*\]"

# dracut: without systemd its emergency shell says this; with systemd (Fedora's and EL's kind,
# and Debian's master in the admin test) its emergency.service the other.
DRACUT_SHELL = r"Dropping to debug shell"
DRACUT_SD_EMERGENCY = r"Entering emergency mode"

# initramfs-tools (Debian's init): its panic() opens a shell with this prompt; the test-only
# init-premount and init-bottom scripts (qemu-tests/hooks/initramfs-tools) say that they ran.
IT_SHELL = r"\(initramfs\) "
IT_PREMOUNT = r"crtest-it: init-premount ran, nothing on /root yet"
IT_BOTTOM_OVERLAY = r"crtest-it: init-bottom ran, /root is overlay"
IT_BREAK = r"Spawning shell within the initramfs"

# Firmware. SeaBIOS, when network boot failed (iPXE gave up on DHCP or a fetch): it resets in
# 60 s.
PXE_RETRY = "No bootable device"
# OVMF, when its PXE boot failed (CI saw its TFTP download of ipxe.efi time out, PXE-E18,
# under TCG). OVMF then tries its other boot options and waits in its boot menu; the test
# resets it, as a real node's firmware set to retry network boot would (PxeVM.reset).
UEFI_PXE_FAILED = r'BdsDxe: failed to load Boot\d+ "UEFI PXEv4'
IPXE_START = r"iPXE initialising devices"

# The test inits (lib/node-init, lib/cluster-init, lib/distro-report, lib/admin-node).
CRTEST_ANY = r"CRTEST "
CRTEST_DONE = r"CRTEST done"
CRTEST_UP = r"CRTEST up$"

# The patterns of text that waits for input on an unfinished line. Only these match the
# console's last line before its newline (VM.expect). sulogin writes its prompt in two
# pieces, the second starting with the newline that ends SD_SHELL's line.
PROMPTS = (SHELL_PROMPT, SD_SHELL, IT_SHELL)
