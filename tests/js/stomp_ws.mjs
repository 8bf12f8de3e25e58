// stompjs (@stomp/stompjs) against an mqnode ws:// transport, run by tests/tests/websocket.rs.
//
//   node stomp_ws.mjs roundtrip WS_URL          send and receive on one connection: text, user
//                                               headers, a binary body, receipts, heart-beats
//   node stomp_ws.mjs send WS_URL QUEUE N       send N messages (body "m<i>", header n:<i>), each
//                                               confirmed by a RECEIPT
//   node stomp_ws.mjs receive WS_URL QUEUE N    consume N messages, print them
//
// Prints one JSON line on success and exits 0; on failure prints why on stderr and exits 1.
// Every wait is bounded (TIMEOUT_MS), so a broken server fails the run instead of hanging it.

import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

const TIMEOUT_MS = 20000;
const [mode, url, queue, count] = process.argv.slice(2);

function fail(why) {
    console.error(`stomp_ws ${mode}: ${why}`);
    process.exit(1);
}

const timer = setTimeout(() => fail(`not done within ${TIMEOUT_MS} ms`), TIMEOUT_MS);

/** A connected client; `log` collects stompjs' debug lines (heart-beats show as PONG). */
function connect(opts = {}) {
    const log = [];
    let socket;
    const client = new Client({
        webSocketFactory: () => {
            socket = new WebSocket(url, ['v12.stomp', 'v11.stomp', 'v10.stomp']);
            return socket;
        },
        reconnectDelay: 0,
        heartbeatIncoming: opts.heartbeat ?? 0,
        heartbeatOutgoing: opts.heartbeat ?? 0,
        debug: (line) => log.push(line),
    });
    return new Promise((resolve, reject) => {
        client.onConnect = (frame) => resolve({ client, frame, log, socket });
        client.onStompError = (frame) => reject(new Error(`ERROR frame: ${frame.headers.message}`));
        client.onWebSocketError = () => reject(new Error(`cannot open ${url}`));
        client.activate();
    });
}

/** Sends one message and waits for its RECEIPT. */
function publishConfirmed(client, params) {
    const receipt = `r-${Math.random().toString(36).slice(2)}`;
    return new Promise((resolve) => {
        client.watchForReceipt(receipt, resolve);
        client.publish({ ...params, headers: { ...(params.headers || {}), receipt } });
    });
}

/** Subscribes and resolves with the first `n` messages (acked one by one). */
function take(client, destination, n) {
    const got = [];
    return new Promise((resolve) => {
        client.subscribe(
            destination,
            (m) => {
                got.push(m);
                m.ack();
                if (got.length === n) resolve(got);
            },
            { ack: 'client-individual' },
        );
    });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function roundtrip() {
    const { client, frame, log, socket } = await connect({ heartbeat: 400 });
    if (socket.protocol !== 'v12.stomp') throw new Error(`subprotocol ${socket.protocol}`);
    if (frame.headers.version !== '1.2') throw new Error(`STOMP version ${frame.headers.version}`);
    const dest = `/queue/js.roundtrip.${process.pid}`;
    const binary = new Uint8Array([0, 1, 2, 0xff, 0xfe, 0, 10, 13]);
    const received = take(client, dest, 3);
    await publishConfirmed(client, { destination: dest, body: 'hello over ws' });
    await publishConfirmed(client, {
        destination: dest,
        body: 'with headers: ü',
        // (stompjs unescapes `\\c` wrongly, so no backslash before c, n or r here.)
        headers: { 'x-colour': 'blue', 'x-escaped': 'a:b\\z\nnext' },
    });
    await publishConfirmed(client, { destination: dest, binaryBody: binary });
    const [a, b, c] = await received;
    if (a.body !== 'hello over ws') throw new Error(`first body ${JSON.stringify(a.body)}`);
    if (b.body !== 'with headers: ü') throw new Error(`second body ${JSON.stringify(b.body)}`);
    if (b.headers['x-colour'] !== 'blue' || b.headers['x-escaped'] !== 'a:b\\z\nnext')
        throw new Error(`headers ${JSON.stringify(b.headers)}`);
    if (Buffer.compare(Buffer.from(c.binaryBody), Buffer.from(binary)) !== 0)
        throw new Error(`binary body ${Buffer.from(c.binaryBody).toString('hex')}`);
    // Heart-beats both ways for a while: the server's come in as their own messages.
    await sleep(1500);
    const pongs = log.filter((l) => l === '<<< PONG').length;
    if (pongs < 2) throw new Error(`only ${pongs} heart-beats from the server in 1.5 s`);
    if (!client.connected) throw new Error('disconnected while heart-beating');
    await client.deactivate();
    return { ok: true, subprotocol: socket.protocol, version: frame.headers.version, pongs };
}

async function send() {
    const n = Number(count);
    const { client } = await connect();
    for (let i = 0; i < n; i++) {
        await publishConfirmed(client, {
            destination: `/queue/${queue}`,
            body: `m${i}`,
            headers: { n: String(i), persistent: 'true' },
        });
    }
    await client.deactivate();
    return { ok: true, sent: n };
}

async function receive() {
    const n = Number(count);
    const { client } = await connect();
    const got = await take(client, `/queue/${queue}`, n);
    await client.deactivate();
    return { ok: true, messages: got.map((m) => ({ body: m.body, n: m.headers.n })) };
}

const modes = { roundtrip, send, receive };
if (!modes[mode] || !url) fail('usage: stomp_ws.mjs roundtrip|send|receive WS_URL [QUEUE N]');
try {
    const result = await modes[mode]();
    clearTimeout(timer);
    console.log(JSON.stringify(result));
    process.exit(0);
} catch (e) {
    fail(e.message);
}
