# SPDX-License-Identifier: MIT
"""The pure pieces of the storm's client (lib/storm-client), run as the load VM runs them:
its functions sourced into Debian's static busybox sh (STORM_CLIENT_FUNCTIONS=1 defines them
and runs nothing). The URL of a squashfs image on NFS taken apart, and crctl's pointer file
resolved as the agent's parse_pointer takes it. Skipped where busybox is not installed
(scripts/setup installs busybox-static)."""

import os
import re
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from crtest.paths import LIB  # noqa: E402
from crtest.storm_results import STEPS  # noqa: E402

BUSYBOX = "/bin/busybox"
NAME = "3-" + "0123456789abcdef" * 4 + ".squashfs"


def call(function: str, *args: str) -> tuple:
    """(status, output) of `function args...` from lib/storm-client, under busybox sh."""
    got = subprocess.run([BUSYBOX, "sh", "-c", f'. "$1"; shift; {function} "$@"', "sh",
                          str(LIB / "storm-client"), *args],
                         env={"STORM_CLIENT_FUNCTIONS": "1", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=30)
    return got.returncode, got.stdout.strip() + got.stderr.strip()


@unittest.skipUnless(os.access(BUSYBOX, os.X_OK), f"no {BUSYBOX} (install busybox-static)")
class NfsUrl(unittest.TestCase):
    def test_server_directory_and_name(self):
        self.assertEqual(call("nfs_parts", "nfs://172.23.199.225/srv/nfs/images/squashfs/default"),
                         (0, "172.23.199.225 /srv/nfs/images/squashfs default"))
        self.assertEqual(call("nfs_parts", f"nfs://10.0.0.2/x/{NAME}"), (0, f"10.0.0.2 /x {NAME}"))

    def test_what_is_no_such_url(self):
        for url in ("http://10.0.0.1/images/default", "nfs://10.0.0.1", "nfs://10.0.0.1/default",
                    "nfs://10.0.0.1/srv/images/", "nfs:///srv/images/default",
                    "nfs://10.0.0.1/srv/my images/default"):
            with self.subTest(url):
                status, out = call("nfs_parts", url)
                self.assertEqual(status, 1)
                self.assertIn("not nfs://SERVER/DIR/NAME", out)


@unittest.skipUnless(os.access(BUSYBOX, os.X_OK), f"no {BUSYBOX} (install busybox-static)")
class Pointer(unittest.TestCase):
    def resolve(self, content: bytes) -> tuple:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "default"
            path.write_bytes(content)
            status, out = call("pointer_name", str(path))
            return status, out.replace(str(path), "FILE")

    def test_one_name_with_or_without_its_line_end(self):
        for end in (b"", b"\n", b"\r\n"):
            with self.subTest(end):
                self.assertEqual(self.resolve(NAME.encode() + end), (0, NAME))

    def test_more_than_one_line_or_a_bare_carriage_return(self):
        for end in (b"\n\n", b"\r", b"\nother\n"):
            with self.subTest(end):
                status, out = self.resolve(NAME.encode() + end)
                self.assertEqual(status, 1)
                self.assertIn("holds more than the name and a line end", out)

    def test_what_is_no_image_name(self):
        for text in ("../../etc/passwd\n", NAME.upper(), "3-abc.squashfs\n",
                     "-" + NAME.split("-", 1)[1], "sub/" + NAME, ""):
            with self.subTest(text):
                status, out = self.resolve(text.encode())
                self.assertEqual(status, 1)
                self.assertIn("does not name an image file", out)

    def test_no_pointer_file(self):
        self.assertEqual(call("pointer_name", "/nonexistent/default"),
                         (1, "no pointer file /nonexistent/default"))


@unittest.skipUnless(os.access(BUSYBOX, os.X_OK), f"no {BUSYBOX} (install busybox-static)")
class IpxeUrls(unittest.TestCase):
    BASE = "http://172.23.199.225"

    def urls(self, script: str, cmd: str) -> list:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "boot.ipxe"
            path.write_text(script)
            status, out = call("ipxe_urls", str(path), cmd, self.BASE)
            self.assertEqual(status, 0)
            return out.splitlines()

    def test_the_shipped_script_relative_to_its_directory(self):
        script = (LIB.parents[1] / "mkinitcpio" / "boot.ipxe").read_text()
        self.assertEqual(self.urls(script, "kernel"), [f"{self.BASE}/vmlinuz"])
        self.assertEqual(self.urls(script, "initrd"), [f"{self.BASE}/initramfs-net.img"])

    def test_alternatives_in_the_order_ipxe_tries_them(self):
        script = ("#!ipxe\n# kernel in a comment\n"
                  "kernel http://10.0.0.9:81/vmlinuz initrd=initramfs-net.img ip=dhcp || "
                  "kernel vmlinuz initrd=initramfs-net.img ip=dhcp\n"
                  "initrd http://10.0.0.9:81/initramfs-net.img || initrd initramfs-net.img\n"
                  "boot\n")
        self.assertEqual(self.urls(script, "kernel"),
                         ["http://10.0.0.9:81/vmlinuz", f"{self.BASE}/vmlinuz"])
        self.assertEqual(self.urls(script, "initrd"),
                         ["http://10.0.0.9:81/initramfs-net.img",
                          f"{self.BASE}/initramfs-net.img"])
        self.assertEqual(self.urls(script, "imgfetch"), [])


class Steps(unittest.TestCase):
    def test_the_steps_a_client_line_names_are_those_the_harness_knows(self):
        client = set(re.findall(r"\bfail (\w+) ", (LIB / "storm-client").read_text()))
        load = set(re.findall(r"fail step=(\w+) ", (LIB / "load-init").read_text()))
        self.assertEqual(client | load, set(STEPS))


if __name__ == "__main__":
    unittest.main()
