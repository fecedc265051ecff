//! `/etc/hosts` for every node: the usual loopback lines, then each node with an address.

use std::fmt::Write as _;

use super::stamp;
use crate::inventory::Inventory;

pub fn render(inv: &Inventory) -> String {
    let mut out = stamp("#");
    out.push_str(
        "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n\n# The cluster's nodes.\n",
    );
    for n in &inv.nodes {
        if let Some(a) = n.address {
            let _ = writeln!(out, "{a}\t{}", n.name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::example;

    #[test]
    fn every_node_with_an_address() {
        let out = render(&example::inventory());
        assert!(out.starts_with("# Rendered by crctl"));
        assert!(out.contains("127.0.0.1\tlocalhost\n"));
        assert!(out
            .ends_with("# The cluster's nodes.\n172.23.199.225\tmaster\n172.23.199.11\tnode1\n172.23.199.12\tnode2\n"));
    }
}
