"""A small State-of-the-World xDS server (ADS and SDS) for capturing real Envoy config dumps.

It owns the protocol side only: which resources each stream asked for, what was sent with which
version and nonce, and whether Envoy acknowledged (ACK) or rejected (NACK) it. It knows nothing about
Istio or scenarios; `capture.py` tells it what to serve with `push()` and waits with `wait_settled()`.

Protocol, as Envoy speaks it (SotW, one gRPC stream per subscription source):
- Cluster and Listener are wildcard types: every response carries the whole set.
- Other types (ClusterLoadAssignment, RouteConfiguration, Secret) are sent per requested name; a stream
  whose requested names we hold none of gets no response at all (that is how a resource is left
  warming: Envoy waits for it until its `initial_fetch_timeout`).
- A request whose `response_nonce` is the last nonce we sent on that stream for that type is Envoy's
  answer to it: ACK when `error_detail` is unset, NACK when set.
- A response is sent whenever what the stream should hold (version + names) differs from what was last
  sent on it: after a push, or when Envoy changes the names it asks for.
"""

import itertools
import queue
import threading
import time
from concurrent import futures

import grpc
from google.protobuf import any_pb2, json_format

from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc

import xds_types  # noqa: F401  (registers every message type the scenarios put in an Any)

CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

WILDCARD_TYPES = {CLUSTER, LISTENER}
SHORT_NAMES = {CLUSTER: "CDS", ENDPOINT: "EDS", LISTENER: "LDS", ROUTE: "RDS", SECRET: "SDS"}


def resource_name(resource):
    """The xDS name of a resource given as a proto3-JSON dict."""
    if resource.get("@type") == ENDPOINT:
        return resource["cluster_name"]
    return resource["name"]


def to_any(resource):
    """Turns a proto3-JSON dict with an "@type" into a packed google.protobuf.Any."""
    message = any_pb2.Any()
    json_format.ParseDict(resource, message)
    return message


class _TypeState:
    """What one stream knows about one resource type."""

    def __init__(self):
        self.names = None  # the names Envoy asked for; None until its first request
        self.sent_version = None
        self.sent_names = None
        self.sent_nonce = None
        self.result = None  # ("ack", None) or ("nack", message) for sent_nonce


class _Stream:
    def __init__(self, stream_id):
        self.id = stream_id
        self.events = queue.Queue()
        self.types = {}
        self.nonces = itertools.count(1)


class XdsServer:
    """Serves what `push()` was given; records Envoy's ACKs and NACKs per stream and type."""

    def __init__(self, log=print, max_workers=32):
        self._log = log
        self._lock = threading.Condition()
        self._resources = {}  # type_url -> (version, {name: Any})
        self._streams = {}
        self._stream_ids = itertools.count(1)
        self._stopping = False
        self._nack_messages = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="xds"))
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(_AdsServicer(self), self._server)
        sds_pb2_grpc.add_SecretDiscoveryServiceServicer_to_server(_SdsServicer(self), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        if not self.port:
            raise RuntimeError("xDS server could not bind 127.0.0.1")

    def start(self):
        self._server.start()

    def stop(self):
        with self._lock:
            self._stopping = True
            streams = list(self._streams.values())
            self._lock.notify_all()
        for stream in streams:
            stream.events.put(("stop", None))
        self._server.stop(grace=1).wait(timeout=5)

    @property
    def nack_messages(self):
        with self._lock:
            return list(self._nack_messages)

    def push(self, type_url, version, resources):
        """Replaces the whole set of `type_url` resources, under `version`, and tells every stream."""
        packed = {resource_name(r): to_any(r) for r in resources}
        with self._lock:
            self._resources[type_url] = (version, packed)
            streams = list(self._streams.values())
        for stream in streams:
            stream.events.put(("push", type_url))

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
                if remaining <= 0 or self._stopping:
                    raise TimeoutError(
                        f"{SHORT_NAMES.get(type_url, type_url)}: Envoy did not {expect} "
                        f"version {self._resources.get(type_url, ('?',))[0]}: {self._describe(type_url)}")
                self._lock.wait(min(remaining, 0.5))

    def wait_sent(self, type_url, timeout):
        """Waits until every stream subscribed to `type_url` was sent the current version."""
        deadline = time.monotonic() + timeout
        with self._lock:
            version = self._resources[type_url][0]
            while True:
                states = [s.types[type_url] for s in self._streams.values()
                          if type_url in s.types and s.types[type_url].sent_version is not None]
                if states and all(state.sent_version == version for state in states):
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping:
                    raise TimeoutError(f"{SHORT_NAMES.get(type_url, type_url)}: version {version} never sent")
                self._lock.wait(min(remaining, 0.5))

    # Called with the lock held.
    def _settled(self, type_url, expect):
        version = self._resources.get(type_url, (None, {}))[0]
        matched = False
        messages = []
        for stream in self._streams.values():
            state = stream.types.get(type_url)
            if state is None or state.names is None:
                continue
            if self._wanted(type_url, state) is None and state.sent_version is None:
                continue  # nothing we hold was asked for on this stream
            if state.sent_version != version or state.result is None:
                return None
            if state.result[0] == expect:
                matched = True
                if state.result[1]:
                    messages.append(state.result[1])
        return messages if matched else None

    def _describe(self, type_url):
        rows = []
        for stream in self._streams.values():
            state = stream.types.get(type_url)
            if state is not None:
                rows.append(f"stream {stream.id}: names={sorted(state.names or [])[:4]} "
                            f"sent={state.sent_version} result={state.result}")
        return "; ".join(rows) or "no stream subscribed"

    # Called with the lock held: (version, [Any]) this stream should hold, or None for nothing to send.
    def _wanted(self, type_url, state):
        if type_url not in self._resources:
            return None
        version, packed = self._resources[type_url]
        if type_url in WILDCARD_TYPES and not state.names:
            return version, sorted(packed)
        names = sorted(n for n in (state.names or ()) if n in packed)
        if not names:
            return None
        return version, names

    def _response_for(self, stream, type_url):
        """Builds the response this stream is owed for `type_url`, or None. Lock held."""
        state = stream.types.get(type_url)
        if state is None or state.names is None:
            return None
        wanted = self._wanted(type_url, state)
        if wanted is None:
            return None
        version, names = wanted
        if (version, names) == (state.sent_version, state.sent_names):
            return None
        packed = self._resources[type_url][1]
        nonce = f"{stream.id}-{next(stream.nonces)}"
        state.sent_version, state.sent_names, state.sent_nonce, state.result = version, names, nonce, None
        self._lock.notify_all()
        self._log(f"xds: stream {stream.id} -> {SHORT_NAMES.get(type_url, type_url)} "
                  f"version {version}, {len(names)} resources, nonce {nonce}")
        return discovery_pb2.DiscoveryResponse(
            version_info=version, type_url=type_url, nonce=nonce,
            resources=[packed[n] for n in names])

    def _on_request(self, stream, request):
        """Records an ACK/NACK and the asked-for names; returns the responses to send. Lock held."""
        type_url = request.type_url
        state = stream.types.setdefault(type_url, _TypeState())
        if request.response_nonce and request.response_nonce == state.sent_nonce and state.result is None:
            if request.HasField("error_detail"):
                state.result = ("nack", request.error_detail.message)
                self._nack_messages.append((SHORT_NAMES.get(type_url, type_url), state.sent_version,
                                            request.error_detail.message))
                self._log(f"xds: stream {stream.id} NACK {SHORT_NAMES.get(type_url, type_url)} "
                          f"version {state.sent_version}: {request.error_detail.message}")
            else:
                state.result = ("ack", None)
            self._lock.notify_all()
        state.names = set(request.resource_names)
        response = self._response_for(stream, type_url)
        return [response] if response is not None else []

    def serve_stream(self, request_iterator, context):
        """The body of StreamAggregatedResources and StreamSecrets: a response generator."""
        with self._lock:
            if self._stopping:
                return
            stream = _Stream(next(self._stream_ids))
            self._streams[stream.id] = stream

        def read_requests():
            try:
                for request in request_iterator:
                    stream.events.put(("request", request))
            except Exception:  # the RPC was cancelled or the server is stopping
                pass
            finally:
                stream.events.put(("closed", None))

        reader = threading.Thread(target=read_requests, name=f"xds-reader-{stream.id}", daemon=True)
        reader.start()
        try:
            while context.is_active():
                try:
                    kind, payload = stream.events.get(timeout=0.5)
                except queue.Empty:
                    continue
                if kind in ("closed", "stop"):
                    break
                with self._lock:
                    if kind == "request":
                        responses = self._on_request(stream, payload)
                    else:
                        response = self._response_for(stream, payload)
                        responses = [response] if response is not None else []
                for response in responses:
                    yield response
        finally:
            with self._lock:
                self._streams.pop(stream.id, None)
                self._lock.notify_all()


class _AdsServicer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self, server):
        self._server = server

    def StreamAggregatedResources(self, request_iterator, context):
        return self._server.serve_stream(request_iterator, context)


class _SdsServicer(sds_pb2_grpc.SecretDiscoveryServiceServicer):
    def __init__(self, server):
        self._server = server

    def StreamSecrets(self, request_iterator, context):
        return self._server.serve_stream(request_iterator, context)
