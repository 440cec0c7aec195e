// Sends events to a forward server with the real @fluent-org/logger client.
//
//   node send.js PORT '{"mode": "Forward", "count": 5, "seconds": 1700000000, "nanos": 1,
//                       "label": "web", "ack": true, "sharedKey": "k", "ca": "cert.pem"}'
//
// Event i has the record {n: i, mode, path, status, text} and the time
// EventTime(seconds, nanos + i), so the receiver can check every field to the nanosecond.
// Exits 0 once every emit() has resolved (with "ack", once the server acked it), and 3 if
// the client gave up without an error of its own (a refused handshake leaves Node with
// nothing to do); socket errors are printed to stderr.
"use strict";

const fs = require("fs");
const { FluentClient, EventTime } = require("@fluent-org/logger");

async function main() {
  const port = Number(process.argv[2]);
  const options = JSON.parse(process.argv[3] || "{}");
  const socket = { host: "127.0.0.1", port, timeout: 5000 };
  if (options.ca) {
    socket.tls = { ca: fs.readFileSync(options.ca), servername: "localhost" };
  }
  const config = {
    eventMode: options.mode,
    socket,
    disconnect: { waitForPending: true, waitForPendingDelay: 5000 },
  };
  if (options.ack) {
    config.ack = { ackTimeout: 5000 };
  }
  if (options.sharedKey) {
    config.security = { clientHostname: "node-interop", sharedKey: options.sharedKey };
  }
  const client = new FluentClient("node", config);
  client.socketOn("error", (error) => console.error(`socket error: ${error}`));
  const sent = [];
  for (let i = 0; i < options.count; i++) {
    const record = {
      n: i,
      mode: options.mode,
      path: `/items/${i}?q=caf\u00e9`,
      status: 200 + (i % 3) * 100,
      text: "h\u00e9llo \u2713",
    };
    sent.push(client.emit(options.label, record, new EventTime(options.seconds, options.nanos + i)));
  }
  await Promise.all(sent);
  await client.disconnect();
}

let finished = false;
process.on("exit", (code) => {
  if (!finished && code === 0) {
    console.error("gave up: not every event was sent");
    process.exitCode = 3;
  }
});

main().then(
  () => {
    finished = true;
    process.exit(0);
  },
  (error) => {
    console.error((error && error.stack) || String(error));
    process.exit(1);
  },
);
