//! `image list`'s table: each version, the default marked, when it was made, the size of its
//! squashfs file, who runs it.

use super::nodes::Running;
use super::progress::mib;
use super::squashfs::{Files, Pointer};
use super::store::{DefaultLink, Listing};

/// `YYYY-MM-DD HH:MM` in UTC for seconds since the epoch (the proleptic Gregorian calendar,
/// counted in 400-year eras of 146097 days from 0000-03-01).
pub fn utc(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468; // days since 0000-03-01
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153; // March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}", rem / 3600, rem % 3600 / 60)
}

/// The lines `image list` prints. `files`: the store's squashfs files; `created` gives a
/// version's creation time (ZFS's `creation`, else the directory's mtime); `clients_dir`
/// names nfsd's list in a note. The nodes come last: a reader takes the rest of the line.
pub fn render(
    listing: &Listing,
    files: &Files,
    running: &Running,
    created: &dyn Fn(u64) -> i64,
    clients_dir: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    if listing.versions.is_empty() {
        out.push(format!("no versions in {} yet; crctl image import DIR makes the first", listing.dir.display()));
    } else {
        out.push(format!("{:<8} {:<8} {:<17} {:<10} nodes", "version", "default", "created (UTC)", "squashfs"));
    }
    for e in &listing.versions {
        let mark = if listing.default_version() == Some(e.version) { "default" } else { "" };
        let nodes = running.nodes_of(&e.version.to_string());
        let nodes = if nodes.is_empty() { "-".to_string() } else { nodes.join(",") };
        let size = files.of(e.version).map_or("-".to_string(), |f| mib(f.size));
        out.push(format!(
            "{:<8} {:<8} {:<17} {size:<10} {nodes}",
            e.version.to_string(),
            mark,
            utc(created(e.version.0))
        ));
    }
    if listing.edit {
        out.push(format!(
            "working copy: {} (crctl image publish makes it version {}; crctl image discard drops it)",
            listing.edit_path().display(),
            listing.next()
        ));
    }
    match &listing.default {
        DefaultLink::Missing if !listing.versions.is_empty() => out.push(
            "note: no default: nodes booting clusterroot.image=default find none; crctl image default VERSION sets it"
                .into(),
        ),
        DefaultLink::Dangling(what) => out.push(format!(
            "note: {} {what}: nodes booting clusterroot.image=default fail; crctl image default VERSION sets it",
            listing.dir.join(super::store::DEFAULT).display()
        )),
        _ => {}
    }
    let pointer = files.dir.join(super::squashfs::POINTER);
    match files.pointer(listing.default_version()) {
        Pointer::Right => {}
        Pointer::Missing { want } => out.push(format!(
            "note: {} is missing (HTTP clients find no default): crctl image squashfs writes it, naming {want}",
            pointer.display()
        )),
        Pointer::Wrong { is, want: Some(want) } => out.push(format!(
            "note: {} names {is}, not the default's {want}: crctl image squashfs writes it again",
            pointer.display()
        )),
        Pointer::Wrong { is, want: None } => out.push(format!(
            "note: {} names {is}, but the default has no squashfs file: crctl image squashfs makes it",
            pointer.display()
        )),
    }
    if !running.expired.is_empty() {
        let nodes: Vec<&str> = running.expired.iter().map(String::as_str).collect();
        out.push(format!(
            "lease expired: {} (stopped renewing: off or cut off; counted as running nothing)",
            nodes.join(",")
        ));
    }
    if !running.unknown.is_empty() {
        let nodes: Vec<&str> = running.unknown.iter().map(String::as_str).collect();
        out.push(format!("unknown version: {} (booted without naming a version)", nodes.join(",")));
    }
    for (v, nodes) in &running.versions {
        let known = super::store::Version::parse(v).is_ok_and(|v| listing.has(v));
        if !known {
            let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
            out.push(format!("note: {} run(s) version {v}, which the store does not have", nodes.join(",")));
        }
    }
    if !running.clients_seen {
        out.push(format!(
            "note: {clients_dir} is missing: which versions the clients run is unknown (nfsd not running?)"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::squashfs::{File, FileName};
    use super::super::store::{Entry, Version};
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc(-86_400), "1969-12-31 00:00");
    }

    #[test]
    fn table_and_notes() {
        let listing = Listing {
            dir: "/srv/nfs/images".into(),
            versions: vec![Entry { version: Version(1), mtime: 0 }, Entry { version: Version(2), mtime: 60 }],
            default: DefaultLink::Version(Version(2)),
            edit: true,
        };
        let mut running = Running { clients_seen: true, ..Running::default() };
        running.versions.entry("2".into()).or_default().extend(["node1".to_string(), "master".to_string()]);
        running.versions.entry("7".into()).or_default().insert("node3".into());
        running.unknown.insert("node2".into());
        let name = |v: u64| FileName { version: Version(v), sha256: [0xab; 32] };
        let files = Files {
            dir: "/srv/nfs/images/squashfs".into(),
            files: vec![File { name: name(2), size: 220_620_390 }],
            pointer: Some(name(2).to_string()),
            ..Files::default()
        };
        let lines = render(&listing, &files, &running, &|v| v as i64 * 60, "/proc/fs/nfsd/clients");
        assert_eq!(
            lines,
            [
                "version  default  created (UTC)     squashfs   nodes",
                "1                 1970-01-01 00:01  -          -",
                "2        default  1970-01-01 00:02  210.4 MiB  master,node1",
                "working copy: /srv/nfs/images/edit (crctl image publish makes it version 3; crctl image discard drops it)",
                "unknown version: node2 (booted without naming a version)",
                "note: node3 run(s) version 7, which the store does not have",
            ]
        );
        let dangling = Listing {
            default: DefaultLink::Dangling("-> 7, a version the store does not have".into()),
            edit: false,
            ..listing
        };
        let lines = render(&dangling, &Files::default(), &Running::default(), &|_| 0, "/proc/fs/nfsd/clients");
        assert_eq!(
            lines[3..],
            [
                "note: /srv/nfs/images/default -> 7, a version the store does not have: nodes booting clusterroot.image=default fail; crctl image default VERSION sets it",
                "note: /proc/fs/nfsd/clients is missing: which versions the clients run is unknown (nfsd not running?)",
            ]
        );
    }
}
