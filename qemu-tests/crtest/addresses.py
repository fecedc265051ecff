# SPDX-License-Identifier: MIT
"""The test network of run and distros (10.77.0.0/24): the server VM's address and export, the
clients' MACs and addresses, and whom the server's DHCP answers."""

SERVER_IP = "10.77.0.1"
SERVER_MAC = "52:54:00:77:00:01"
EXPORT = "/srv/root"


def mac(n: int) -> str:
    """Client n: 10.77.0.n, MAC 52:54:00:77:00:n."""
    return f"52:54:00:77:00:{n:02d}"


def dead_mac(n: int) -> str:
    """A NIC on a bridge where nothing answers (dhcp-two-nics)."""
    return f"52:54:00:78:00:{n:02d}"


def ip_param(n: int) -> str:
    return f"ip=10.77.0.{n}::{SERVER_IP}:255.255.255.0:node{n}::off"


def identity(node_mac: str) -> str:
    """The NFSv4 client identity the agent derives from the boot MAC."""
    return "clusterroot-" + node_mac.replace(":", "")


# DHCP (lib/make-server-image writes the dnsmasq configuration): MAC 52:54:00:77:00:NN for NN
# in DHCP_NODES gets 10.77.0.NN/24 and host name dhcp-nodeNN, router and DNS server 10.77.0.1,
# domain cluster.test, MTU 1400, lease 1 h and root path 10.77.0.1:/srv/root, except
# DHCP_OTHER_ROOT whose root path names a server that does not exist. Other MACs get no offer.
DHCP_NODES = range(21, 29)
DHCP_OTHER_ROOT = (22, "10.77.0.99:/srv/nowhere")
DHCP_UNKNOWN = 31
DHCP_MTU = "1400"

# addr-taken: the host (a veth in the test's namespace) that already holds a client's address.
OTHER_HOST_MAC = "52:54:00:aa:bb:cc"
