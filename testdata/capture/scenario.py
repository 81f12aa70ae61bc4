"""What a capture scenario provides: a node, a bootstrap, and the xDS pushes to make, in order."""

from dataclasses import dataclass, field
from typing import Callable, Optional


@dataclass
class Step:
    """One push: the complete new set of resources for each type named (State of the World).

    `expect` says what Envoy should answer, per type URL, for types in the step (default "ack"):
    - "ack" / "nack": wait for that answer from every stream subscribed to the type;
    - "sent": wait only until it was sent (Envoy holds its CDS ACK while any cluster is warming).
    `visible`, if given, is polled with the parsed /config_dump until it returns True.
    """
    label: str
    version: str
    resources: dict = field(default_factory=dict)  # type_url -> [proto3-JSON dict with "@type"]
    expect: dict = field(default_factory=dict)  # type_url -> "ack" | "nack" | "sent"
    visible: Optional[Callable[[dict], bool]] = None

    def expectation(self, type_url):
        return self.expect.get(type_url, "ack")


class Scenario:
    name = ""

    def node(self):
        raise NotImplementedError

    def bootstrap(self, admin_port, xds_port):
        """The bootstrap as a dict; everything it binds must be on 127.0.0.1."""
        raise NotImplementedError

    def steps(self):
        """[Step]: the first is served before Envoy starts; the capture follows the last."""
        raise NotImplementedError


def dump_section(dump, kind):
    """The `configs` element of a parsed config dump whose @type ends with `kind`, or {}."""
    for section in dump.get("configs", []):
        if section.get("@type", "").endswith("." + kind):
            return section
    return {}
