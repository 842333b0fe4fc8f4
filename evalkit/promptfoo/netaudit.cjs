// Network audit for Node tools (promptfoo): loaded with NODE_OPTIONS=--require=<this file>.
// Appends one JSON line per socket connection and DNS lookup to $EVALKIT_NET_AUDIT, then lets it proceed.
"use strict";
const fs = require("fs");
const net = require("net");
const dns = require("dns");

const out = process.env.EVALKIT_NET_AUDIT;

function record(kind, host, port) {
  if (!out) return;
  try {
    fs.appendFileSync(out, JSON.stringify({ kind, host: String(host), port: port ?? null, pid: process.pid }) + "\n");
  } catch (_) {
    // the audit must never break the tool
  }
}

function target(args) {
  let first = args[0];
  if (Array.isArray(first)) first = first[0]; // Node's internal normalized [options, callback]
  if (first && typeof first === "object") {
    if (first.path) return [first.path, null];
    return [first.host || "localhost", first.port];
  }
  if (typeof first === "string" && isNaN(Number(first))) return [first, null]; // a unix socket path
  return [typeof args[1] === "string" ? args[1] : "localhost", first];
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const [host, port] = target(args);
  record("connect", host, port);
  return connect.apply(this, args);
};

const lookup = dns.lookup;
dns.lookup = function (hostname, ...rest) {
  record("dns", hostname, null);
  return lookup.call(this, hostname, ...rest);
};
const promisesLookup = dns.promises.lookup;
dns.promises.lookup = function (hostname, ...rest) {
  record("dns", hostname, null);
  return promisesLookup.call(this, hostname, ...rest);
};
