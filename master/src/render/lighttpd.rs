//! lighttpd's config on the master: the TFTP root over HTTP, for iPXE clients.

use super::stamp;
use crate::inventory::Inventory;

/// With an image store: why the root is the default version's TFTP root, and no stat cache.
const STORE: &str = "\
# The image store's default version's TFTP root: a version is everything a client boots, its
# kernel, initramfs and boot.ipxe with the root it mounts (clusterroot.image=default), and the
# default link is resolved at every file opened, so crctl image publish and crctl image
# default switch them together. No stat cache: with it, lighttpd goes on serving a file it
# opened for up to a second after default names another version.
server.stat-cache-engine = \"disable\"
";

/// With an image store: its squashfs files at `/images/`, from the store as the running
/// master sees it, as the document-root is (`/run/rootfs/lower<images>/squashfs/`).
fn squashfs(inv: &Inventory) -> String {
    let dir = crate::image::squashfs::DIR;
    let store = crate::place::in_lower(&inv.settings.images);
    format!(
        "
# The image store's versions as squashfs files (crctl image publish makes one per version), for
# clients that fetch their root over HTTP: /images/default names the default's file,
# /images/<version>-<sha256>.squashfs is one. Static files, sent with their Content-Length.
server.modules += (\"mod_alias\")
alias.url = (\"/images/\" => \"{store}/{dir}/\")
"
    )
}

pub fn render(inv: &Inventory) -> String {
    let mut out = stamp("#");
    out.push_str(&format!(
        "\
# /etc/lighttpd/lighttpd.conf of a clusterroot master: serves the TFTP root over HTTP to the
# iPXE clients (dnsmasq.conf sends them here): boot.ipxe, the kernel and the clients'
# initramfs, which kernel.d/post-install/60-clusterroot puts there. HTTP streams what TFTP
# sends one block per round trip. Nothing there is secret: the TFTP server gives the same
# files to anyone, and node files never go there.
# Start it at boot: Void: ln -s /etc/sv/lighttpd /var/service/; Arch, Debian: systemctl
# enable --now lighttpd.

server.document-root = \"{tftp}\"
{store}server.port = 80
# Root only opens the port, then lighttpd runs as nobody (and nobody's group): everyone may
# read the files it serves (0644).
server.username = \"nobody\"
# Files only, as bytes: no directory listings, no scripts.
mimetype.assign = (\"\" => \"application/octet-stream\")
{squashfs}
# One line per file sent, to syslog (the journal; Void: socklog): which client fetched what.
# (A log file would be opened after lighttpd became nobody, who may not write /var/log.)
server.modules += (\"mod_accesslog\")
accesslog.use-syslog = \"enable\"

# Boot storms: lighttpd's defaults serve hundreds of clients at once (one process, sendfile;
# connections up to a third of server.max-fds). Raise server.max-fds beyond that.
",
        tftp = inv.served_tftp(),
        store = if inv.uses_store() { STORE } else { "" },
        squashfs = if inv.uses_store() { squashfs(inv) } else { String::new() },
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::example;

    #[test]
    fn the_shipped_config_is_the_examples_rendering() {
        assert_eq!(render(&example::inventory()), include_str!("../../../mkinitcpio/lighttpd.conf"));
    }

    #[test]
    fn it_serves_the_tftp_root() {
        let text = example::CLUSTER.replace("master master\n", "master master\ntftp /var/lib/tftpboot\n");
        let out = render(&Inventory::parse(&text).unwrap());
        assert!(out.contains("\nserver.document-root = \"/var/lib/tftpboot\"\nserver.port = 80\n"), "{out}");
    }

    #[test]
    fn with_an_image_store_it_serves_the_default_version_uncached() {
        let text = example::CLUSTER.replace("master master\n", "master master\nimages /srv/nfs/images\n");
        let out = render(&Inventory::parse(&text).unwrap());
        let root =
            "\nserver.document-root = \"/run/rootfs/lower/srv/nfs/images/default/srv/tftp\"\n# The image store's";
        assert!(out.contains(root), "{out}");
        assert!(out.contains("\nserver.stat-cache-engine = \"disable\"\nserver.port = 80\n"), "{out}");
        assert!(!render(&example::inventory()).contains("stat-cache"));
    }

    #[test]
    fn with_an_image_store_it_serves_the_squashfs_files_at_images() {
        let text = example::CLUSTER.replace("master master\n", "master master\nimages /srv/nfs/images\n");
        let out = render(&Inventory::parse(&text).unwrap());
        let alias = "\nserver.modules += (\"mod_alias\")\n\
                     alias.url = (\"/images/\" => \"/run/rootfs/lower/srv/nfs/images/squashfs/\")\n";
        assert!(out.contains(alias), "{out}");
        // The store at the lower's top: no double slash.
        let text = example::CLUSTER.replace("master master\n", "master master\nimages /\n");
        let out = render(&Inventory::parse(&text).unwrap());
        assert!(out.contains("\"/images/\" => \"/run/rootfs/lower/squashfs/\""), "{out}");
        assert!(!render(&example::inventory()).contains("alias"));
    }
}
