//! NIC drivers loaded without udev: an image built without the `udev` hook (smaller: no udevd,
//! no hwdb) has nobody to load a driver for the NICs the kernel found. The agent does what
//! udev's coldplug would, for network devices alone: it reads each one's `modalias` in sysfs
//! and asks `modprobe` for the matching modules, again until no new device appears (a PCI
//! virtio NIC first needs `virtio_pci`, whose virtio bus device then needs `virtio_net`).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::kmsg::Log;
use crate::root::Root;

/// Rounds of load-then-rescan: each bus layer a NIC sits behind takes one.
const ROUNDS: usize = 4;
/// PCI network controllers (class 0x02xxxx).
const PCI_NETWORK: &str = "0x02";
/// A virtio device's id for a network card (virtio spec, "Device Types").
const VIRTIO_NET: &str = "0x0001";

/// The `modalias` of every network device sysfs shows: PCI network controllers, virtio
/// network devices, and whatever sits on a USB interface of class 2 or 0xff with a network
/// function is left to an admin's MODULES=. Sorted, each once.
pub fn network_aliases(root: &Root) -> BTreeSet<String> {
    let read = |dev: &std::path::Path, f: &str| std::fs::read_to_string(dev.join(f)).ok().map(|s| s.trim().to_string());
    network_devices(root).iter().filter_map(|d| read(d, "modalias").filter(|a| !a.is_empty())).collect()
}

/// How many of those network devices no driver is bound to yet (no `driver` link): udevd,
/// or the agent, may still be loading their driver, whose probe then registers the NIC.
pub fn unbound_network_devices(root: &Root) -> usize {
    network_devices(root).iter().filter(|d| !d.join("driver").exists()).count()
}

/// The sysfs directories of the PCI network controllers and virtio network devices.
fn network_devices(root: &Root) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for (bus, attr, want) in [("pci", "class", PCI_NETWORK), ("virtio", "device", VIRTIO_NET)] {
        let Ok(dir) = std::fs::read_dir(root.path(&format!("/sys/bus/{bus}/devices"))) else { continue };
        for dev in dir.flatten() {
            let path = dev.path();
            if std::fs::read_to_string(path.join(attr)).is_ok_and(|v| v.trim().starts_with(want)) {
                out.push(path);
            }
        }
    }
    out
}

/// Where the udev and systemd hooks put udevd (and where other images keep it).
const UDEVD: [&str; 4] =
    ["/usr/lib/systemd/systemd-udevd", "/lib/systemd/systemd-udevd", "/usr/bin/udevd", "/sbin/udevd"];

/// Whether the image has udevd: then it loads the drivers (and names the NICs, which it
/// cannot once the agent has brought one up), and the agent keeps out of its way even when
/// it starts before udevd does. Not whether udevd runs yet: that raced it (CI saw a systemd
/// image's NIC keep eth0).
pub fn udev_in_image(root: &Root) -> bool {
    UDEVD.iter().any(|p| root.path(p).exists())
}

/// kmod's (or busybox's) modprobe, which mkinitcpio's base hook puts on PATH.
pub const MODPROBE: &str = "modprobe";

/// How modules get loaded: [`MODPROBE`] in an image; a recording test double in tests.
pub struct Loader<'a> {
    pub modprobe: &'a str,
}

impl Loader<'_> {
    /// Loads the modules for the network devices present, round after round, until a round
    /// finds no alias it has not asked for. Logs what was loaded; a failure only warns (a
    /// NIC whose driver is built in needs none, and the wait for the NIC names what is missing).
    pub fn load_network(&self, root: &Root, log: &Log) {
        let before = loaded(root);
        let mut asked: BTreeSet<String> = BTreeSet::new();
        for _ in 0..ROUNDS {
            let new: Vec<String> = network_aliases(root).difference(&asked).cloned().collect();
            if new.is_empty() {
                break;
            }
            // -q: an alias no module in the image matches is no error; -a: all of them.
            let status = std::process::Command::new(self.modprobe)
                .arg("-qa")
                .args(&new)
                .stdin(std::process::Stdio::null())
                .status();
            if let Err(e) = &status {
                log.warn(&format!(
                    "no udev, and running {} failed: {e}; load the NIC driver with MODULES=",
                    self.modprobe
                ));
                return;
            }
            asked.extend(new);
            // A driver's probe adds the devices behind it before modprobe returns; a short
            // pause covers a bus that announces them from a worker.
            std::thread::sleep(Duration::from_millis(20));
        }
        if asked.is_empty() {
            return; // no network device at all: the wait for the NIC says so
        }
        let after = loaded(root);
        let added: Vec<&String> = after.difference(&before).collect();
        let names: Vec<&str> = added.iter().map(|s| s.as_str()).collect();
        log.info(&format!(
            "no udev: NIC drivers for {} network device alias(es): {}",
            asked.len(),
            if names.is_empty() { "none loaded (built in, or already loaded)".to_string() } else { names.join(" ") }
        ));
    }
}

/// The modules loaded now (`/proc/modules`' first column).
fn loaded(root: &Root) -> BTreeSet<String> {
    std::fs::read_to_string(root.path("/proc/modules"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn dev(base: &Path, bus: &str, name: &str, attr: &str, value: &str, alias: &str) {
        let d = base.join(format!("sys/bus/{bus}/devices/{name}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(attr), format!("{value}\n")).unwrap();
        std::fs::write(d.join("modalias"), format!("{alias}\n")).unwrap();
    }

    fn scratch(tag: &str) -> std::path::PathBuf {
        let base = std::env::temp_dir().join(format!("crdrivers-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("proc")).unwrap();
        base
    }

    #[test]
    fn only_network_devices_are_named() {
        let base = scratch("aliases");
        dev(&base, "pci", "0000:00:03.0", "class", "0x020000", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00");
        dev(&base, "pci", "0000:00:04.0", "class", "0x010000", "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00");
        dev(&base, "virtio", "virtio0", "device", "0x0001", "virtio:d00000001v00001AF4");
        dev(&base, "virtio", "virtio1", "device", "0x0002", "virtio:d00000002v00001AF4");
        let got: Vec<String> = network_aliases(&Root::new(&base)).into_iter().collect();
        assert_eq!(got, ["pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", "virtio:d00000001v00001AF4"]);
        assert!(network_aliases(&Root::new(base.join("nothing"))).is_empty());
        // Bound: the PCI controller to virtio_pci; the virtio NIC not yet to virtio_net.
        assert_eq!(unbound_network_devices(&Root::new(&base)), 2);
        std::fs::create_dir_all(base.join("sys/bus/drivers/virtio-pci")).unwrap();
        std::os::unix::fs::symlink(
            base.join("sys/bus/drivers/virtio-pci"),
            base.join("sys/bus/pci/devices/0000:00:03.0/driver"),
        )
        .unwrap();
        assert_eq!(unbound_network_devices(&Root::new(&base)), 1);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn udevd_in_the_image_is_left_to_load_them() {
        let base = scratch("udevd");
        assert!(!udev_in_image(&Root::new(&base)));
        std::fs::create_dir_all(base.join("usr/lib/systemd")).unwrap();
        std::fs::write(base.join("usr/lib/systemd/systemd-udevd"), "").unwrap();
        assert!(udev_in_image(&Root::new(&base)));
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn loads_round_after_round_until_nothing_new() {
        let base = scratch("rounds");
        dev(&base, "pci", "0000:00:03.0", "class", "0x020000", "pci:v00001AF4d00001000");
        // A modprobe test double: it records its arguments, and "loading" the PCI alias makes
        // the virtio device behind it appear, as virtio_pci's probe does.
        let fake = base.join("modprobe");
        let calls = base.join("calls");
        let vdev = base.join("sys/bus/virtio/devices/virtio0");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\necho \"$*\" >>{calls}\ncase \"$*\" in *pci:*) mkdir -p {v}; echo 0x0001 >{v}/device; \
                 echo virtio:d00000001v00001AF4 >{v}/modalias; echo 'virtio_pci 1 0' >>{m};; \
                 *virtio:*) echo 'virtio_net 1 0' >>{m};; esac\n",
                calls = calls.display(),
                v = vdev.display(),
                m = base.join("proc/modules").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let kmsg = base.join("kmsg");
        std::fs::write(&kmsg, "").unwrap();
        Loader { modprobe: fake.to_str().unwrap() }.load_network(&Root::new(&base), &Log::open(&kmsg));
        assert_eq!(
            std::fs::read_to_string(&calls).unwrap(),
            "-qa pci:v00001AF4d00001000\n-qa virtio:d00000001v00001AF4\n"
        );
        let logged = std::fs::read_to_string(&kmsg).unwrap();
        assert!(
            logged.contains(
                "<6>clusterroot: no udev: NIC drivers for 2 network device alias(es): virtio_net virtio_pci\n"
            ),
            "{logged}"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
