// The official Svix JavaScript SDK (npm `svix`, unchanged), pointed at
// webhookd by `serverUrl` alone: an application, an endpoint, a message
// verified with the SDK's own `Webhook`, its attempts, a 404, a 422, a 401.
// Any failed expectation throws; "OK" last.
//
// usage: node svix_flow.mjs SERVER_URL ENVIRONMENT_KEY
import http from "node:http";
import assert from "node:assert/strict";
import { Svix, Webhook, ApiException } from "svix";

const [server, key] = process.argv.slice(2);
const svix = new Svix(key, { serverUrl: server });

const received = [];
const receiver = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    received.push({ body: Buffer.concat(chunks).toString("utf8"), headers: req.headers });
    res.writeHead(200).end();
  });
});
await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
const url = `http://127.0.0.1:${receiver.address().port}/hook`;

async function waitFor(what, check) {
  const until = Date.now() + 20000;
  while (Date.now() < until) {
    const value = await check();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function refused(status, call) {
  try {
    await call();
  } catch (error) {
    assert.ok(error instanceof ApiException, String(error));
    assert.equal(error.code, status);
    return error;
  }
  throw new Error(`expected ${status}`);
}

await svix.eventType.create({ name: "order.shipped", description: "An order left" });
const app = await svix.application.create({ name: "JS customer", uid: "js-customer" });
assert.match(app.id, /^app_/);
assert.equal((await svix.application.getOrCreate({ name: "x", uid: "js-customer" })).id, app.id);

const endpoint = await svix.endpoint.create(app.id, { url, uid: "js-main", eventTypes: ["order.shipped"] });
assert.equal((await svix.endpoint.get("js-customer", "js-main")).id, endpoint.id);
const secret = (await svix.endpoint.getSecret(app.id, endpoint.id)).key;

const payload = { order: 42, total: 10.5, note: "caf\u00e9 \u2603" };
const message = await svix.message.create(
  app.id,
  { eventType: "order.shipped", payload },
  { idempotencyKey: "js-order-42" },
);
const again = await svix.message.create(
  app.id,
  { eventType: "order.shipped", payload },
  { idempotencyKey: "js-order-42" },
);
assert.equal(again.id, message.id);

const delivery = await waitFor("the delivery", () => received[0]);
assert.equal(delivery.headers["svix-id"], message.id);
new Webhook(secret).verify(delivery.body, delivery.headers);
// The body is the payload exactly as the SDK sent it.
assert.equal(delivery.body, JSON.stringify(payload));

const attempts = await waitFor("the attempt", async () => {
  const page = await svix.messageAttempt.listByEndpoint(app.id, endpoint.id);
  return page.data.length > 0 && page.data;
});
assert.equal(attempts[0].responseStatusCode, 200);
assert.equal(attempts[0].msgId, message.id);
assert.equal((await svix.messageAttempt.listByMsg(app.id, message.id)).data.length, 1);

await refused(404, () => svix.application.get("app_987654"));
const invalid = await refused(422, () => svix.endpoint.create(app.id, { url: "nope" }));
assert.deepEqual(invalid.body.detail[0].loc, ["body", "url"]);
await refused(401, () => new Svix("whk_wrong", { serverUrl: server }).application.list());

await svix.application.delete(app.id);
await refused(404, () => svix.application.get(app.id));
receiver.close();
console.log("OK");
