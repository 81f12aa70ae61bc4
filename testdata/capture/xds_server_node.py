"""`NodeXdsServer`: the same interface as `xds_server.XdsServer`, served by an independent Node.js xDS
server (`xds-node/server.js`, @grpc/grpc-js) so that a quirk of either harness shows up as a
disagreement in what Envoy ends up holding.

Only the encoding is shared: resources are packed with `xds_server.to_any` (protobuf's json_format, the
trusted encoder) and handed to Node as bytes. Streams, subscriptions, versions, nonces and ACK/NACK
detection are Node's; this adapter mirrors what Node reports (one JSON event per line on its stdout)
to answer `wait_settled` and `wait_sent` exactly as `XdsServer` does.
"""

import base64
import json
import os
import shutil
import subprocess
import threading
import time

from xds_server import SHORT_NAMES, resource_name, to_any

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "xds-node")
START_TIMEOUT = 30.0
PUSH_TIMEOUT = 120.0


class _TypeState:
    """What Node reported about one stream and one resource type."""

    def __init__(self):
        self.holds = False  # whether the stream asks for anything we hold of this type
        self.sent_version = None
        self.result = None  # ("ack", None) or ("nack", message) for the last response sent


class NodeXdsServer:
    """Serves what `push()` was given through the Node server; records Envoy's ACKs and NACKs."""

    def __init__(self, log=print, max_workers=32):
        del max_workers  # Node serves every stream on one event loop
        if not os.path.isdir(os.path.join(NODE_DIR, "node_modules")):
            raise RuntimeError(f"{NODE_DIR}/node_modules is missing: run scripts/setup.sh "
                               "(or testdata/capture/xds-node/setup.sh)")
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not on PATH")
        self._log = log
        self._lock = threading.Condition()
        self._versions = {}  # type_url -> version Node has applied
        self._streams = {}  # stream id -> {type_url: _TypeState}
        self._pushed = set()  # push ids Node has applied
        self._push_ids = 0
        self._nack_messages = []
        self._exited = False
        self.port = None
        self._process = subprocess.Popen([node, os.path.join(NODE_DIR, "server.js")], cwd=NODE_DIR,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                         encoding="utf-8", bufsize=1)
        self._reader = threading.Thread(target=self._read_events, name="xds-node-events", daemon=True)
        self._reader.start()
        with self._lock:
            if not self._lock.wait_for(lambda: self.port is not None or self._exited, START_TIMEOUT):
                self._process.kill()
                raise RuntimeError("xds-node did not report its port")
        if self.port is None:
            raise RuntimeError(f"xds-node exited with {self._process.wait()} before listening")

    def start(self):
        """Nothing to do: grpc-js serves as soon as it is bound, and no Envoy knows the port before."""

    def stop(self):
        if self._process.poll() is None:
            try:
                self._send({"cmd": "stop"})
                self._process.stdin.close()
            except OSError:
                pass  # Node already gone
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        self._reader.join(timeout=5)

    @property
    def nack_messages(self):
        with self._lock:
            return list(self._nack_messages)

    def push(self, type_url, version, resources):
        """Replaces the whole set of `type_url` resources, under `version`; returns once Node has told
        every stream, so a following wait sees the new version's state."""
        items = []
        for resource in resources:
            packed = to_any(resource)
            if packed.type_url != type_url:
                raise ValueError(f"{resource_name(resource)} is a {packed.type_url}, pushed as {type_url}")
            items.append({"name": resource_name(resource), "value_b64": base64.b64encode(packed.value).decode()})
        with self._lock:
            self._push_ids += 1
            push_id = self._push_ids
        self._send({"cmd": "push", "id": push_id, "type_url": type_url, "version": version, "resources": items})
        with self._lock:
            if not self._lock.wait_for(lambda: push_id in self._pushed or self._exited, PUSH_TIMEOUT):
                raise TimeoutError(f"xds-node did not apply the {SHORT_NAMES.get(type_url, type_url)} push")
            if push_id not in self._pushed:
                raise RuntimeError("xds-node exited")

    def wait_settled(self, type_url, expect, timeout):
        """Waits until every stream subscribed to `type_url` has answered the current version.

        `expect` is "ack" or "nack": at least one stream must have answered that way. Returns the
        NACK messages seen for this version (empty for an ACK). Raises TimeoutError otherwise.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                outcome = self._settled(type_url, expect)
                if outcome is not None:
                    return outcome
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._exited:
                    raise TimeoutError(
                        f"{SHORT_NAMES.get(type_url, type_url)}: Envoy did not {expect} "
                        f"version {self._versions.get(type_url, '?')}: {self._describe(type_url)}")
                self._lock.wait(min(remaining, 0.5))

    def wait_sent(self, type_url, timeout):
        """Waits until every stream subscribed to `type_url` was sent the current version."""
        deadline = time.monotonic() + timeout
        with self._lock:
            version = self._versions[type_url]
            while True:
                states = [types[type_url] for types in self._streams.values()
                          if type_url in types and types[type_url].sent_version is not None]
                if states and all(state.sent_version == version for state in states):
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._exited:
                    raise TimeoutError(f"{SHORT_NAMES.get(type_url, type_url)}: version {version} never sent")
                self._lock.wait(min(remaining, 0.5))

    # Called with the lock held.
    def _settled(self, type_url, expect):
        version = self._versions.get(type_url)
        matched = False
        messages = []
        for types in self._streams.values():
            state = types.get(type_url)
            if state is None:
                continue
            if not state.holds and state.sent_version is None:
                continue  # nothing we hold was asked for on this stream
            if state.sent_version != version or state.result is None:
                return None
            if state.result[0] == expect:
                matched = True
                if state.result[1]:
                    messages.append(state.result[1])
        return messages if matched else None

    def _describe(self, type_url):
        rows = [f"stream {sid}: holds={types[type_url].holds} sent={types[type_url].sent_version} "
                f"result={types[type_url].result}"
                for sid, types in self._streams.items() if type_url in types]
        return "; ".join(rows) or "no stream subscribed"

    def _send(self, command):
        self._process.stdin.write(json.dumps(command, separators=(",", ":")) + "\n")
        self._process.stdin.flush()

    def _read_events(self):
        try:
            for line in self._process.stdout:
                event = json.loads(line)
                with self._lock:
                    self._on_event(event)
                    self._lock.notify_all()
        finally:
            with self._lock:
                self._exited = True
                self._lock.notify_all()

    def _on_event(self, event):
        """Applies one of Node's events to the mirror. Lock held."""
        kind = event["event"]
        if kind == "port":
            self.port = event["port"]
            return
        if kind == "pushed":
            self._versions[event["type_url"]] = event["version"]
            self._pushed.add(event["id"])
            return
        if kind == "closed":
            self._streams.pop(event["stream"], None)
            return
        short = SHORT_NAMES.get(event["type_url"], event["type_url"])
        state = self._streams.setdefault(event["stream"], {}).setdefault(event["type_url"], _TypeState())
        if kind == "interest":
            state.holds = event["holds"]
        elif kind == "sent":
            state.sent_version, state.result = event["version"], None
            self._log(f"xds-node: stream {event['stream']} -> {short} version {event['version']}, "
                      f"{event['count']} resources, nonce {event['nonce']}")
        elif kind == "ack":
            state.result = ("ack", None)
        elif kind == "nack":
            state.result = ("nack", event["message"])
            self._nack_messages.append((short, event["version"], event["message"]))
            self._log(f"xds-node: stream {event['stream']} NACK {short} version {event['version']}: "
                      f"{event['message']}")
