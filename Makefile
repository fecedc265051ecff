# SPDX-License-Identifier: MIT
#
# clusterroot's install entry point, laid out as zram-generator's Makefile is: `make` builds,
# `make install` copies into $(DESTDIR)$(PREFIX) and nothing else, every directory a knob.
# The packages (packaging/: Arch, Debian, Void) call these targets:
#
#   make build                                  # the two static binaries (cargo, musl)
#   make install DESTDIR=/tmp/pkg PREFIX=/usr   # lay them and the generators' files out
#   make check                                  # the unit tests a package's check() runs
#
# What `make install` lays out, with the defaults (packaging/files lists every file; the
# packages' tests and packaging/tests/install check that list):
#   $(BINDIR)              clusterroot (the agent) and crctl, static
#   $(INITCPIODIR)         mkinitcpio's build hook and runtime hook, both named clusterroot
#   $(DRACUTDIR)           dracut's module 90clusterroot
#   $(INITRAMFSTOOLSDIR)   initramfs-tools' hook and boot script, both named clusterroot
#   $(SYSCONFDIR)          the kernel hooks: kernel.d/post-install/60-clusterroot (xbps runs
#                          it; Arch from a pacman hook) and kernel/postinst.d/zz-clusterroot
#                          (Debian's, which runs 60-clusterroot)
#   $(MANDIR)/man8         clusterroot.8 and crctl.8
#   completions            crctl's, for bash, zsh and fish (crctl completions SHELL)
#   $(DATADIR)/clusterroot the configs an admin copies into /etc (see README, "Installing on
#                          a master") and the example inventory, cluster.example
#
# The hooks pack the agent from $(BINDIR)/clusterroot: with a BINDIR other than /usr/bin,
# `make install` writes that path into the installed hooks' default (CLUSTERROOT_AGENT and
# dracut's clusterroot_agent still name another). The version is the workspace's, Cargo.toml's
# [workspace.package] version: `make version` prints it.

PREFIX ?= /usr
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
SYSCONFDIR ?= /etc
INITCPIODIR ?= $(LIBDIR)/initcpio
DRACUTDIR ?= $(LIBDIR)/dracut/modules.d
INITRAMFSTOOLSDIR ?= $(DATADIR)/initramfs-tools
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR ?= $(DATADIR)/zsh/site-functions
FISHCOMPDIR ?= $(DATADIR)/fish/vendor_completions.d
SHAREDIR ?= $(DATADIR)/clusterroot

CARGO ?= cargo
# --locked here; a distribution's build passes --frozen (Arch) or --offline.
CARGOFLAGS ?= --locked
TARGET ?= x86_64-unknown-linux-musl
TARGETDIR ?= target
BUILDDIR = $(TARGETDIR)/$(TARGET)/release

INSTALL ?= install
SED ?= sed

VERSION := $(shell $(SED) -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$$/\1/p' Cargo.toml)

.PHONY: all build check install uninstall version
all: build

build:
	$(CARGO) build $(CARGOFLAGS) --release --target $(TARGET) --target-dir $(TARGETDIR) -p clusterroot -p crctl

# The unit tests (those that need root stay ignored, as under plain cargo test).
check:
	$(CARGO) test $(CARGOFLAGS) --workspace --target-dir $(TARGETDIR)

version:
	@echo $(VERSION)

# The agent's default path in the three generators' hooks, for a BINDIR other than /usr/bin.
agent_path = $(SED) -i 's|:-/usr/bin/clusterroot}|:-$(BINDIR)/clusterroot}|'

install:
	test -x $(BUILDDIR)/clusterroot -a -x $(BUILDDIR)/crctl || { echo "make install: no $(BUILDDIR)/clusterroot or crctl: run make build first" >&2; exit 1; }
	# the two binaries
	$(INSTALL) -D -m 0755 -t $(DESTDIR)$(BINDIR) $(BUILDDIR)/clusterroot $(BUILDDIR)/crctl
	# mkinitcpio: the build hook and the runtime hook
	$(INSTALL) -D -m 0644 hooks/install/clusterroot $(DESTDIR)$(INITCPIODIR)/install/clusterroot
	$(INSTALL) -D -m 0644 hooks/hooks/clusterroot $(DESTDIR)$(INITCPIODIR)/hooks/clusterroot
	# dracut: the module (module-setup.sh sourced, the two hooks run by dracut's init)
	$(INSTALL) -D -m 0755 -t $(DESTDIR)$(DRACUTDIR)/90clusterroot dracut/90clusterroot/*
	# initramfs-tools: the hook and the boot script
	$(INSTALL) -D -m 0755 initramfs-tools/hooks/clusterroot $(DESTDIR)$(INITRAMFSTOOLSDIR)/hooks/clusterroot
	$(INSTALL) -D -m 0644 initramfs-tools/scripts/clusterroot $(DESTDIR)$(INITRAMFSTOOLSDIR)/scripts/clusterroot
	$(agent_path) $(DESTDIR)$(INITCPIODIR)/install/clusterroot $(DESTDIR)$(DRACUTDIR)/90clusterroot/module-setup.sh $(DESTDIR)$(INITRAMFSTOOLSDIR)/hooks/clusterroot
	# the kernel hooks
	$(INSTALL) -D -m 0755 mkinitcpio/kernel.d/post-install/60-clusterroot $(DESTDIR)$(SYSCONFDIR)/kernel.d/post-install/60-clusterroot
	$(INSTALL) -D -m 0755 mkinitcpio/kernel/postinst.d/zz-clusterroot $(DESTDIR)$(SYSCONFDIR)/kernel/postinst.d/zz-clusterroot
	$(SED) -i 's|:-/etc/kernel.d/post-install/60-clusterroot}|:-$(SYSCONFDIR)/kernel.d/post-install/60-clusterroot}|' $(DESTDIR)$(SYSCONFDIR)/kernel/postinst.d/zz-clusterroot
	# the man pages and crctl's completions
	$(INSTALL) -D -m 0644 agent/clusterroot.8 $(DESTDIR)$(MANDIR)/man8/clusterroot.8
	$(INSTALL) -D -m 0644 master/crctl.8 $(DESTDIR)$(MANDIR)/man8/crctl.8
	$(INSTALL) -d $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	$(BUILDDIR)/crctl completions bash >$(DESTDIR)$(BASHCOMPDIR)/crctl
	$(BUILDDIR)/crctl completions zsh >$(DESTDIR)$(ZSHCOMPDIR)/_crctl
	$(BUILDDIR)/crctl completions fish >$(DESTDIR)$(FISHCOMPDIR)/crctl.fish
	# what the admin copies into /etc, and the example inventory
	$(INSTALL) -D -m 0644 -t $(DESTDIR)$(SHAREDIR)/mkinitcpio mkinitcpio/mkinitcpio.conf mkinitcpio/mkinitcpio.net.conf
	$(INSTALL) -D -m 0644 -t $(DESTDIR)$(SHAREDIR)/dracut dracut/clusterroot.conf dracut/clusterroot-net.conf
	$(INSTALL) -D -m 0644 -t $(DESTDIR)$(SHAREDIR)/initramfs-tools initramfs-tools/initramfs.conf initramfs-tools/master.conf
	$(INSTALL) -D -m 0644 initramfs-tools/conf.d/clusterroot $(DESTDIR)$(SHAREDIR)/initramfs-tools/conf.d/clusterroot
	$(INSTALL) -D -m 0644 mkinitcpio/cluster $(DESTDIR)$(SHAREDIR)/cluster.example

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/clusterroot $(DESTDIR)$(BINDIR)/crctl
	rm -f $(DESTDIR)$(INITCPIODIR)/install/clusterroot $(DESTDIR)$(INITCPIODIR)/hooks/clusterroot
	rm -rf $(DESTDIR)$(DRACUTDIR)/90clusterroot $(DESTDIR)$(SHAREDIR)
	rm -f $(DESTDIR)$(INITRAMFSTOOLSDIR)/hooks/clusterroot $(DESTDIR)$(INITRAMFSTOOLSDIR)/scripts/clusterroot
	rm -f $(DESTDIR)$(SYSCONFDIR)/kernel.d/post-install/60-clusterroot $(DESTDIR)$(SYSCONFDIR)/kernel/postinst.d/zz-clusterroot
	rm -f $(DESTDIR)$(MANDIR)/man8/clusterroot.8 $(DESTDIR)$(MANDIR)/man8/crctl.8
	rm -f $(DESTDIR)$(BASHCOMPDIR)/crctl $(DESTDIR)$(ZSHCOMPDIR)/_crctl $(DESTDIR)$(FISHCOMPDIR)/crctl.fish
