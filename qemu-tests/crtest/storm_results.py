# SPDX-License-Identifier: MIT
"""The console lines of the storm's load VM (lib/load-init, lib/storm-client) read into
results: one per client, ok or failed with the step and the error, and the load VM's own
lines. No VM: lines in, values out."""

import re
import statistics
from dataclasses import dataclass, field
from typing import Optional

CLIENT_LINE = re.compile(r"STORM client (\d+): (ok|fail) (.*)$")
LOAD_LINE = re.compile(r"STORM load: (.*)$")
# Fields of a client's line: key=value, the value up to the next blank; error= is last and
# takes the rest of the line.
FIELD = re.compile(r"(\w+)=(\S*)")
ERROR_FIELD = re.compile(r"(?:^| )error=(.*)$")
# The steps a client's line can name as failed, in the order a client takes them.
STEPS = ("dhcp", "http", "mount", "image", "loop", "squashfs", "read", "budget")


@dataclass
class ClientResult:
    """One client's line: ok, or the step that failed and why; its fields as the client
    printed them (times in ms since "go")."""

    index: int
    ok: bool
    fields: dict = field(default_factory=dict)
    error: str = ""

    def ms(self, key: str) -> Optional[int]:
        value = self.fields.get(key, "")
        return int(value) if value.isdigit() else None

    @property
    def done_ms(self) -> Optional[int]:
        """When its reads were done (ok), or when it failed."""
        return self.ms("done_ms") if self.ok else self.ms("ms")

    @property
    def step(self) -> str:
        return "" if self.ok else self.fields.get("step", "?")


def parse_client(line: str) -> Optional[ClientResult]:
    """A client's result line, wherever it starts in `line` (the console may put a kernel
    message before it), or None."""
    m = CLIENT_LINE.search(line)
    if not m:
        return None
    rest, error = m.group(3), ""
    e = ERROR_FIELD.search(rest)
    if e:
        rest, error = rest[:e.start()], e.group(1)
    return ClientResult(int(m.group(1)), m.group(2) == "ok", dict(FIELD.findall(rest)),
                        error.strip())


@dataclass
class StormResult:
    """What the load VM said of one storm."""

    n: int
    clients: dict = field(default_factory=dict)   # index -> ClientResult (the first line)
    duplicates: list = field(default_factory=list)
    load_lines: list = field(default_factory=list)
    done_ms: Optional[int] = None

    @property
    def missing(self) -> list:
        """Clients 1..n that printed no line."""
        return [i for i in range(1, self.n + 1) if i not in self.clients]

    @property
    def ok(self) -> list:
        return [r for i, r in sorted(self.clients.items()) if r.ok]

    @property
    def failed(self) -> list:
        return [r for i, r in sorted(self.clients.items()) if not r.ok]

    def failures(self) -> list:
        """One text per failure: each failed client with its step and error, each client
        that said nothing."""
        out = [f"client {r.index} ({r.fields.get('mac', '?')}): {r.step} failed after "
               f"{r.done_ms} ms: {r.error}" for r in self.failed]
        out += [f"client {i}: no result line" for i in self.missing]
        return out

    def times(self, key: str = "done_ms") -> list:
        """The ok clients' `key` moments, in s, sorted."""
        return sorted(r.ms(key) / 1000 for r in self.ok if r.ms(key) is not None)

    def summary(self) -> dict:
        """Slowest and median of each step's end, over the ok clients, in s."""
        out = {"n": self.n, "ok": len(self.ok), "failed": len(self.failed),
               "missing": len(self.missing)}
        for key in ("dhcp_ms", "http_ms", "done_ms"):
            t = self.times(key)
            out[key.removesuffix("_ms")] = ({"median_s": round(statistics.median(t), 2),
                                             "slowest_s": round(max(t), 2)} if t else None)
        return out


def parse_storm(lines: list, n: int) -> StormResult:
    """The result of a storm of `n` from the load VM's console lines."""
    result = StormResult(n)
    for line in lines:
        client = parse_client(line)
        if client is not None:
            if client.index in result.clients:
                result.duplicates.append(client)
            else:
                result.clients[client.index] = client
            continue
        m = LOAD_LINE.search(line)
        if m:
            result.load_lines.append(m.group(1))
            done = re.match(r"done n=\d+ ms=(\d+)", m.group(1))
            if done:
                result.done_ms = int(done.group(1))
    return result


def client_mac(prefix: str, index: int) -> str:
    """Client `index`'s MAC, as lib/load-init makes it: PREFIX:II (two hex digits)."""
    if not 1 <= index <= 255:
        raise ValueError(f"client {index}: the load VM numbers its clients 1..255")
    return f"{prefix}:{index:02x}"
