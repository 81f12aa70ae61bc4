'use strict';
// A State-of-the-World xDS server (ADS + SDS) for Envoy, written apart from testdata/capture/xds_server.py
// so that calibration can be repeated with a second server: a quirk of either harness then shows as a
// disagreement in measured memory. It serves resources already encoded (the Python adapter encodes
// them with protobuf's json_format), and owns the protocol side only: streams, what each stream asked
// for per type, versions, nonces, ACK and NACK.
//
// Control: one JSON object per line on stdin, events one JSON object per line on stdout.
//   in:  {"cmd":"push","id":N,"type_url":T,"version":V,"resources":[{"name":..,"value_b64":..}]}
//        replaces the whole set of type T; answered by {"event":"pushed","id":N,...} once every
//        stream has been told (so the events before it describe the state after the push).
//        {"cmd":"stop"} (or stdin closing) shuts the server down and exits.
//   out: port, interest (whether a stream asks for anything we hold of a type), sent, ack, nack,
//        closed, pushed.

const path = require('node:path');
const readline = require('node:readline');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const CLUSTER = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
const LISTENER = 'type.googleapis.com/envoy.config.listener.v3.Listener';
// Wildcard types: a subscription that names nothing asks for everything.
const WILDCARD_TYPES = new Set([CLUSTER, LISTENER]);

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

// type_url -> {version, resources: Map(name -> Buffer of the resource message)}
const catalog = new Map();
// stream id -> Stream
const streams = new Map();
let lastStreamId = 0;
let lastNonce = 0;
let stopping = false;

// What one stream knows about one resource type.
class Subscription {
  constructor() {
    this.names = [];         // the names Envoy asked for in its latest request
    this.interested = null;  // last "interest" reported, so it is reported only when it changes
    this.sentVersion = null;
    this.sentNames = null;   // sorted names of the last response, joined, to compare with
    this.sentNonce = null;
    this.answered = false;   // whether Envoy has ACKed or NACKed sentNonce
  }
}

class Stream {
  constructor(call) {
    this.id = ++lastStreamId;
    this.call = call;
    this.subscriptions = new Map();  // type_url -> Subscription
  }

  // The (version, sorted names) this stream should hold of `typeUrl`, or null if nothing.
  wanted(typeUrl, sub) {
    const entry = catalog.get(typeUrl);
    if (!entry) return null;
    if (WILDCARD_TYPES.has(typeUrl) && sub.names.length === 0) {
      return {version: entry.version, names: [...entry.resources.keys()].sort()};
    }
    const names = [...new Set(sub.names)].filter((n) => entry.resources.has(n)).sort();
    return names.length ? {version: entry.version, names} : null;
  }

  // Reports a change of interest, then sends a response if what the stream should hold differs
  // from what it was last sent.
  update(typeUrl) {
    const sub = this.subscriptions.get(typeUrl);
    const want = this.wanted(typeUrl, sub);
    if (sub.interested !== (want !== null)) {
      sub.interested = want !== null;
      emit({event: 'interest', stream: this.id, type_url: typeUrl, holds: sub.interested});
    }
    if (want === null) return;
    const joined = want.names.join('\n');
    if (want.version === sub.sentVersion && joined === sub.sentNames) return;
    const nonce = `n${++lastNonce}`;
    const resources = catalog.get(typeUrl).resources;
    this.call.write({
      version_info: want.version,
      type_url: typeUrl,
      nonce,
      resources: want.names.map((name) => ({type_url: typeUrl, value: resources.get(name)})),
    });
    Object.assign(sub, {sentVersion: want.version, sentNames: joined, sentNonce: nonce, answered: false});
    emit({event: 'sent', stream: this.id, type_url: typeUrl, version: want.version,
      count: want.names.length, nonce});
  }

  onRequest(request) {
    const typeUrl = request.type_url;
    if (!this.subscriptions.has(typeUrl)) this.subscriptions.set(typeUrl, new Subscription());
    const sub = this.subscriptions.get(typeUrl);
    if (request.response_nonce && request.response_nonce === sub.sentNonce && !sub.answered) {
      sub.answered = true;
      // proto3 message fields have presence: error_detail is absent on an ACK.
      if (request.error_detail) {
        emit({event: 'nack', stream: this.id, type_url: typeUrl, version: sub.sentVersion,
          message: request.error_detail.message || ''});
      } else {
        emit({event: 'ack', stream: this.id, type_url: typeUrl, version: sub.sentVersion});
      }
    }
    sub.names = request.resource_names || [];
    this.update(typeUrl);
  }
}

function serveStream(call) {
  if (stopping) {
    call.end();
    return;
  }
  const stream = new Stream(call);
  streams.set(stream.id, stream);
  const close = () => {
    if (!streams.delete(stream.id)) return;
    emit({event: 'closed', stream: stream.id});
    call.end();
  };
  call.on('data', (request) => stream.onRequest(request));
  call.on('end', close);
  call.on('cancelled', close);
  call.on('error', close);
}

function push(command) {
  const resources = new Map();
  for (const r of command.resources) resources.set(r.name, Buffer.from(r.value_b64, 'base64'));
  catalog.set(command.type_url, {version: command.version, resources});
  for (const stream of streams.values()) {
    if (stream.subscriptions.has(command.type_url)) stream.update(command.type_url);
  }
  emit({event: 'pushed', id: command.id, type_url: command.type_url, version: command.version,
    count: resources.size});
}

function stop() {
  if (stopping) return;
  stopping = true;
  for (const stream of streams.values()) stream.call.end();
  // Envoy keeps its streams open; give them a moment to close, then drop them.
  const force = setTimeout(() => server.forceShutdown(), 1000);
  server.tryShutdown(() => {
    clearTimeout(force);
    process.exit(0);
  });
}

const definition = protoLoader.loadSync(['xds.proto', 'sds.proto'], {
  includeDirs: [path.join(__dirname, 'proto')],
  keepCase: true,
  defaults: false,
});
const api = grpc.loadPackageDefinition(definition).envoy.service;
const server = new grpc.Server({
  // A full EDS or CDS set for thousands of services is one message of many megabytes.
  'grpc.max_send_message_length': -1,
  'grpc.max_receive_message_length': -1,
});
server.addService(api.discovery.v3.AggregatedDiscoveryService.service, {StreamAggregatedResources: serveStream});
server.addService(api.secret.v3.SecretDiscoveryService.service, {StreamSecrets: serveStream});

server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) {
    process.stderr.write(`xds-node: cannot bind 127.0.0.1: ${error.message}\n`);
    process.exit(1);
  }
  emit({event: 'port', port});
  const input = readline.createInterface({input: process.stdin, crlfDelay: Infinity});
  input.on('line', (line) => {
    if (!line.trim()) return;
    const command = JSON.parse(line);
    if (command.cmd === 'push') push(command);
    else if (command.cmd === 'stop') stop();
    else process.stderr.write(`xds-node: unknown command ${command.cmd}\n`);
  });
  // The adapter gone means nobody will ever send stop.
  input.on('close', stop);
});
